#!/usr/bin/env bash
# Installs (as root) the host packages the systemd test needs: debootstrap to build a minimal
# Debian 12 system, systemd-container for systemd-nspawn to boot it, nsenter (util-linux), pgrep
# (procps) and python3 on this side. Everything the test runs
# inside the container comes from that system itself (tests/systemd/boot-test.sh).
set -euo pipefail

packages=(debootstrap systemd-container util-linux procps python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "systemd-test deps: missing Debian packages: ${missing[*]}" >&2
  exit 1
fi
echo "systemd-test deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=120 update -qq
apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends "${missing[@]}" >&2
