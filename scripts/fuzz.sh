#!/usr/bin/env bash
# Coverage-guided fuzzing of credd's parsers (docs/fuzzing.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Runs each target (default: frame request csv config) for SECONDS_PER_TARGET (default 600) with
# cargo-fuzz on the nightly toolchain, one after the other, then prints one summary line per target:
# executions, executions per second, corpus size and crashes. Exits 1 when any target left a crash
# artifact (crash-*, leak-*, timeout-*, oom-* under fuzz/artifacts/TARGET/) in this run.
#
# The working corpus is fuzz/corpus/TARGET/ (not committed): filled from the committed seeds in
# fuzz/seeds/TARGET/, then grown by libFuzzer across runs. Logs: fuzz/target/fuzz-logs/TARGET.log.
# On a shared machine: nice -n 19 scripts/fuzz.sh.
set -euo pipefail

ALL_TARGETS=(frame request csv config)

root=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$root/fuzz"

seconds=${1:-600}
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]   (targets: ${ALL_TARGETS[*]})" >&2
    exit 2
fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then targets=("${ALL_TARGETS[@]}"); fi
for t in "${targets[@]}"; do
    if [[ ! -f $fuzz/fuzz_targets/$t.rs ]]; then
        echo "unknown target $t; the targets are ${ALL_TARGETS[*]}" >&2
        exit 2
    fi
done

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzzing needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

cd "$fuzz"
logs="$fuzz/target/fuzz-logs"
mkdir -p "$logs"

echo "building the fuzz targets (nightly, sanitizer coverage)" >&2
# `cargo fuzz build` takes one target or none (all of them).
build=()
if [[ ${#targets[@]} -eq 1 ]]; then build=("${targets[0]}"); fi
if ! cargo +nightly fuzz build "${build[@]}" >"$logs/build.log" 2>&1; then
    cat "$logs/build.log" >&2
    exit 1
fi

crash_artifacts() {
    find "$fuzz/artifacts/$1" -maxdepth 1 -type f \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) \
        -newer "$2" 2>/dev/null | sort
}

summaries=()
failed=0
for t in "${targets[@]}"; do
    corpus="$fuzz/corpus/$t"
    mkdir -p "$corpus" "$fuzz/artifacts/$t"
    cp -n "$fuzz/seeds/$t/"* "$corpus/" 2>/dev/null || true
    dict=()
    if [[ -f $fuzz/dicts/$t.dict ]]; then dict=("-dict=$fuzz/dicts/$t.dict"); fi
    stamp=$(mktemp)
    log="$logs/$t.log"
    echo "fuzzing $t for ${seconds}s (log: ${log#"$root"/})" >&2
    status=0
    cargo +nightly fuzz run "$t" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 \
        -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 || status=$?

    # libFuzzer's closing lines: "Done 123456 runs in 600 second(s)" and the stat:: block.
    runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    secs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -1)
    if [[ -z $runs ]]; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
    fi
    eps=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$log" | tail -1)
    corp=$(sed -n 's/^#[0-9]*.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' "$log" | tail -1)
    cov=$(sed -n 's/^#[0-9]*.* cov: \([0-9]*\) .*/\1/p' "$log" | tail -1)
    files=$(find "$corpus" -type f | wc -l)
    mapfile -t found < <(crash_artifacts "$t" "$stamp")
    rm -f "$stamp"

    line="$t: ${runs:-?} runs in ${secs:-?} s (${eps:-?} exec/s), corpus ${files} inputs"
    if [[ -n $corp ]]; then line+=" (libFuzzer corp ${corp})"; fi
    if [[ -n $cov ]]; then line+=", coverage ${cov} edges"; fi
    line+=", crashes ${#found[@]}"
    if [[ ${#found[@]} -gt 0 ]]; then
        failed=1
        line+=": ${found[*]#"$root"/}"
    elif [[ $status -ne 0 ]]; then
        failed=1
        line+=" (cargo fuzz exited with $status; see ${log#"$root"/})"
    fi
    summaries+=("$line")
    echo "$line" >&2
done

echo
echo "fuzz summary (${seconds}s per target):"
printf '  %s\n' "${summaries[@]}"
exit "$failed"
