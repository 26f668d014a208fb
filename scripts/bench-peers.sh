#!/usr/bin/env bash
# Installs the reference peers of the probe benchmark from Debian packages (nginx as the target,
# wrk and Prometheus blackbox_exporter as the peers), then runs the probe benchmark for every
# kind. Each run prints a summary and, last, one JSON line; the JSON lines are also collected in
# target/bench-probes.jsonl. The benchmark starts its own nginx and blackbox_exporter on
# 127.0.0.1 with private configs, so nothing needs to be running beforehand.
#
# Usage: scripts/bench-peers.sh [seconds] [in-flight]      (defaults: 10 256)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
in_flight="${2:-256}"

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v prometheus-blackbox-exporter >/dev/null 2>&1 || need+=(prometheus-blackbox-exporter)
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
    else
        echo "missing: ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
        echo "continuing: the benchmark reports missing peers as null" >&2
    fi
fi
# Debian starts a system nginx on port 80 after install; the benchmark uses its own instance.

cargo build --release -p cpra-bench
out=target/bench-probes.jsonl
log=target/bench-probes.log
: > "$out"
: > "$log"
# The benchmark starts nginx and blackbox_exporter each in its own process group and stops the
# whole group (workers included) when done or interrupted; checked here against what ran before.
nginx_before=$(pgrep -c -x nginx || true)
for kind in http-close http-keepalive tcp https; do
    echo "== probes --kind $kind --seconds $seconds --in-flight $in_flight" | tee -a "$log"
    target/release/cpra-bench probes --kind "$kind" --seconds "$seconds" --in-flight "$in_flight" \
        | tee -a "$log"
    tail -n 1 "$log" >> "$out"
    # Connections this machine holds in TIME_WAIT (both ends of loopback; 60 s each): a prober
    # that closes first fills its ephemeral ports with them.
    echo "   TIME_WAIT sockets after --kind $kind: $(ss -tan state time-wait | tail -n +2 | wc -l)" | tee -a "$log"
done
nginx_after=$(pgrep -c -x nginx || true)
if [ "$nginx_after" -gt "$nginx_before" ]; then
    echo "warning: $((nginx_after - nginx_before)) nginx processes left running by the benchmark:" >&2
    pgrep -a -x nginx >&2 || true
fi
echo "summaries: $log; JSON lines: $out"
