#!/usr/bin/env bash
# Profiles a running cpra (or any process) or a command this script starts, and writes into DIR:
#   flame.svg         flame graph of on-CPU stacks (perf record -g, call graphs by DWARF unwinding)
#   perf-stat.txt     perf stat per thread: IPC (cycles, instructions), cache misses, context
#                     switches, CPU migrations (hardware counters print <not supported> in VMs
#                     that do not expose a PMU; the software ones are always there)
#   sched.txt         scheduling latency of the process's threads (perf sched latency): how long
#                     each thread waited for a CPU once runnable, the shard threads first
#   summary.md        the hottest functions (self and inclusive), CPU by thread, the conditions
#   perf.data         the raw samples, for `perf report -i DIR/perf.data`
#
# Usage: scripts/profile.sh [--out DIR] [--seconds S] [--call-graph dwarf|fp] (--pid PID | -- COMMAND ARGS...)
#   --out DIR         where to write (default target/profile-<date>)
#   --seconds S       length of each of the three measuring windows (default 10): record, then
#                     stat, then sched; a command started here should run at least 3*S seconds
#   --call-graph      dwarf (default): whole stacks from Rust release builds, which keep no frame
#                     pointers (std neither); fp: frame pointers, cheaper, only whole with
#                     RUSTFLAGS="-C force-frame-pointers=yes" and a std built with them
#   --pid PID         profile a running process (e.g. `--pid $(pgrep -x cpra)`)
#   -- COMMAND ...    start COMMAND (in its own process group), profile it, and stop it (SIGTERM
#                     to its group, then SIGKILL) if it is still running after the windows
#
# Needs: perf (installed from Debian's linux-perf when missing and run as root) and inferno
# (installed with `cargo install inferno` when missing). Permissions: root, or
# kernel.perf_event_paranoid <= 1 for stacks with kernel frames and for perf stat (user-only
# stacks need <= 2), and for sched.txt the sched tracepoints: root, or paranoid -1 with read
# access to /sys/kernel/tracing. The script says which part it cannot do and goes on.
set -euo pipefail
cd "$(dirname "$0")/.."

out="target/profile-$(date +%Y%m%d-%H%M%S)"
seconds=10
call_graph=dwarf
pid=""
cmd=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --call-graph) call_graph="$2"; shift 2 ;;
        --pid) pid="$2"; shift 2 ;;
        --) shift; cmd=("$@"); break ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "profile.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$pid" ] && [ "${#cmd[@]}" -eq 0 ]; then
    echo "profile.sh: give --pid PID or -- COMMAND ARGS... (see --help)" >&2
    exit 2
fi
case "$call_graph" in
    dwarf) cg=(--call-graph dwarf,16384) ;;
    fp) cg=(--call-graph fp) ;;
    *) echo "profile.sh: --call-graph is dwarf or fp" >&2; exit 2 ;;
esac

if ! command -v perf >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y linux-perf
    else
        echo "profile.sh: perf is missing; run as root or: sudo apt-get install -y linux-perf" >&2
        exit 1
    fi
fi
if ! command -v inferno-flamegraph >/dev/null 2>&1; then
    export PATH="$HOME/.cargo/bin:$PATH"
    command -v inferno-flamegraph >/dev/null 2>&1 || cargo install inferno
fi
paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)
if [ "$(id -u)" -ne 0 ] && [ "$paranoid" -gt 1 ]; then
    echo "note: kernel.perf_event_paranoid=$paranoid: user-space stacks only; for kernel frames and" >&2
    echo "      perf stat run as root or: sudo sysctl kernel.perf_event_paranoid=1" >&2
fi

mkdir -p "$out"
started_pgid=""
stop_started() {
    if [ -n "$started_pgid" ]; then
        kill -TERM -- "-$started_pgid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 -- "-$started_pgid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$started_pgid" 2>/dev/null || true
        wait "$started_pgid" 2>/dev/null || true
        started_pgid=""
    fi
}
trap stop_started EXIT
trap 'exit 130' INT TERM

if [ -z "$pid" ]; then
    # setsid: the command leads its own process group, so it and everything it forks stop together.
    setsid "${cmd[@]}" > "$out/command.log" 2>&1 &
    pid=$!
    started_pgid=$pid
    sleep 1 # past start-up (manifest load, executors spawning) into the steady state
fi
kill -0 "$pid" 2>/dev/null || { echo "profile.sh: process $pid is not running" >&2; exit 1; }
comm=$(cat "/proc/$pid/comm")
echo "profiling pid $pid ($comm) for 3 x ${seconds}s into $out"

threads() { # tid name, one a line
    for t in /proc/"$pid"/task/*; do echo "$(basename "$t") $(cat "$t/comm" 2>/dev/null)"; done
}
threads > "$out/threads.txt" 2>/dev/null || true

# 1. Stacks.
perf record -F 499 -g "${cg[@]}" -p "$pid" -o "$out/perf.data" -- sleep "$seconds" \
    > "$out/perf-record.log" 2>&1 || echo "perf record failed: see $out/perf-record.log" >&2
if [ -s "$out/perf.data" ]; then
    perf script -i "$out/perf.data" 2>/dev/null | inferno-collapse-perf > "$out/stacks.folded"
    # --minwidth drops frames narrower than half a pixel: the SVG stays small enough to commit.
    inferno-flamegraph --minwidth 0.5 --title "$comm (pid $pid), ${seconds}s, $call_graph stacks" \
        < "$out/stacks.folded" > "$out/flame.svg"
fi

# 2. Counters per thread.
kill -0 "$pid" 2>/dev/null && perf stat --per-thread -p "$pid" \
    -e cycles,instructions,cache-references,cache-misses,context-switches,cpu-migrations,task-clock \
    -o "$out/perf-stat.txt" -- sleep "$seconds" > /dev/null 2>&1 ||
    echo "perf stat failed or the process ended" >&2

# 3. Scheduling latency (system-wide tracepoints, reported for this process's threads).
if kill -0 "$pid" 2>/dev/null && perf sched record -o "$out/sched.data" -- sleep "$seconds" \
    > "$out/sched-record.log" 2>&1; then
    {
        echo "# perf sched latency, threads of pid $pid ($comm); times in ms"
        perf sched latency -i "$out/sched.data" --sort max 2>/dev/null | sed -n '1,4p'
        names=$(cut -d' ' -f2- "$out/threads.txt" | sort -u | tr '\n' '|' | sed 's/|$//')
        perf sched latency -i "$out/sched.data" --sort max 2>/dev/null |
            grep -E "^ *($names):" || echo "(no rows for these threads)"
    } > "$out/sched.txt"
    rm -f "$out/sched.data"
else
    echo "perf sched record failed (needs root or paranoid -1 and tracefs): see $out/sched-record.log" >&2
fi
stop_started

# perf report's table without comments, blank lines and the empty trailing columns.
tidy() { grep -v '^#' | grep -v '^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//'; }

# summary.md
{
    echo "# Profile of \`$comm\` (pid $pid)"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg);"
    echo "three ${seconds} s windows (record, stat, sched); stacks by $call_graph unwinding at 499 Hz."
    [ "${#cmd[@]}" -gt 0 ] && echo "Command: \`${cmd[*]}\`"
    echo
    if [ -s "$out/perf.data" ]; then
        echo "## Hottest functions, self time (top 25)"
        echo
        echo '```'
        perf report -i "$out/perf.data" --no-children --sort symbol --stdio --percent-limit 0.5 \
            -g none 2>/dev/null | tidy | head -25
        echo '```'
        echo
        echo "## Hottest functions, inclusive (children counted; top 25)"
        echo
        echo '```'
        perf report -i "$out/perf.data" --children --sort symbol --stdio --percent-limit 2 \
            -g none 2>/dev/null | tidy | head -25
        echo '```'
        echo
        echo "## CPU samples by thread"
        echo
        echo '```'
        perf report -i "$out/perf.data" --no-children --sort comm,pid --stdio -g none 2>/dev/null |
            tidy | head -20
        echo '```'
        echo
    fi
    if [ -s "$out/perf-stat.txt" ]; then
        echo "## perf stat per thread (shard threads are named cpra-shard-N or after the executor)"
        echo
        echo '```'
        # Rows of threads that did not run in the window ("<not counted>") are left out, and
        # counters the machine lacks (no PMU in most VMs) are named once instead of per thread.
        grep -v '^#' "$out/perf-stat.txt" | grep -v '^$' | grep -v '<not counted>' |
            grep -v '<not supported>' | sed 's/ *$//' | head -60
        missing=$(grep '<not supported>' "$out/perf-stat.txt" | awk '{print $NF}' | sort -u | tr '\n' ' ')
        [ -n "$missing" ] && echo "not supported on this machine: $missing"
        echo '```'
        echo
    fi
    if [ -s "$out/sched.txt" ]; then
        echo "## Scheduling latency"
        echo
        echo '```'
        cat "$out/sched.txt"
        echo '```'
    fi
} > "$out/summary.md"
echo "wrote $out/{flame.svg,perf-stat.txt,sched.txt,summary.md,perf.data}"
