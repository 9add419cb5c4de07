#!/usr/bin/env bash
# Installs (as root) or names (otherwise) the system packages the build, the demo and the tests need.
set -euo pipefail

# libcrypt-dev: credd links the system's libxcrypt to verify hashes taken over from /etc/shadow;
# whois: its mkpasswd makes those hashes for the tests; passwd: useradd, chpasswd, usermod and
# passwd itself. The real-client tests (docs/pam.md's stacks) drive Dovecot's IMAP server, sudo,
# a web-style client through python3-pampy and the vlock screen locker; python3 is Debian's
# (/usr/bin/python3), which is the one that sees python3-pampy.
packages=(gcc libc6-dev libpam0g-dev libpam-modules libcrypt-dev pamtester rsyslog util-linux openssh-server openssh-client python3-paramiko fail2ban whois passwd login dovecot-imapd sudo python3 python3-pampy vlock)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "ensure-deps: cargo is not on PATH; install Rust (1.85 or newer) with rustup: https://rustup.rs" >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-deps: missing Debian packages: ${missing[*]}" >&2
  echo "ensure-deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "ensure-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=120 update -qq
apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends "${missing[@]}"
