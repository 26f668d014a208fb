#!/usr/bin/env bash
# Fuzzes CPRA's parsers of untrusted input (manifests, HTTP responses, DNS replies, gRPC/HTTP2
# frames, SMTP replies) with libFuzzer on the stable toolchain: `cargo fuzz` without a
# sanitizer (ASan needs nightly), with debug assertions so that an overflow panics. Each
# target runs in turn for SECONDS, under nice, with a memory bound; its corpus grows in
# fuzz/corpus/TARGET (not committed) from the committed seeds in fuzz/seeds/TARGET.
#
# Prints a line per target (seconds, execs, execs/s, corpus size, crashes) and exits 1 if any
# target crashed (the input is in fuzz/artifacts/TARGET/; make it a unit test next to its
# parser, then fix it). Ctrl-C stops the running fuzzer.
#
# Usage: scripts/fuzz.sh [seconds] [target...]     (default 60 seconds, every target)
set -uo pipefail
seconds="${1:-60}"
case "$seconds" in
    '' | *[!0-9]* | 0) echo "usage: $0 [seconds] [target...]" >&2; exit 2 ;;
esac
shift $(($# > 0 ? 1 : 0))
# Bounds for one target: resident memory (libFuzzer also fails a single malloc above it), and
# one input's run time (a slow input is a finding too: a manifest that costs seconds to load).
rss_limit_mb="${FUZZ_RSS_LIMIT_MB:-1024}"
input_timeout_s="${FUZZ_INPUT_TIMEOUT_S:-10}"

root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/fuzz"
all=(manifest_yaml manifest_json http_response dns_answer grpc_frames smtp_reply)
targets=("${@:-${all[@]}}")

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "installing cargo-fuzz (cargo install cargo-fuzz)"
    cargo install --locked cargo-fuzz || exit 1
fi
cd "$fuzz" || exit 1
echo "building the fuzz targets (cargo fuzz build --sanitizer none --debug-assertions)"
cargo fuzz build --sanitizer none --debug-assertions || exit 1
bin_dir="$fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"

child=
stop() {
    if [ -n "$child" ]; then
        kill "$child" 2>/dev/null
        wait "$child" 2>/dev/null
    fi
    exit 130
}
trap stop INT TERM

crashed=0
printf '%-14s %8s %12s %9s %16s %8s\n' target seconds execs execs/s corpus crashes
for t in "${targets[@]}"; do
    if [ ! -x "$bin_dir/$t" ]; then
        echo "no such target: $t (targets: ${all[*]})" >&2
        exit 2
    fi
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/last-run.log"
    start=$(date +%s)
    nice -n 10 "$bin_dir/$t" "corpus/$t" "seeds/$t" \
        -max_total_time="$seconds" -rss_limit_mb="$rss_limit_mb" -timeout="$input_timeout_s" \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 &
    child=$!
    wait "$child"
    status=$?
    child=
    took=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    files=$(find "corpus/$t" -type f | wc -l)
    kib=$(($(du -sk "corpus/$t" | cut -f1)))
    found=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \
        -o -name 'leak-*' -o -name 'slow-unit-*' \) -newer "$log" 2>/dev/null | wc -l)
    if [ "$status" -ne 0 ] && [ "$found" -eq 0 ]; then
        found=1 # died without leaving an input (killed?): see the log
    fi
    printf '%-14s %8s %12s %9s %16s %8s\n' "$t" "$took" "${execs:-?}" "${rate:-?}" \
        "$files files ${kib} KiB" "$found"
    if [ "$found" -ne 0 ]; then
        crashed=1
        echo "  $t crashed: see $fuzz/$log" >&2
        grep -m1 -E 'panicked at|ERROR: libFuzzer' "$log" | sed 's/^/  /' >&2
    fi
done
exit "$crashed"
