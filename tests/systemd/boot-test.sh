#!/usr/bin/env bash
# The systemd test (issue 20): the credd package under a real systemd, in a minimal Debian 12
# booted with systemd-nspawn, checking what credd.service promises on a running system.
#
#   tests/systemd/boot-test.sh [PATH/TO/credd_VERSION_amd64.deb]       (make systemd-test)
#
# Without a path it builds the package (scripts/build-deb.sh). Root only; SKIPPED with the reason
# when not root, not Debian/amd64, or when the container cannot be built or does not boot. It
# changes nothing on this machine outside $CARGO_TARGET_DIR (default target/): the root file system
# is built once by debootstrap (minbase, plus systemd, systemd-sysv, dbus and pamtester — nothing
# else, so that a dependency the package forgets shows) and cached in target/systemd-test/, keyed by
# that package list, the suite and the mirror; every run boots a fresh copy of it.
#
# Checks, in the booted container: the package installs from the file with what the minimal system
# has (no procps); `systemctl start` returns only when credd serves (Type=notify: a login right
# after every start); the sandbox on the running process (/proc/PID/status NoNewPrivs, Seccomp,
# CapEff/CapPrm/CapBnd against the unit's CapabilityBoundingSet=; in its mount namespace writes fail
# everywhere but /var/lib/credd, /run/credd and a private /tmp; home directories hidden; only a
# loopback device); `systemctl reload` applies a changed deny at once and refuses a broken file
# (reload fails, the reason in the journal, the old deny in force); kill -9 → restarted, locks kept,
# logins work; the pam-auth-update profile through the login and su services (pamtester, su run by
# a user with the password piped), root's break-glass with credd stopped, --disable and apt purge
# leaving pam_unix logins working; systemd-analyze security on the live unit; the audit events in
# the journal with their fields.
set -euo pipefail

NAME=boot-test.sh
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STARTED=$SECONDS
SUITE=bookworm
MIRROR=${CREDD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The container's system: debootstrap's --include, then what the test itself runs inside.
INCLUDE=systemd,systemd-sysv,dbus
TEST_TOOLS=(pamtester)
CACHE_FORMAT=1 # bump when the way the root file system is made changes

skip() {
  echo "SKIPPED $NAME: $*"
  exit 0
}
log() { echo "[$NAME $((SECONDS - STARTED))s] $*" >&2; }
fail() {
  echo "FAILED $NAME: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, systemd-nspawn)"
command -v dpkg >/dev/null && command -v apt-get >/dev/null || skip "not a Debian system"
[ "$(dpkg --print-architecture)" = amd64 ] || skip "the package is built for amd64"
"$ROOT/tests/systemd/ensure-deps.sh"

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CACHE_DIR=$TARGET/systemd-test
KEY=$(printf '%s\n' "$CACHE_FORMAT" "$SUITE" "$MIRROR" "$INCLUDE" "${TEST_TOOLS[*]}" | sha256sum | cut -c1-16)
ROOTFS=$CACHE_DIR/rootfs-$KEY
mkdir -p "$CACHE_DIR"
RUN=$(mktemp -d "$CACHE_DIR/run.XXXXXX")
MACHINE=credd-systemd-test
NSPAWN_PID=
LEADER=

cleanup() {
  local rc=$?
  set +e
  if [ -n "$NSPAWN_PID" ]; then
    # SIGRTMIN+4 asks the container's systemd to power off; then systemd-nspawn exits. Past 10 s:
    # SIGKILL to its PID 1 (which ends the container) and to systemd-nspawn.
    [ -n "$LEADER" ] && kill -s SIGRTMIN+4 "$LEADER" 2>/dev/null
    for _ in $(seq 100); do
      kill -0 "$NSPAWN_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$NSPAWN_PID" 2>/dev/null; then
      echo "[$NAME] the container did not power off within 10 s; killing it" >&2
      [ -n "$LEADER" ] && kill -KILL "$LEADER" 2>/dev/null
      kill -KILL "$NSPAWN_PID" 2>/dev/null
    fi
    wait "$NSPAWN_PID" 2>/dev/null
  fi
  if [ $rc -ne 0 ] || [ -n "${CREDD_SYSTEMD_TEST_KEEP:-}" ]; then
    echo "[$NAME] the container's files and the logs are kept in $RUN (boot.log, journal.txt)" >&2
  else
    rm -rf "$RUN"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'echo "FAILED $NAME: line $LINENO: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# The package and the container

if [ $# -ge 1 ]; then
  DEB=$(readlink -f "$1")
  [ -f "$DEB" ] || fail "$1: no such package file"
else
  log "building the package (scripts/build-deb.sh)"
  "$ROOT/scripts/ensure-deps.sh"
  DEB=$("$ROOT/scripts/build-deb.sh" | tail -n 1)
fi
dpkg-deb -f "$DEB" Package | grep -qx credd || fail "$DEB is not the credd package"

if [ -d "$ROOTFS" ]; then
  log "root file system from the cache ($ROOTFS)"
  DEBOOTSTRAP_TIME=cached
else
  log "debootstrap --variant=minbase --include=$INCLUDE $SUITE (cached afterwards in $CACHE_DIR)"
  t=$SECONDS
  rm -rf "$CACHE_DIR"/rootfs-* "$CACHE_DIR/building"
  if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$CACHE_DIR/building" "$MIRROR" \
    >"$RUN/debootstrap.log" 2>&1; then
    tail -n 5 "$RUN/debootstrap.log" >&2
    rm -rf "$CACHE_DIR/building"
    skip "debootstrap of $SUITE from $MIRROR failed (log above); no container to boot"
  fi
  systemd-nspawn -q -D "$CACHE_DIR/building" --register=no --keep-unit --pipe \
    -E DEBIAN_FRONTEND=noninteractive \
    sh -c "apt-get install -y -qq --no-install-recommends ${TEST_TOOLS[*]} && apt-get clean" \
    >"$RUN/tools.log" 2>&1 || { cat "$RUN/tools.log" >&2; fail "installing ${TEST_TOOLS[*]} in the container failed"; }
  mv "$CACHE_DIR/building" "$ROOTFS"
  DEBOOTSTRAP_TIME="$((SECONDS - t))s"
  log "root file system built in $DEBOOTSTRAP_TIME"
fi
cp -a "$ROOTFS" "$RUN/root"
CROOT=$RUN/root
cp "$DEB" "$CROOT/root/credd.deb"

log "booting it (systemd-nspawn --boot)"
t=$SECONDS
# --private-network: the container owns its network namespace (and CAP_NET_ADMIN in it), so that
# PrivateNetwork= brings up the service's loopback as on a host; nothing in it needs the network.
systemd-nspawn -q -D "$CROOT" --boot --register=no --keep-unit --private-network \
  -M "$MACHINE" </dev/null >"$RUN/boot.log" 2>&1 &
NSPAWN_PID=$!
state=
for _ in $(seq 600); do
  kill -0 "$NSPAWN_PID" 2>/dev/null || break
  # The container's PID 1 is nspawn's child named systemd: an intermediate child seen in the
  # first moments exits, so a pid that is gone, or is not systemd, is looked for again.
  if [ -n "$LEADER" ] && [ "$(cat "/proc/$LEADER/comm" 2>/dev/null)" != systemd ]; then
    LEADER=
  fi
  [ -n "$LEADER" ] || LEADER=$(for p in $(pgrep -P "$NSPAWN_PID"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && echo "$p"
  done | head -n 1) || true
  if [ -n "$LEADER" ]; then
    state=$(nsenter -t "$LEADER" -a systemctl is-system-running 2>/dev/null) || true
    case $state in running | degraded) break ;; esac
  fi
  sleep 0.1
done
case $state in
running) ;;
degraded)
  log "the container's system is degraded before credd is installed:"
  nsenter -t "$LEADER" -a systemctl --failed --no-pager >&2 || true
  ;;
*)
  tail -n 20 "$RUN/boot.log" >&2
  skip "the container did not boot within 60 s (state '${state:-none}'; boot log above)"
  ;;
esac
BOOT_TIME=$((SECONDS - t))
log "booted in ${BOOT_TIME}s"

# A command in the booted system: every namespace of its PID 1, a clean environment.
c() { nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive "$@"; }
# pamtester in the container; $1 ok|fail, $2 service, $3 user, $4 the password lines, then ops.
pam() {
  local want=$1 service=$2 user=$3 input=$4
  shift 4
  local out rc=0
  out=$(printf '%s' "$input" | c pamtester -v "$service" "$user" "$@" 2>&1) || rc=$?
  if [ "$want" = ok ] && [ $rc -ne 0 ]; then
    fail "pamtester $service $user $* failed: $out"
  elif [ "$want" = fail ] && [ $rc -eq 0 ]; then
    fail "pamtester $service $user $* succeeded, it must fail: $out"
  fi
  return 0
}
# su run by user $2 to user $3 with the password $4 piped in; $1 ok|fail.
su_as() {
  local want=$1 from=$2 to=$3 pw=$4 out rc=0
  out=$(c setpriv --reuid="$from" --regid="$from" --init-groups \
    sh -c 'printf "%s\n" "$1" | su "$2" -c "id -un"' sh "$pw" "$to" 2>"$RUN/su.err") || rc=$?
  if [ "$want" = ok ] && { [ $rc -ne 0 ] || [ "$out" != "$to" ]; }; then
    fail "su from $from to $to failed: $out $(cat "$RUN/su.err")"
  elif [ "$want" = fail ] && [ $rc -eq 0 ]; then
    fail "su from $from to $to succeeded, it must fail: $out"
  fi
  return 0
}
main_pid() { c systemctl show -p MainPID --value credd; }
is_locked() { c credctl status "$1" --json | grep -q '"locked": *true'; }
journal() { c journalctl --sync >/dev/null 2>&1 || true; c journalctl -u credd --no-pager -o cat "$@"; }
set_deny() { # $1: the value written under [lockout], as TOML
  python3 - "$CROOT/etc/credd/credd.toml" "$1" <<'EOF'
import re, sys
path, value = sys.argv[1], sys.argv[2]
text = re.sub(r"\n\[lockout\]\n(deny = .*\n)?", "\n[lockout]\ndeny = %s\n" % value, open(path).read())
open(path, "w").write(text)
EOF
}

# ---------------------------------------------------------------------------------------------
# Install

[ ! -e "$CROOT/bin/kill" ] && [ ! -e "$CROOT/usr/bin/kill" ] || fail "the container has a /bin/kill: it is not minimal"
log "apt-get install ./credd.deb (only what the minimal system has)"
c apt-get install -y -qq --no-install-recommends /root/credd.deb >"$RUN/install.log" 2>&1 ||
  { cat "$RUN/install.log" >&2; fail "installing the package failed"; }
[ "$(c systemctl is-active credd)" = active ] || { journal >&2; fail "credd is not active after installation"; }
[ "$(c systemctl show -p Type --value credd)" = notify ] || fail "credd.service is not Type=notify"
c systemctl is-enabled -q credd || fail "credd.service is not enabled"
status=$(c systemctl show -p StatusText --value credd)
[ "$status" = serving ] || fail "credd's status text is '$status', not 'serving' (READY=1 not sent?)"
verify=$(c systemd-analyze verify /lib/systemd/system/credd.service 2>&1) || true
# The minimal system has no man-db: verify cannot look up the man pages of Documentation=.
if ! c sh -c 'command -v man' >/dev/null; then
  verify=$(grep -v "Command 'man [a-z_.]*([0-9])' failed with code 1" <<<"$verify" || true)
fi
[ -z "$verify" ] || fail "systemd-analyze verify on the installed unit: $verify"
c dpkg-query -W -f='${Status}' procps 2>/dev/null | grep -q installed && fail "procps got installed"

# Accounts: alice and bob in credd (each with another, shadow, password), dave pam_unix only.
PW_A='correct horse battery 1'
PW_B='battery staple horse 2'
SHADOW_A='shadow only password A'
PW_D='pam_unix password of D'
PW_ROOT='root shadow password 9'
for u in alice bob dave; do c useradd -m -s /bin/sh "$u"; done
printf 'alice:%s\nbob:%s\ndave:%s\nroot:%s\n' "$SHADOW_A" "$SHADOW_A" "$PW_D" "$PW_ROOT" | c chpasswd
printf '%s\n' "$PW_A" | c credctl user add alice --password-stdin >/dev/null
printf '%s\n' "$PW_B" | c credctl user add bob --password-stdin >/dev/null
printf 'auth required pam_credd.so\naccount required pam_credd.so\n' >"$CROOT/etc/pam.d/credd-sdtest"

# ---------------------------------------------------------------------------------------------
log "readiness: a login right after every start (Type=notify)"
for i in 1 2 3 4 5; do
  # Five starts within 10 s are systemd's default StartLimitBurst=: forget the earlier ones.
  c systemctl reset-failed credd
  if [ $i -le 3 ]; then c systemctl restart credd; else c systemctl stop credd && c systemctl start credd; fi
  c test -S /run/credd/pam.sock -a -S /run/credd/admin.sock || fail "start $i returned before the sockets exist"
  pam ok credd-sdtest alice "$PW_A"$'\n' authenticate acct_mgmt
done
journal | grep -q 'Failed to configure loopback' && fail "the service's loopback device could not be set up"

# ---------------------------------------------------------------------------------------------
log "the sandbox on the running process"
PID=$(main_pid)
proc=$(c cat "/proc/$PID/status")
field() { sed -n "s/^$1:[[:space:]]*//p" <<<"$proc"; }
[ "$(field NoNewPrivs)" = 1 ] || fail "NoNewPrivs is $(field NoNewPrivs)"
[ "$(field Seccomp)" = 2 ] || fail "Seccomp is $(field Seccomp) (2 = filter)"
CAP_NAMES=(chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap
  linux_immutable net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module
  sys_rawio sys_chroot sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time
  sys_tty_config mknod lease audit_write audit_control setfcap mac_override mac_admin syslog
  wake_alarm block_suspend audit_read perfmon bpf checkpoint_restore)
mask=0
for cap in $(sed -n 's/^CapabilityBoundingSet=//p' "$CROOT/lib/systemd/system/credd.service"); do
  want=${cap#CAP_}
  want=${want,,}
  for i in "${!CAP_NAMES[@]}"; do
    [ "${CAP_NAMES[$i]}" = "$want" ] && mask=$((mask | (1 << i)))
  done
done
[ $mask -ne 0 ] || fail "no capability parsed from CapabilityBoundingSet="
want_caps=$(printf '%016x' $mask)
for set in CapBnd CapEff CapPrm; do
  [ "$(field $set)" = "$want_caps" ] || fail "$set is $(field $set), the unit names $want_caps"
done
[ "$(field CapAmb)" = 0000000000000000 ] || fail "CapAmb is $(field CapAmb)"
# The mount namespace of credd's process, entered with nsenter: a write fails there unless the
# path is in StateDirectory=, RuntimeDirectory= or the private /tmp, whoever tries it.
probe=$(c nsenter -t "$PID" -m sh -c '
  for d in / /etc /etc/credd /usr /usr/sbin /var /var/lib /var/log /var/cache /run /run/systemd /run/lock \
           /dev /dev/shm /dev/hugepages /boot /srv /opt /mnt /media /var/lib/credd /run/credd /tmp /var/tmp; do
    [ -d "$d" ] || continue
    if (: >"$d/.credd-probe") 2>/dev/null; then rm -f "$d/.credd-probe"; echo "writable $d"; else echo "refused $d"; fi
  done
  [ -e /home/alice ] && echo "visible /home/alice"; [ -e /root/credd.deb ] && echo "visible /root/credd.deb"
  (: >/tmp/.credd-private) && echo "wrote /tmp/.credd-private"
  true')
writable=$(sed -n 's/^writable //p' <<<"$probe" | tr '\n' ' ')
[ "$writable" = "/var/lib/credd /run/credd /tmp /var/tmp " ] ||
  fail "writable in credd's mount namespace: $writable(only /var/lib/credd /run/credd /tmp /var/tmp may be)"
grep -q '^visible' <<<"$probe" && fail "ProtectHome= does not hide: $(grep '^visible' <<<"$probe" | tr '\n' ' ')"
c test -e /tmp/.credd-private && fail "credd's /tmp is the system's (PrivateTmp=)"
devices=$(c cat "/proc/$PID/net/dev" | awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' | tr '\n' ' ')
[ "$devices" = "lo " ] || fail "credd's network namespace has: $devices(PrivateNetwork= gives only lo)"
log "  NoNewPrivs 1, Seccomp 2, CapBnd=CapEff=CapPrm $want_caps; writable: $writable; network: $devices"

# ---------------------------------------------------------------------------------------------
log "systemctl reload: a changed deny applies at once, a broken file changes nothing"
# Under the default deny (5) two wrong passwords do not lock bob, and his right one clears them.
pam fail credd-sdtest bob "wrong 1"$'\n' authenticate
pam fail credd-sdtest bob "wrong 2"$'\n' authenticate
pam ok credd-sdtest bob "$PW_B"$'\n' authenticate
set_deny 2
c systemctl reload credd || { journal | tail -n 20 >&2; fail "systemctl reload failed on a good file"; }
[ "$(main_pid)" = "$PID" ] || fail "reload changed the main PID"
pam fail credd-sdtest bob "wrong 1"$'\n' authenticate
pam fail credd-sdtest bob "wrong 2"$'\n' authenticate
pam fail credd-sdtest bob "$PW_B"$'\n' authenticate
is_locked bob || fail "bob is not locked after 2 failures with deny = 2"
c credctl unlock bob >/dev/null
set_deny '"two"'
if c systemctl reload credd 2>"$RUN/reload-broken.txt"; then fail "systemctl reload succeeded on a broken file"; fi
[ "$(c systemctl is-active credd)" = active ] && [ "$(main_pid)" = "$PID" ] || fail "a broken file stopped credd"
journal | grep -q 'configuration not reloaded, the running one stays: .*deny' ||
  { journal | tail -n 20 >&2; fail "the journal does not say why the reload was refused"; }
pam fail credd-sdtest bob "wrong 1"$'\n' authenticate
pam fail credd-sdtest bob "wrong 2"$'\n' authenticate
pam fail credd-sdtest bob "$PW_B"$'\n' authenticate
is_locked bob || fail "after a refused reload deny = 2 is no longer in force"
set_deny 2
c systemctl reload credd || fail "reload of the repaired file failed"

# ---------------------------------------------------------------------------------------------
log "kill -9: restarted by systemd, bob's lock kept, logins work"
c credctl lock alice --reason "before kill -9" >/dev/null
c sh -c "kill -9 $PID" # the shell's kill: the container has no /bin/kill
for _ in $(seq 100); do
  new=$(main_pid)
  [ "$new" != 0 ] && [ "$new" != "$PID" ] && [ "$(c systemctl is-active credd)" = active ] && break
  sleep 0.1
done
[ "$(c systemctl is-active credd)" = active ] && [ "$(main_pid)" != "$PID" ] || fail "credd was not restarted after kill -9"
[ "$(c systemctl show -p NRestarts --value credd)" = 1 ] || fail "NRestarts is not 1"
is_locked bob || fail "bob's failures lock did not survive kill -9"
is_locked alice || fail "alice's administrative lock did not survive kill -9"
pam fail credd-sdtest alice "$PW_A"$'\n' authenticate
c credctl unlock alice >/dev/null
c credctl unlock bob >/dev/null
pam ok credd-sdtest alice "$PW_A"$'\n' authenticate acct_mgmt
pam ok credd-sdtest bob "$PW_B"$'\n' authenticate acct_mgmt
PID=$(main_pid)

# ---------------------------------------------------------------------------------------------
log "pam-auth-update --enable credd: login and su through common-*"
mkdir -p "$RUN/common-saved"
cp -p "$CROOT"/etc/pam.d/common-* "$RUN/common-saved/"
c pam-auth-update --enable credd >"$RUN/pam-auth-update.log" 2>&1 || { cat "$RUN/pam-auth-update.log" >&2; fail "pam-auth-update --enable failed"; }
grep -q pam_credd "$CROOT/etc/pam.d/common-auth" || fail "common-auth has no pam_credd line"
pam ok login alice "$PW_A"$'\n' authenticate acct_mgmt
pam fail login alice "$SHADOW_A"$'\n' authenticate
pam ok login dave "$PW_D"$'\n' authenticate acct_mgmt
su_as ok dave alice "$PW_A"
su_as fail dave alice "$SHADOW_A"
su_as ok alice dave "$PW_D"
su_as fail alice bob "wrong password"

log "credd stopped: everyone fails closed; root's ways in (section 6) still work"
c systemctl stop credd
pam fail login alice "$PW_A"$'\n' authenticate
pam fail login dave "$PW_D"$'\n' authenticate
pam fail login dave "" acct_mgmt
pam ok login root "" acct_mgmt # root's key logins: the account stack lets uid 0 through
su_as fail alice dave "$PW_D"
# Even root's su to another account: its account check fails while credd cannot answer (only
# uid 0 passes, section 4.1); root's own sessions are the way to repair (section 6).
c su -s /bin/sh dave -c true 2>/dev/null && fail "root's su to dave passed the account check while credd is down"
c systemctl start credd
pam ok login alice "$PW_A"$'\n' authenticate acct_mgmt

# ---------------------------------------------------------------------------------------------
log "systemd-analyze security on the live unit"
c systemd-analyze security credd --no-pager >"$RUN/security-live.txt" 2>&1 || true
c systemd-analyze security --offline=true /lib/systemd/system/credd.service --no-pager >"$RUN/security-offline.txt" 2>&1 || true
score() { sed -n 's/.*Overall exposure level for credd.service: \([0-9.]*\).*/\1/p' "$1"; }
LIVE=$(score "$RUN/security-live.txt")
OFFLINE=$(score "$RUN/security-offline.txt")
[ -n "$LIVE" ] && [ -n "$OFFLINE" ] || { cat "$RUN/security-live.txt" >&2; fail "no exposure level"; }
log "  exposure: live $LIVE, offline $OFFLINE"
awk -v e="$LIVE" 'BEGIN { exit !(e <= 2.0) }' || fail "live exposure $LIVE is above 2.0"

# ---------------------------------------------------------------------------------------------
log "the audit events in the journal of credd.service, with their fields"
c journalctl --sync >/dev/null 2>&1 || true
c journalctl -u credd -o json --no-pager >"$RUN/journal.json"
python3 - "$RUN/journal.json" <<'EOF' || fail "audit events missing from the journal (see above)"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
def msg(r):
    m = r.get("MESSAGE", "")
    return bytes(m).decode() if isinstance(m, list) else m
want = {
    "login_success": ["user=alice", "outcome=ok", "service=credd-sdtest"],
    "login_failure": ["user=bob", "service=credd-sdtest"],
    "account_locked": ["user=bob"],
    "config_reloaded": ["outcome=refused", "error="],
    "admin_lock": ["user=alice", "actor_uid=0", 'reason=\\"before kill -9\\"'],
    "daemon_started": ["outcome=ok", "pid="],
}
missing = []
for event, fields in want.items():
    for transport in ("syslog", "stdout"):
        hits = [r for r in rows if r.get("_TRANSPORT") == transport
                and r.get("_SYSTEMD_UNIT") == "credd.service"
                and f"event={event} " in msg(r) + " "
                and all(f in msg(r) for f in fields)]
        if transport == "syslog":
            hits = [r for r in hits if r.get("SYSLOG_IDENTIFIER") == "credd"
                    and r.get("SYSLOG_FACILITY") == "10"]
        if not hits:
            missing.append(f"{event} {' '.join(fields)} via {transport}")
if missing:
    print("not in the journal:", *missing, sep="\n  ", file=sys.stderr)
    sys.exit(1)
EOF
journal >"$RUN/journal.txt"

# ---------------------------------------------------------------------------------------------
log "pam-auth-update --disable credd, then apt purge: pam_unix logins work"
c pam-auth-update --disable credd >>"$RUN/pam-auth-update.log" 2>&1 || fail "pam-auth-update --disable failed"
for f in "$RUN"/common-saved/*; do
  cmp -s "$f" "$CROOT/etc/pam.d/${f##*/}" || { diff -u "$f" "$CROOT/etc/pam.d/${f##*/}" >&2; fail "${f##*/} differs after --disable"; }
done
pam ok login dave "$PW_D"$'\n' authenticate acct_mgmt
pam ok login alice "$SHADOW_A"$'\n' authenticate acct_mgmt
su_as ok alice dave "$PW_D"
log "the console break-glass of section 4.2 (credd by hand in one service), credd stopped"
cat >"$CROOT/etc/pam.d/credd-console" <<'EOF'
auth       [success=done user_unknown=1 authinfo_unavail=ignore default=die]  pam_credd.so
auth       [success=ignore default=die]  pam_succeed_if.so quiet uid eq 0
@include common-auth
account    [success=1 new_authtok_reqd=done user_unknown=1 authinfo_unavail=ignore default=die]  pam_credd.so
account    [success=ignore default=die]  pam_succeed_if.so quiet uid eq 0
@include common-account
EOF
pam ok credd-console alice "$PW_A"$'\n' authenticate acct_mgmt
pam fail credd-console alice "$SHADOW_A"$'\n' authenticate
c systemctl stop credd
pam ok credd-console root "$PW_ROOT"$'\n' authenticate acct_mgmt
pam fail credd-console root "wrong root password"$'\n' authenticate
pam fail credd-console alice "$SHADOW_A"$'\n' authenticate
pam fail credd-console dave "$PW_D"$'\n' authenticate
c systemctl start credd
rm -f "$CROOT/etc/pam.d/credd-console" "$CROOT/etc/pam.d/credd-sdtest"
c apt-get purge -y -qq credd >"$RUN/purge.log" 2>&1 || { cat "$RUN/purge.log" >&2; fail "apt purge credd failed"; }
c systemctl is-active -q credd && fail "credd still runs after purge"
for path in /etc/credd /var/lib/credd /run/credd /lib/systemd/system/credd.service /usr/sbin/credd \
  /lib/x86_64-linux-gnu/security/pam_credd.so /etc/systemd/system/multi-user.target.wants/credd.service; do
  [ -e "$CROOT$path" ] || [ -L "$CROOT$path" ] && fail "$path is left after purge"
done
grep -qs pam_credd "$CROOT"/etc/pam.d/* && fail "/etc/pam.d still names pam_credd after purge"
for f in "$RUN"/common-saved/*; do
  cmp -s "$f" "$CROOT/etc/pam.d/${f##*/}" || fail "${f##*/} differs after purge"
done
pam ok login dave "$PW_D"$'\n' authenticate acct_mgmt
pam ok login root "$PW_ROOT"$'\n' authenticate acct_mgmt
su_as ok alice dave "$PW_D"
su_as ok dave alice "$SHADOW_A"
failed=$(c systemctl --failed --no-legend --plain | tr '\n' ' ')
[ -z "$failed" ] || fail "failed units in the container: $failed"

echo "PASSED $NAME in $((SECONDS - STARTED))s (root file system: $DEBOOTSTRAP_TIME, boot ${BOOT_TIME}s, exposure live $LIVE / offline $OFFLINE)"
