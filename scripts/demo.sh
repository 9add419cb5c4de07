#!/usr/bin/env bash
# `make demo`: the whole login lifecycle against real libpam, on a private temporary store.
# Starts credd on a temporary directory, manages an account with credctl, logs in through
# pam_credd.so (loaded by libpam from a private stack), and stops everything it started.
set -euo pipefail

# libpam resolves a relative module path against its own directory: make it absolute.
bin=$(cd "${1:-target/release}" && pwd)
credd=$bin/credd
credctl=$bin/credctl
module=$bin/libpam_credd.so
pam_login=$bin/pam-login
for f in "$credd" "$credctl" "$module" "$pam_login"; do
  [ -e "$f" ] || { echo "demo: $f is missing; run 'make demo'" >&2; exit 1; }
done

work=$(mktemp -d /tmp/credd-demo.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export CREDD_ADMIN_SOCKET=$work/run/admin.sock
pam_sock=$work/run/pam.sock
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# Expect pam-login to print exactly $1 for the step; fail the demo otherwise.
login() {
  local expect=$1 user=$2 password=$3 steps=${4:-auth}
  printf '$ pam-login %s (password: %s) [%s]\n' "$user" "${password:0:3}…" "$steps"
  local out
  out=$(printf '%s\n' "$password" | "$pam_login" "$module" "$pam_sock" "$user" "$steps" || true)
  printf '%s\n' "$out" | sed 's/^/  /'
  grep -q -- "$expect" <<<"$out" || { echo "demo: expected $expect" >&2; exit 1; }
}

step "start credd on $work (PBKDF2-HMAC-SHA256, 600000 iterations, deny = 5, codes live 15m)"
# Defaults throughout. The demo logs alice in some twenty times within seconds, past the default
# per-account rate limit (10 at once, then 10 a minute): right passwords give their tokens back,
# so only the wrong guesses below count.
cat >"$work/credd.toml" <<'TOML'
# credd's defaults (docs/lockout.md, README "Configuration")
TOML
chmod 600 "$work/credd.toml"
run cat "$work/credd.toml"
"$credd" --config "$work/credd.toml" --runtime-dir "$work/run" --state-dir "$work/state" \
  2> >(tee "$work/credd.log" | sed -u 's/^/  [credd] /' >&2) &
pid=$!
# credd prints its ready line only once both sockets accept connections.
timeout 30 grep -q -m1 'credd: ready' <(tail -F "$work/credd.log" 2>/dev/null) \
  || { echo "demo: credd did not become ready" >&2; exit 1; }

step "an administrator adds alice"
printf 'correct horse battery staple\n' | run "$credctl" user add alice --uid 60001 --password-stdin
run "$credctl" user show alice

step "alice logs in with her password"
login "authenticate: PAM_SUCCESS" alice "correct horse battery staple" both

step "a wrong password is refused"
login "authenticate: PAM_AUTH_ERR" alice "correct horse battery stable"

step "an unknown user is reported as unknown (so a stack can fall through to pam_unix)"
login "authenticate: PAM_USER_UNKNOWN" mallory "anything at all"

step "four more wrong passwords: with the one above that makes deny = 5, and alice is locked"
echo "   (unlock_time = \"never\" by default: only an administrator unlocks; even her real password is refused)"
for i in 1 2 3 4; do
  login "authenticate: PAM_AUTH_ERR" alice "wrong guess number $i"
done
login "account is locked" alice "correct horse battery staple"
run "$credctl" status alice
run "$credctl" status

step "the administrator unlocks alice; her password works again"
run "$credctl" unlock alice
login "authenticate: PAM_SUCCESS" alice "correct horse battery staple"
run "$credctl" status --daemon

step "the administrator disables alice: account management refuses her"
run "$credctl" user disable alice
login "acct_mgmt: PAM_ACCT_EXPIRED" alice "correct horse battery staple" account
run "$credctl" user enable alice

step "the administrator sets a new password that alice must change at next login"
printf 'temporary password 42\n' | run "$credctl" passwd alice --password-stdin --must-change
login "acct_mgmt: PAM_NEW_AUTHTOK_REQD" alice "temporary password 42" both

step "the administrator resets alice: a temporary access code, shown once (expiry on stderr)"
code=$("$credctl" reset alice)
echo "   code: $code"
login "authenticate: PAM_AUTH_ERR" alice "temporary password 42"

step "alice types the code (in lower case), is made to choose a new password, and is in"
printf '$ pam-login alice (code, then the new password twice) [change]\n'
out=$(printf '%s\n%s\n%s\n' "${code,,}" "brand new passphrase 7" "brand new passphrase 7" \
  | "$pam_login" "$module" "$pam_sock" alice change || true)
printf '%s\n' "$out" | sed 's/^/  /'
grep -q "chauthtok: PAM_SUCCESS" <<<"$out" || { echo "demo: the forced change failed" >&2; exit 1; }
login "authenticate: PAM_SUCCESS" alice "brand new passphrase 7"
login "authenticate: PAM_AUTH_ERR" alice "$code"
echo "   (the code was single use)"

step "bulk administration: CSV imports, checked whole, applied in one transaction"
cat >"$work/new.csv" <<'CSV'
user,action,uid
bob,add,60002
carol,add,60003
dave,add,60004
CSV
cat >"$work/changes.csv" <<'CSV'
user,action,reason
bob,reset,
carol,lock,left the project
dave,disable,
mallory,disable,
CSV
run "$credctl" import "$work/new.csv"
run cat "$work/changes.csv"
echo "   (mallory does not exist: the whole file is refused and nothing changes)"
run "$credctl" import "$work/changes.csv" --codes-out "$work/codes.csv" || true
sed -i '/^mallory/d' "$work/changes.csv"
run "$credctl" import "$work/changes.csv" --codes-out "$work/codes.csv"
run ls -l "$work/codes.csv"
bob_code=$(sed -n '2p' "$work/codes.csv" | cut -d, -f2)
printf '$ pam-login bob (the code from the codes file, then a new password twice) [change]\n'
printf '%s\n%s\n%s\n' "$bob_code" "quiet harbour lights 9" "quiet harbour lights 9" \
  | "$pam_login" "$module" "$pam_sock" bob change | sed 's/^/  /'
login "authenticate: PAM_SUCCESS" bob "quiet harbour lights 9"

step "the account list"
run "$credctl" user list

step "the audit trail of everything above, and a check of its HMAC chain"
run "$credctl" audit
run "$credctl" audit verify

step "credd stops (SIGTERM): logins fail closed with PAM_AUTHINFO_UNAVAIL"
kill -TERM "$pid"; wait "$pid"; pid=""
login "authenticate: PAM_AUTHINFO_UNAVAIL" alice "brand new passphrase 7"

step "demo complete: every outcome was as expected"
