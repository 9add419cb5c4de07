#!/usr/bin/env bash
# Import benchmark (docs/benchmarks.md): 100 000 `add` rows with pre-hashed passwords, then
# 100 000 `reset` rows, each through credctl into a release credd on a private temporary store.
# Prints the wall time of each import, end to end (credctl reading the CSV to the codes file).
set -euo pipefail
rows=${ROWS:-100000}
bin=$(cd "${1:-target/release}" && pwd)
work=$(mktemp -d /tmp/credd-bench.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  grep "import of" "$work/credd.log" || true; rm -rf "$work"
}
trap cleanup EXIT

printf '[audit]\nsyslog = "none"\n' >"$work/credd.toml"
chmod 600 "$work/credd.toml"
"$bin/credd" --config "$work/credd.toml" --runtime-dir "$work/run" --state-dir "$work/state" 2>"$work/credd.log" &
pid=$!
timeout 30 grep -q -m1 'credd: ready' <(tail -F "$work/credd.log" 2>/dev/null)
export CREDD_ADMIN_SOCKET=$work/run/admin.sock CREDCTL_SYSLOG=none

# One real PBKDF2-HMAC-SHA256 PHC string (600 000 iterations), reused for every row: the
# benchmark measures the import, not hashing.
hash=$(/usr/bin/python3 - <<'PY'
import base64, hashlib, os
salt = os.urandom(16)
dk = hashlib.pbkdf2_hmac("sha256", b"benchmark password", salt, 600000)
b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
print(f"$pbkdf2-sha256$i=600000,l=32${b64(salt)}${b64(dk)}")
PY
)
/usr/bin/python3 - "$rows" "$hash" "$work" <<'PY'
import sys
rows, phc, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(f"{work}/adds.csv", "w") as f:
    f.write("user,action,password_hash\n")
    for i in range(rows):
        f.write(f'bench{i:06d},add,"{phc}"\n')
with open(f"{work}/resets.csv", "w") as f:
    f.write("user,action\n")
    for i in range(rows):
        f.write(f"bench{i:06d},reset\n")
PY

measure() {
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  "$bin/credctl" "$@" >"$work/out.txt"
  end=$(date +%s.%N)
  printf '%-36s %8.2f s   (%s)\n' "$label" "$(echo "$end - $start" | bc)" "$(grep -m1 'time:' "$work/out.txt" | sed 's/^ *//')"
}
echo "rows per import: $rows"
measure "import $rows add rows (pre-hashed)" import "$work/adds.csv"
measure "import $rows reset rows (+ codes file)" import "$work/resets.csv" --allow-bulk --codes-out "$work/codes.csv"
echo "codes written: $(($(wc -l <"$work/codes.csv") - 1)), file mode $(stat -c %a "$work/codes.csv")"
"$bin/credctl" audit verify
