#!/usr/bin/env bash
# The package test (issue 8): installs the credd Debian package on this machine and uses it as an
# administrator would, then removes and purges it and checks what is left.
#
#   tests/package/install-test.sh [PATH/TO/credd_VERSION_amd64.deb]     (make package-test)
#
# Without a path it builds the package first (scripts/build-deb.sh). Root only: it runs dpkg,
# writes /etc/pam.d, adds users and starts an sshd; otherwise it prints SKIPPED and exits 0. It
# also skips, touching nothing, when credd is already installed or its directories exist, since
# purging would destroy them.
#
# Steps: lintian and systemd-analyze on the package; dpkg -i (twice: install, then the upgrade
# path); the installed daemon started with the unit's ExecStart under the unit's capability
# bounding set and no_new_privs (there is no systemd here), its system calls checked against the
# unit's SystemCallFilter; an account added with the installed credctl; logins through pamtester
# with a service naming the module relatively (pam_credd.so), and through a real OpenSSH server
# (password typed by sshpass; session termination after `credctl reset`; the forced change with
# the reset code typed by expect); the pam-auth-update profile enabled, exercised (no fall-through
# to pam_unix for credd's accounts, root's break-glass while credd is down) and taken out again by
# dpkg -r, which must first refuse while hand-written PAM files still load the module; remove keeps
# the database (a reinstall serves it again; credctl restore puts back an online backup), purge
# leaves nothing.
set -euo pipefail

NAME=install-test.sh
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STARTED=$SECONDS

skip() {
  echo "SKIPPED $NAME: $*"
  exit 0
}
log() { echo "[$NAME $((SECONDS - STARTED))s] $*" >&2; }
fail() {
  echo "FAILED $NAME: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i, /etc/pam.d, useradd, sshd)"
if ! command -v dpkg >/dev/null || ! command -v apt-get >/dev/null; then
  skip "not a Debian system"
fi
[ "$(dpkg --print-architecture)" = amd64 ] || skip "the package is built for amd64"
if dpkg-query -W -f='${Status}' credd 2>/dev/null | grep -q 'installed\|config-files'; then
  skip "credd is already installed here; the test installs and purges it (dpkg --purge credd first)"
fi
for path in /etc/credd /var/lib/credd /run/credd /usr/sbin/credd /usr/sbin/credctl; do
  [ ! -e "$path" ] || skip "$path exists; the test would replace or purge it"
done
for service in credd-pkgtest credd-pkgtest-common sshd-credd-test; do
  [ ! -e "/etc/pam.d/$service" ] || skip "/etc/pam.d/$service exists (an earlier run?)"
done
if grep -qs pam_credd /etc/pam.d/common-*; then
  skip "/etc/pam.d/common-* already load pam_credd.so"
fi

"$ROOT/scripts/ensure-package-deps.sh"

# Accounts and secrets of the test.
USER_A=credd-pkgt-a # a credd account (also with a different /etc/shadow password)
USER_B=credd-pkgt-b # a local account credd does not hold (pam_unix only)
ADMINS=credd-pkgt-admins
PW_A='package test passphrase'
SHADOW_A='shadow-only password 1'
PW_B='pam_unix password of b'
NEW_A='a new passphrase from ssh'
NEWER_A='changed through common-password'
NEW_B='new pam_unix password of b'
SSHD=/usr/sbin/sshd-credd-test
UNIT=/lib/systemd/system/credd.service
SECURITY=/lib/x86_64-linux-gnu/security/pam_credd.so

WORK=$(mktemp -d /tmp/credd-pkgtest.XXXXXX)
chmod 0755 "$WORK"
DAEMON_PID=
SSHD_PID=
INSTALLED=no
PROFILE=no
COMMON_SAVED=no

cleanup() {
  local rc=$?
  set +e
  [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null
  pkill -f "^$SSHD " 2>/dev/null
  stop_daemon
  rm -f "$SSHD" /etc/pam.d/sshd-credd-test /etc/pam.d/credd-pkgtest /etc/pam.d/credd-pkgtest-common
  if [ "$PROFILE" = yes ] && command -v pam-auth-update >/dev/null; then
    pam-auth-update --package --remove credd
  fi
  if [ "$INSTALLED" = yes ]; then
    dpkg --purge credd >"$WORK/cleanup-purge.log" 2>&1 || cat "$WORK/cleanup-purge.log" >&2
  fi
  if [ "$COMMON_SAVED" = yes ]; then
    for f in "$WORK"/common-saved/*; do
      cmp -s "$f" "/etc/pam.d/${f##*/}" || { cp -p "$f" "/etc/pam.d/${f##*/}" && echo "[$NAME] restored /etc/pam.d/${f##*/}" >&2; }
    done
  fi
  userdel -r "$USER_A" >/dev/null 2>&1
  userdel -r "$USER_B" >/dev/null 2>&1
  groupdel "$ADMINS" >/dev/null 2>&1
  if [ $rc -ne 0 ] || [ -n "${CREDD_PKGTEST_KEEP:-}" ]; then
    echo "[$NAME] logs kept in $WORK (credd.log, sshd.log, dpkg-*.log)" >&2
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Build and static checks

if [ $# -ge 1 ]; then
  DEB=$(readlink -f "$1")
  [ -f "$DEB" ] || fail "$1: no such package file"
else
  log "building the package (scripts/build-deb.sh)"
  build_started=$SECONDS
  "$ROOT/scripts/ensure-deps.sh"
  DEB=$("$ROOT/scripts/build-deb.sh" | tail -n 1)
  log "built $DEB in $((SECONDS - build_started))s"
fi
dpkg-deb -f "$DEB" Package | grep -qx credd || fail "$DEB is not the credd package"

log "lintian"
# Findings that are explained in docs/operations.md ("Package checks"); anything else fails.
lintian --pedantic -I --tag-display-limit 0 "$DEB" >"$WORK/lintian.txt" 2>&1 || true
grep -v 'running with root privileges' "$WORK/lintian.txt" | sed 's/^/  lintian: /' >&2
unexpected=$(grep -E '^[EW]: ' "$WORK/lintian.txt" | grep -v -E \
  'description-starts-with-package-name' || true)
[ -z "$unexpected" ] || fail "lintian errors or warnings: $unexpected"

log "systemd-analyze security (offline) on the packaged unit"
dpkg-deb -x "$DEB" "$WORK/root"
systemd-analyze security --offline=true "$WORK/root$UNIT" >"$WORK/security.txt" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for credd.service: \([0-9.]*\).*/\1/p' "$WORK/security.txt")
[ -n "$exposure" ] || { cat "$WORK/security.txt" >&2; fail "no exposure level"; }
log "exposure level $exposure (aim: 2.0 or lower)"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure level $exposure is above 2.0"

# ---------------------------------------------------------------------------------------------
# Install

dpkg_i() {
  dpkg -i "$DEB" >"$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log" >&2; fail "dpkg -i failed"; }
}
log "dpkg -i $DEB"
INSTALLED=yes
dpkg_i
log "dpkg -i again (the upgrade path of the maintainer scripts)"
dpkg_i
dpkg-query -W -f='${Status}' credd | grep -qx 'install ok installed' || fail "credd is not installed"

PACKAGED_FILES=(/usr/sbin/credd /usr/sbin/credctl "$SECURITY" /etc/credd/credd.toml "$UNIT"
  /usr/share/pam-configs/credd /usr/share/man/man8/credd.8.gz /usr/share/man/man8/credctl.8.gz
  /usr/share/man/man8/pam_credd.8.gz /usr/share/man/man5/credd.toml.5.gz
  /usr/share/bash-completion/completions/credctl /usr/share/doc/credd/operations.md.gz)
for f in "${PACKAGED_FILES[@]}"; do
  [ -f "$f" ] || fail "$f is not installed"
done
[ "$(stat -c %a "$SECURITY")" = 644 ] || fail "$SECURITY has mode $(stat -c %a "$SECURITY")"
dpkg-query -W -f='${Conffiles}\n' credd | grep -q '^ /etc/credd/credd.toml ' || fail "credd.toml is not a conffile"
grep -qs pam_credd /etc/pam.d/common-* && fail "installing enabled credd in /etc/pam.d/common-* (Default: no)"
[ -L /etc/systemd/system/multi-user.target.wants/credd.service ] || fail "credd.service was not enabled"

log "systemd-analyze verify on the installed unit"
systemd-analyze verify "$UNIT" >"$WORK/verify.txt" 2>&1 || true
if [ -s "$WORK/verify.txt" ]; then
  cat "$WORK/verify.txt" >&2
  fail "systemd-analyze verify is not clean"
fi

log "man pages and completion"
for page in credd.8 credctl.8 pam_credd.8 credd.toml.5; do
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "/usr/share/man/man${page##*.}/$page.gz" 2>&1 >/dev/null)
  [ -z "$warnings" ] || fail "man $page: $warnings"
done
page=$(zcat /usr/share/man/man8/credd.8.gz)
for flag in $(/usr/sbin/credd --help | grep -oE -- '--[a-z-]+' | sort -u); do
  grep -qF -- "${flag//-/\\-}" <<<"$page" || fail "credd(8) does not document $flag"
done
bash -c 'source /usr/share/bash-completion/completions/credctl && complete -p credctl' >/dev/null ||
  fail "the bash completion does not register for credctl"

log "the conffile parses, as shipped and with every default uncommented"
/usr/sbin/credd --check-config --config /etc/credd/credd.toml >/dev/null
sed -E '/^#(pepper_file|group) = /!s/^#([a-z_]+ = )/\1/' /etc/credd/credd.toml >"$WORK/uncommented.toml"
[ "$(grep -cE '^[a-z_]+ = ' "$WORK/uncommented.toml")" -ge 29 ] || fail "fewer settings than expected in credd.toml"
/usr/sbin/credd --check-config --config "$WORK/uncommented.toml" >/dev/null ||
  fail "credd.toml's commented defaults do not parse when uncommented"

# ---------------------------------------------------------------------------------------------
# The daemon, as the unit would start it

groupadd "$ADMINS"
useradd -m -d "$WORK/home-a" -s /bin/sh "$USER_A"
useradd -m -d "$WORK/home-b" -s /bin/sh -G "$ADMINS" "$USER_B"
echo "$USER_A:$SHADOW_A" | chpasswd
echo "$USER_B:$PW_B" | chpasswd

# The administrator's edits to the conffile: session termination (needs CAP_KILL), an admin group
# (needs CAP_CHOWN), and limits that the many attempts below stay under.
python3 - /etc/credd/credd.toml "$ADMINS" <<'EOF'
import sys
path, group = sys.argv[1], sys.argv[2]
text = open(path).read()
edits = {
    "[admin]\n": f'[admin]\ngroup = "{group}"\n',
    "[lockout]\n": "[lockout]\ndeny = 20\n",
    "[rate]\n": "[rate]\naccount = { burst = 50, per_minute = 60 }\n",
    "[sessions]\n": '[sessions]\nterminate_on_revoke = true\nterminate_grace = "2s"\n',
}
for section, replacement in edits.items():
    assert text.count(section) == 1, section
    text = text.replace(section, replacement)
open(path, "w").write(text)
EOF
/usr/sbin/credd --check-config --config /etc/credd/credd.toml >/dev/null

EXEC_START=$(sed -n 's/^ExecStart=//p' "$UNIT")
CAPS=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT")
BOUNDING="-all"
for cap in $CAPS; do
  cap=${cap#CAP_}
  BOUNDING="$BOUNDING,+${cap,,}"
done
FILTER=$(sed -n 's/^SystemCallFilter=//p' "$UNIT")

# SIGTERM to credd itself, as systemd would send it (under strace the job is strace, which blocks
# fatal signals), then wait for the job.
stop_daemon() {
  [ -n "$DAEMON_PID" ] || return 0
  local pid
  if pid=$(credd_pid); then
    kill -TERM "$pid" 2>/dev/null || true
  fi
  for _ in $(seq 100); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$DAEMON_PID" 2>/dev/null; then
    echo "[$NAME] credd did not stop within 10 s of SIGTERM; killing it" >&2
    if pid=$(credd_pid); then
      kill -KILL "$pid" 2>/dev/null || true
    fi
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=
}

# The unit's ExecStart under what systemd would give it and can be reproduced here: the
# directories of RuntimeDirectory= and StateDirectory=, UMask=, LimitCORE=, the capability
# bounding set, NoNewPrivileges=. $1: "strace" to record its system calls.
start_daemon() {
  local trace=()
  if [ "${1:-}" = strace ]; then
    trace=(strace -f -qq -o "$WORK/strace.txt")
  fi
  install -d -m 0755 /run/credd
  install -d -m 0700 /var/lib/credd
  local seen
  touch "$WORK/credd.log"
  seen=$(wc -l <"$WORK/credd.log")
  # shellcheck disable=SC2086 # ExecStart is a command line, split as systemd splits it here
  (
    umask 0077
    ulimit -c 0
    exec setpriv --bounding-set "$BOUNDING" --inh-caps -all --no-new-privs -- "${trace[@]}" $EXEC_START
  ) 2>>"$WORK/credd.log" &
  DAEMON_PID=$!
  for _ in $(seq 300); do
    tail -n +$((seen + 1)) "$WORK/credd.log" | grep -q 'credd: ready' && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/credd.log" >&2
  fail "the installed credd did not get ready"
}

# The pid of the credd process itself (under strace it is a child).
credd_pid() {
  local exe pid
  for exe in /proc/[0-9]*/exe; do
    [ "$(readlink "$exe" 2>/dev/null)" = /usr/sbin/credd ] || continue
    pid=${exe#/proc/}
    echo "${pid%/exe}"
    return 0
  done
  return 1
}

log "starting the installed credd: $EXEC_START (bounding set $BOUNDING, no_new_privs, strace)"
start_daemon strace
pid=$(credd_pid) || fail "no /usr/sbin/credd process"
want=0
for cap in $CAPS; do
  case $cap in
  CAP_CHOWN) want=$((want | 1 << 0)) ;;
  CAP_KILL) want=$((want | 1 << 5)) ;;
  *) fail "the test does not know the capability $cap of CapabilityBoundingSet=" ;;
  esac
done
eff=$((16#$(sed -n 's/^CapEff:\t*//p' "/proc/$pid/status")))
[ "$eff" -eq "$want" ] || fail "credd runs with CapEff $eff, the unit allows $want"
grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$pid/status" || fail "no_new_privs is not set"
[ "$(stat -c %a /run/credd/pam.sock)" = 666 ] || fail "pam.sock mode"
[ "$(stat -c '%a %G' /run/credd/admin.sock)" = "660 $ADMINS" ] || fail "admin.sock is not 0660 root:$ADMINS (CAP_CHOWN)"

log "an account with the installed credctl"
echo "$PW_A" | /usr/sbin/credctl user add "$USER_A" --password-stdin >/dev/null
/usr/sbin/credctl user show "$USER_A" >/dev/null
runuser -u "$USER_B" -- /usr/sbin/credctl user list >"$WORK/admin-member.txt" 2>&1 ||
  { cat "$WORK/admin-member.txt" >&2; fail "a member of [admin] group cannot use admin.sock"; }
grep -q "$USER_A" "$WORK/admin-member.txt" || fail "the admin group member's listing lacks $USER_A"

# ---------------------------------------------------------------------------------------------
# pamtester, with the module named relatively: libpam finds it where the package put it

pam() { # SERVICE USER STDIN OPERATIONS...
  local service=$1 user=$2 input=$3
  shift 3
  printf '%s' "$input" | pamtester "$service" "$user" "$@" >"$WORK/pamtester.out" 2>&1
}
expect_pam() { # ok|fail SERVICE USER STDIN OPERATIONS...
  local want=$1
  shift
  if pam "$@"; then
    [ "$want" = ok ] || { cat "$WORK/pamtester.out" >&2; fail "pamtester $* succeeded"; }
  else
    [ "$want" = fail ] || { cat "$WORK/pamtester.out" >&2; fail "pamtester $* failed"; }
  fi
}

log "pamtester: a service file with the stack of docs/operations.md"
cat >/etc/pam.d/credd-pkgtest <<'EOF'
auth     [success=done user_unknown=ignore default=die]  pam_credd.so
@include common-auth
account  [success=1 new_authtok_reqd=done user_unknown=1 authinfo_unavail=ignore default=die]  pam_credd.so
account  [success=ignore default=die]  pam_succeed_if.so quiet uid eq 0
@include common-account
EOF
expect_pam ok credd-pkgtest "$USER_A" "$PW_A"$'\n' authenticate acct_mgmt
expect_pam fail credd-pkgtest "$USER_A" "$SHADOW_A"$'\n'"$SHADOW_A"$'\n' authenticate
# credd does not hold b: its prompt, then pam_unix's own (common-auth has no try_first_pass here
# unless pam-auth-update stacked something before pam_unix).
expect_pam ok credd-pkgtest "$USER_B" "$PW_B"$'\n'"$PW_B"$'\n' authenticate acct_mgmt

# ---------------------------------------------------------------------------------------------
# OpenSSH: a copy of sshd under its own name reads /etc/pam.d/sshd-credd-test

log "sshd on 127.0.0.1 with the sshd stack of docs/operations.md"
cp /usr/sbin/sshd "$SSHD"
cat >/etc/pam.d/sshd-credd-test <<'EOF'
auth     [success=done user_unknown=ignore default=die]  pam_credd.so
@include common-auth
account  required     pam_nologin.so
account  [success=1 new_authtok_reqd=done user_unknown=1 authinfo_unavail=ignore default=die]  pam_credd.so
account  [success=ignore default=die]  pam_succeed_if.so quiet uid eq 0
@include common-account
session  required     pam_loginuid.so
session  optional     pam_credd.so
@include common-session
password [success=done user_unknown=ignore default=die]  pam_credd.so
@include common-password
EOF
ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
mkdir -p /run/sshd
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $WORK/host_key
PidFile $WORK/sshd.pid
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
PubkeyAuthentication no
PermitRootLogin no
StrictModes no
LogLevel VERBOSE
EOF
"$SSHD" -D -e -f "$WORK/sshd_config" 2>"$WORK/sshd.log" &
SSHD_PID=$!
for _ in $(seq 200); do
  grep -q 'Server listening' "$WORK/sshd.log" && break
  kill -0 "$SSHD_PID" 2>/dev/null || { cat "$WORK/sshd.log" >&2; fail "sshd exited"; }
  sleep 0.1
done
grep -q 'Server listening' "$WORK/sshd.log" || fail "sshd did not start listening"

SSH_OPTS=(-F /dev/null -p "$PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o PreferredAuthentications=keyboard-interactive -o PubkeyAuthentication=no
  -o NumberOfPasswordPrompts=1 -o ConnectTimeout=10 -o LogLevel=ERROR)
ssh_pw() { # PASSWORD USER COMMAND
  SSHPASS=$1 sshpass -e ssh "${SSH_OPTS[@]}" "$2@127.0.0.1" "$3"
}

log "ssh: password typed by sshpass"
out=$(ssh_pw "$PW_A" "$USER_A" 'echo credd-pkgtest-ok; cat /proc/self/loginuid') ||
  fail "ssh login of $USER_A failed"
[ "$(echo "$out" | head -n 1)" = credd-pkgtest-ok ] || fail "ssh ran nothing: $out"
loginuid=$(echo "$out" | sed -n 2p)
ssh_pw "$SHADOW_A" "$USER_A" true 2>/dev/null && fail "ssh accepted $USER_A's /etc/shadow password"
out=$(ssh_pw "$PW_B" "$USER_B" 'echo credd-pkgtest-ok') || fail "ssh login of $USER_B (pam_unix) failed"
[ "$out" = credd-pkgtest-ok ] || fail "ssh as $USER_B ran nothing"

log "ssh: a session, ended by credctl reset ([sessions] terminate_on_revoke, CAP_KILL)"
open_sessions() { # the number of USER_A's sessions that are not revoked
  /usr/sbin/credctl sessions "$USER_A" --json |
    python3 -c 'import json, sys; print(sum(1 for s in json.load(sys.stdin) if s["revoked_at"] is None))'
}
before=$(open_sessions)
ssh_pw "$PW_A" "$USER_A" 'sleep 120' 2>"$WORK/ssh-session.log" &
session=$!
registered=no
for _ in $(seq 100); do
  if [ "$(open_sessions)" -gt "$before" ]; then
    registered=yes
    break
  fi
  sleep 0.1
done
[ "$registered" = yes ] || { /usr/sbin/credctl sessions "$USER_A" >&2; fail "the ssh session was not registered with credd"; }
CODE=$(/usr/sbin/credctl reset "$USER_A" 2>"$WORK/reset.err")
[ -n "$CODE" ] || fail "credctl reset printed no code"
if [ "$loginuid" = "$(id -u "$USER_A")" ]; then
  ended=no
  for _ in $(seq 150); do
    kill -0 "$session" 2>/dev/null || {
      ended=yes
      break
    }
    sleep 0.1
  done
  [ "$ended" = yes ] || fail "the revoked ssh session was not ended (CAP_KILL under the unit's bounding set?)"
  wait "$session" 2>/dev/null || true
  grep -q 'SIGHUP to pid' "$WORK/credd.log" || fail "credd did not report the SIGHUP"
else
  log "pam_loginuid could not set a loginuid here ($loginuid): session termination not checked"
  kill "$session" 2>/dev/null || true
  wait "$session" 2>/dev/null || true
fi

log "ssh: the forced change with the reset code, typed by expect"
ssh_pw "$PW_A" "$USER_A" true 2>/dev/null && fail "the old password still works after the reset"
cat >"$WORK/change.exp" <<'EOF'
set timeout 30
lassign $argv port user code new
spawn ssh -F /dev/null -p $port -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o PreferredAuthentications=keyboard-interactive -o PubkeyAuthentication=no -o LogLevel=ERROR $user@127.0.0.1 "echo changed-and-in"
expect {
  "assword:" { send "$code\r" }
  timeout { puts "no password prompt"; exit 2 }
}
expect {
  "New password:" { send "$new\r" }
  timeout { puts "no new-password prompt"; exit 3 }
}
expect {
  "Retype new password:" { send "$new\r" }
  timeout { puts "no retype prompt"; exit 4 }
}
expect {
  "changed-and-in" {}
  timeout { puts "no shell after the change"; exit 5 }
}
expect eof
lassign [wait] pid spawnid os_error status
exit $status
EOF
expect -f "$WORK/change.exp" "$PORT" "$USER_A" "$CODE" "$NEW_A" >"$WORK/expect.log" 2>&1 ||
  { cat "$WORK/expect.log" >&2; fail "the forced change over ssh failed"; }
grep -q 'required to change your password' "$WORK/expect.log" ||
  { cat "$WORK/expect.log" >&2; fail "ssh showed no forced-change message"; }
out=$(ssh_pw "$NEW_A" "$USER_A" 'echo credd-pkgtest-ok') || fail "the new password does not log in"
[ "$out" = credd-pkgtest-ok ] || fail "ssh with the new password ran nothing"
ssh_pw "$CODE" "$USER_A" true 2>/dev/null && fail "the reset code works a second time"

kill "$SSHD_PID" 2>/dev/null || true
wait "$SSHD_PID" 2>/dev/null || true
SSHD_PID=

log "credctl backup while credd serves (its snapshot is taken inside the unit's sandbox rules)"
/usr/sbin/credctl backup "$WORK/backup.db" >/dev/null
[ "$(stat -c %a "$WORK/backup.db")" = 600 ] || fail "the backup is not mode 0600"

# ---------------------------------------------------------------------------------------------
# The system calls credd made so far, against the unit's SystemCallFilter=

log "system calls under strace against SystemCallFilter=$(echo "$FILTER" | tr '\n' ' ')"
stop_daemon
expand_group() { # @GROUP: its system calls, nested groups expanded
  systemd-analyze syscall-filter "$1" | tail -n +2 | sed 's/^ *//' | grep -v '^#' | grep -v '^$' |
    while read -r entry; do
      if [ "${entry#@}" != "$entry" ]; then expand_group "$entry"; else echo "$entry"; fi
    done
}
: >"$WORK/allowed.txt"
while read -r line; do
  deny=no
  case $line in "~"*) deny=yes line=${line#\~} ;; esac
  for item in $line; do
    if [ "${item#@}" != "$item" ]; then expand_group "$item"; else echo "$item"; fi
  done | sort -u >"$WORK/filter-part.txt"
  if [ $deny = yes ]; then
    comm -23 "$WORK/allowed.txt" "$WORK/filter-part.txt" >"$WORK/allowed.new"
  else
    sort -u "$WORK/allowed.txt" "$WORK/filter-part.txt" >"$WORK/allowed.new"
  fi
  mv "$WORK/allowed.new" "$WORK/allowed.txt"
done <<<"$FILTER"
# Up to the exec of credd the trace is setpriv's (and strace's exec); from there on, credd's.
sed -n '/execve("\/usr\/sbin\/credd"/,$p' "$WORK/strace.txt" |
  sed -nE 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p' | sort -u >"$WORK/used.txt"
[ -s "$WORK/used.txt" ] || fail "strace recorded no system calls of credd"
outside=$(comm -23 "$WORK/used.txt" "$WORK/allowed.txt" | tr '\n' ' ')
[ -z "$outside" ] || fail "credd used system calls outside the unit's SystemCallFilter: $outside"
log "credd used $(wc -l <"$WORK/used.txt") distinct system calls, all allowed by the unit"

# ---------------------------------------------------------------------------------------------
# The pam-auth-update profile

start_daemon
log "pam-auth-update --enable credd"
mkdir -p "$WORK/common-saved"
cp -p /etc/pam.d/common-* "$WORK/common-saved/"
COMMON_SAVED=yes
PROFILE=yes
pam-auth-update --enable credd >"$WORK/pam-auth-update.log" 2>&1 ||
  { cat "$WORK/pam-auth-update.log" >&2; fail "pam-auth-update --enable credd failed"; }
grep -qE '^auth[[:space:]]+\[success=[0-9]+ user_unknown=ignore default=die\][[:space:]]+pam_credd\.so' /etc/pam.d/common-auth ||
  { cat /etc/pam.d/common-auth >&2; fail "common-auth has no credd line with a numeric success jump"; }
grep -qE '^auth[[:space:]].*pam_unix\.so.*try_first_pass' /etc/pam.d/common-auth ||
  fail "pam_unix in common-auth lacks try_first_pass after credd"
grep -q pam_credd /etc/pam.d/common-session-noninteractive &&
  fail "credd's session line is in common-session-noninteractive (cron)"
cat >/etc/pam.d/credd-pkgtest-common <<'EOF'
@include common-auth
@include common-account
@include common-password
EOF
expect_pam ok credd-pkgtest-common "$USER_A" "$NEW_A"$'\n' authenticate acct_mgmt
expect_pam fail credd-pkgtest-common "$USER_A" "$SHADOW_A"$'\n' authenticate
expect_pam ok credd-pkgtest-common "$USER_B" "$PW_B"$'\n' authenticate acct_mgmt
log "password changes through common-password: credd's account in credd, b's in /etc/shadow"
shadow_a=$(getent shadow "$USER_A")
expect_pam ok credd-pkgtest-common "$USER_A" "$NEWER_A"$'\n'"$NEWER_A"$'\n' chauthtok
expect_pam ok credd-pkgtest-common "$USER_A" "$NEWER_A"$'\n' authenticate
[ "$(getent shadow "$USER_A")" = "$shadow_a" ] || fail "a change of $USER_A's credd password touched /etc/shadow"
NEW_A=$NEWER_A
expect_pam ok credd-pkgtest-common "$USER_B" "$NEW_B"$'\n'"$NEW_B"$'\n' chauthtok
expect_pam ok credd-pkgtest-common "$USER_B" "$NEW_B"$'\n' authenticate
/usr/sbin/credctl user show "$USER_B" >/dev/null 2>&1 && fail "$USER_B became a credd account"
/usr/sbin/credctl lock "$USER_A" --reason "package test" >/dev/null
expect_pam fail credd-pkgtest-common "$USER_A" "$NEW_A"$'\n' authenticate
/usr/sbin/credctl unlock "$USER_A" >/dev/null

log "credd down: credd's accounts fail closed, root's account check passes (break-glass)"
stop_daemon
expect_pam fail credd-pkgtest-common "$USER_A" "$SHADOW_A"$'\n' authenticate
expect_pam fail credd-pkgtest-common "$USER_B" "" acct_mgmt
expect_pam ok credd-pkgtest-common root "" acct_mgmt
start_daemon
expect_pam ok credd-pkgtest-common "$USER_A" "$NEW_A"$'\n' authenticate acct_mgmt

# ---------------------------------------------------------------------------------------------
# Removal

log "dpkg -r must refuse while /etc/pam.d files still load pam_credd.so"
if dpkg -r credd >"$WORK/dpkg-r-refused.log" 2>&1; then
  cat "$WORK/dpkg-r-refused.log" >&2
  fail "dpkg -r removed credd although /etc/pam.d/credd-pkgtest loads pam_credd.so"
fi
grep -q 'credd-pkgtest' "$WORK/dpkg-r-refused.log" || { cat "$WORK/dpkg-r-refused.log" >&2; fail "the refusal does not name the file"; }
[ "$(dpkg-query -W -f='${db:Status-Status}' credd)" = installed ] || fail "credd is no longer installed after the refused removal"
echo credd install | dpkg --set-selections
[ -f "$SECURITY" ] || fail "the module went away although the removal was refused"
grep -q pam_credd /etc/pam.d/common-auth || fail "the refused removal still changed common-auth"

log "dpkg -r with only the profile left: it is taken out, the daemon stopped, the data kept"
rm -f /etc/pam.d/credd-pkgtest /etc/pam.d/credd-pkgtest-common /etc/pam.d/sshd-credd-test "$SSHD"
dpkg -r credd >"$WORK/dpkg-r.log" 2>&1 || { cat "$WORK/dpkg-r.log" >&2; fail "dpkg -r credd failed"; }
PROFILE=no
for _ in $(seq 50); do
  kill -0 "$DAEMON_PID" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$DAEMON_PID" 2>/dev/null && fail "removing the package did not stop credd"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=
grep -qs pam_credd /etc/pam.d/* && fail "a file in /etc/pam.d still loads pam_credd.so after removal"
for f in "$WORK"/common-saved/*; do
  cmp -s "$f" "/etc/pam.d/${f##*/}" || { diff -u "$f" "/etc/pam.d/${f##*/}" >&2; fail "/etc/pam.d/${f##*/} differs from before the profile was enabled"; }
done
for f in "${PACKAGED_FILES[@]}"; do
  [ "$f" = /etc/credd/credd.toml ] && continue
  [ ! -e "$f" ] || fail "$f is still there after dpkg -r"
done
[ -f /etc/credd/credd.toml ] || fail "dpkg -r removed the conffile"
for f in /var/lib/credd/credd.db /var/lib/credd/audit.key; do
  [ -f "$f" ] || fail "dpkg -r removed $f"
done
[ "$(dpkg-query -W -f='${db:Status-Status}' credd)" = config-files ] || fail "credd is not in state config-files"

log "reinstalled, credd serves the kept database"
dpkg_i
grep -q 'deny = 20' /etc/credd/credd.toml || fail "reinstalling replaced the edited conffile"
start_daemon
/usr/sbin/credctl user show "$USER_A" >/dev/null || fail "$USER_A is gone after remove and reinstall"
/usr/sbin/credctl audit verify >/dev/null || fail "the audit chain does not verify after remove and reinstall"
stop_daemon
log "credctl restore of the backup, credd stopped"
/usr/sbin/credctl restore "$WORK/backup.db" >/dev/null
start_daemon
/usr/sbin/credctl user show "$USER_A" >/dev/null || fail "$USER_A is missing from the restored database"
/usr/sbin/credctl check >/dev/null || fail "credctl check finds a problem after the restore"
/usr/sbin/credctl audit verify >/dev/null || fail "the audit chain does not verify after the restore"
stop_daemon
dpkg -r credd >"$WORK/dpkg-r2.log" 2>&1 || { cat "$WORK/dpkg-r2.log" >&2; fail "the second dpkg -r failed"; }

log "dpkg --purge: nothing left"
dpkg --purge credd >"$WORK/dpkg-purge.log" 2>&1 || { cat "$WORK/dpkg-purge.log" >&2; fail "dpkg --purge credd failed"; }
INSTALLED=no
dpkg-query -W -f='${Status}' credd 2>/dev/null | grep -q 'installed\|config-files' && fail "dpkg still knows credd"
for path in "${PACKAGED_FILES[@]}" /etc/credd /var/lib/credd /run/credd \
  /usr/share/doc/credd /etc/systemd/system/multi-user.target.wants/credd.service \
  /etc/systemd/system/credd.service /var/lib/systemd/deb-systemd-helper-enabled/credd.service.dsh-also \
  /var/lib/systemd/deb-systemd-helper-masked/credd.service; do
  if [ -e "$path" ] || [ -L "$path" ]; then
    fail "$path is left after purge"
  fi
done
grep -qs pam_credd /etc/pam.d/* && fail "/etc/pam.d refers to pam_credd.so after purge"

echo "PASSED $NAME in $((SECONDS - STARTED))s (exposure $exposure)"
