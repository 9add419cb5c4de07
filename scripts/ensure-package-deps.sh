#!/usr/bin/env bash
# Installs (as root) or names (otherwise) the Debian packages the package test needs on top of
# scripts/ensure-deps.sh: lintian, systemd-analyze (package systemd; it works without systemd
# running), sshpass and expect to type at a real ssh client, strace for the system-call check,
# setpriv (util-linux) to start credd with the unit's capability bounding set.
set -euo pipefail

packages=(lintian systemd pamtester openssh-server openssh-client sshpass expect strace util-linux passwd libpam-runtime libpam-modules)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-package-deps: missing Debian packages: ${missing[*]}" >&2
  echo "ensure-package-deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "ensure-package-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=120 update -qq
apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends "${missing[@]}" >&2
