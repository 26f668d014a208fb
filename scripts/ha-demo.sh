#!/usr/bin/env bash
# High availability with an Alertmanager cluster, on loopback, in about 20 seconds:
#   - two Alertmanagers clustered (gossip on 127.0.0.1), a webhook receiver behind them;
#   - two `cpra run` replicas of the same slice (--replica 0 and 1), every code sent to both
#     Alertmanagers; a target that fails;
#   - the receiver gets one notification per alert (yellow, red) although four copies of
#     each were posted; then replica 0 is killed (SIGKILL), the target heals, and replica 1
#     alone resolves both: one resolved notification each.
# Needs: Debian's prometheus-alertmanager (apt-get install prometheus-alertmanager), python3,
# curl, and cpra (CPRA=path, else target/release/cpra or target/debug/cpra; build it with
# `cargo build --release`). The same scenario runs as a test: engine/tests/ha.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

AM=$(command -v prometheus-alertmanager || command -v alertmanager || true)
[ -n "$AM" ] || { echo "needs prometheus-alertmanager (apt-get install prometheus-alertmanager)"; exit 2; }
CPRA=${CPRA:-}
for c in target/release/cpra target/debug/cpra; do
    [ -z "$CPRA" ] && [ -x "$c" ] && CPRA=$c
done
[ -n "$CPRA" ] || { echo "needs cpra: cargo build --release (or CPRA=path)"; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Ports: the receiver and target on one small Python server, two Alertmanagers (web and
# cluster each). Fixed high ports; change them here if one is taken.
HTTP=19101; AM0=19193; AM1=19194; C0=19195; C1=19196

# The receiver (POST /hook: one line per notified alert in hook.log) and the target
# (GET /web: 503 while $work/broken exists, else 200).
cat >"$work/servers.py" <<'EOF'
import http.server, json, os, sys
work = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(503 if os.path.exists(os.path.join(work, "broken")) else 200)
        self.send_header("Content-Length", "0"); self.end_headers()
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with open(os.path.join(work, "hook.log"), "a") as f:
            for a in body["alerts"]:
                f.write("%s %s/%s\n" % (a["status"], a["labels"]["monitor_id"], a["labels"]["color"]))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
touch "$work/broken" "$work/hook.log"
python3 "$work/servers.py" "$HTTP" "$work" & pids+=($!)

# group_interval well above the peer timeout: the second Alertmanager sends what it saw at a
# flush 1 s later unless the first one's notification reached it; a resolution landing inside
# that second makes it send the firing it held (Alertmanager is at-least-once). The target
# heals 3 s after the first flush, far from the next one 10 s on.
cat >"$work/alertmanager.yml" <<EOF
route:
  receiver: hook
  group_by: [monitor_id, color]
  group_wait: 1s
  group_interval: 10s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:$HTTP/hook
        send_resolved: true
EOF
am() { # n web cluster peer
    mkdir -p "$work/am$1"
    "$AM" --config.file="$work/alertmanager.yml" --storage.path="$work/am$1" \
        --web.listen-address="127.0.0.1:$2" --cluster.listen-address="127.0.0.1:$3" \
        --cluster.peer="127.0.0.1:$4" --cluster.peer-timeout=1s --cluster.gossip-interval=50ms \
        --cluster.pushpull-interval=1s --cluster.probe-interval=200ms --cluster.settle-timeout=5s \
        2>"$work/am$1.log" &
    pids+=($!)
}
am 0 $AM0 $C0 $C1
am 1 $AM1 $C1 $C0
for port in $AM0 $AM1; do
    until curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null; do sleep 0.2; done
done
echo "== two Alertmanagers clustered on 127.0.0.1:$C0 and :$C1"

cat >"$work/fleet.yaml" <<EOF
endpoints:
  am-0: {type: alertmanager, config: {url: "http://127.0.0.1:$AM0"}}
  am-1: {type: alertmanager, config: {url: "http://127.0.0.1:$AM1"}}
notification_groups:
  alertmanagers: [am-0, am-1]
monitors:
  - name: web
    pulse_check: {type: http, interval: 200ms, timeout: 150ms, config: {url: "http://127.0.0.1:$HTTP/web"}}
    codes:
      yellow: {notify_group: alertmanagers}
      red: {notify_group: alertmanagers}
      green: {notify_group: alertmanagers}
EOF
for r in 0 1; do
    "$CPRA" run "$work/fleet.yaml" --replica "$r" --listen none --shards 1 \
        --data-dir "$work/data-$r" --fsync never 2>"$work/cpra$r.log" &
    pids+=($!)
    eval "replica$r=$!"
done
echo "== two CPRA replicas of the same slice (pids $replica0, $replica1); the target fails"

wait_for() { # what, count of lines matching in hook.log
    for _ in $(seq 1 300); do
        [ "$(grep -c "$1" "$work/hook.log" || true)" -ge "$2" ] && return 0
        sleep 0.1
    done
    echo "timed out waiting for $2 '$1' notifications"; cat "$work/hook.log"; exit 1
}
wait_for firing 2
sleep 3 # the second Alertmanager's turn (peer timeout 1 s) passes without a duplicate
echo "== the receiver was notified:"; sed 's/^/   /' "$work/hook.log"

kill -9 "$replica0"
wait "$replica0" 2>/dev/null || true
rm "$work/broken"
echo "== replica 0 killed (SIGKILL); the target heals"
wait_for resolved 2
sleep 3
echo "== the receiver was notified:"; sed 's/^/   /' "$work/hook.log"
firing=$(grep -c firing "$work/hook.log"); resolved=$(grep -c resolved "$work/hook.log")
if [ "$firing" -eq 2 ] && [ "$resolved" -eq 2 ]; then
    echo "OK: one notification per alert from two replicas and two Alertmanagers, and the" \
         "resolution after one replica was killed"
else
    echo "FAILED: $firing firing and $resolved resolved notifications, 2 and 2 expected"
    exit 1
fi
