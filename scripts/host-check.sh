#!/usr/bin/env bash
# Reads the host settings that decide whether CPRA's checks start on time, and says what to
# change. It changes nothing. Each line is OK, WARN (lateness or capacity will suffer) or
# FAIL (CPRA will not start), with the command that fixes it.
#
# What matters, and why:
# - RLIMIT_MEMLOCK: every shard's io_uring rings are locked memory (about 512 KiB a shard).
# - Online cores: CPRA pins one shard per core; a core other processes also use preempts the
#   shard, and every check due during the preemption starts late.
# - Steal time: on a VM, time the hypervisor gives to other guests. No scheduler can start a
#   check on time while its vCPU is not running; the scheduler benchmark prints the steal of
#   its window beside the lateness for this reason.
# - Transparent huge pages: "always" can stall a thread for milliseconds in compaction.
# - CPU frequency governor: "powersave" adds wake-up latency to every sleep of a shard.
#
# Usage: scripts/host-check.sh [seconds to sample steal time]     (default 3)
set -uo pipefail
seconds="${1:-3}"
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [seconds]" >&2; exit 2 ;;
esac
warnings=0
ok() { printf 'OK    %s\n' "$*"; }
warn() { printf 'WARN  %s\n' "$*"; warnings=$((warnings + 1)); }
fail() { printf 'FAIL  %s\n' "$*"; warnings=$((warnings + 1)); }

cores=$(nproc 2>/dev/null || echo 1)
ok "online cores: $cores (cpra runs one shard per core; --shards N to use fewer)"

memlock=$(ulimit -l)
if [ "$memlock" = unlimited ]; then
    ok "memlock limit: unlimited"
else
    need_kib=$((cores * 512))
    if [ "$memlock" -ge "$need_kib" ]; then
        ok "memlock limit: ${memlock} KiB (need about ${need_kib} KiB for ${cores} shards)"
    else
        fail "memlock limit: ${memlock} KiB, need about ${need_kib} KiB for ${cores} shards;" \
            "raise it: 'ulimit -l unlimited' as root, LimitMEMLOCK=infinity in a systemd unit," \
            "or a 'memlock' line in /etc/security/limits.conf"
    fi
fi

# Steal and the load of other processes, sampled over a few seconds.
read_cpu() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $9}' /proc/stat; }
read -r total0 steal0 < <(read_cpu)
sleep "$seconds"
read -r total1 steal1 < <(read_cpu)
dt=$((total1 - total0))
[ "$dt" -gt 0 ] || dt=1
steal_pct=$(( (steal1 - steal0) * 1000 / dt ))
steal_txt="$((steal_pct / 10)).$((steal_pct % 10))%"
if [ "$steal_pct" -le 10 ]; then
    ok "steal time: ${steal_txt} over ${seconds} s"
else
    warn "steal time: ${steal_txt} over ${seconds} s: the hypervisor runs other guests on" \
        "these vCPUs; expect lateness tails of milliseconds whatever CPRA does (dedicated" \
        "vCPUs or a bare-metal host remove it)"
fi
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v c="$cores" 'BEGIN{exit !(l > c * 0.5)}'; then
    warn "load average ${load} on ${cores} cores: other processes share the shards' cores;" \
        "give CPRA its own cores (taskset / systemd CPUAffinity= for the rest) or run it with" \
        "a higher priority (nice -n -10, or CPUWeight= in its unit)"
else
    ok "load average ${load} on ${cores} cores"
fi

thp=/sys/kernel/mm/transparent_hugepage/enabled
if [ -r "$thp" ]; then
    if grep -q '\[always\]' "$thp"; then
        warn "transparent huge pages: always (compaction can stall a shard); 'echo madvise > $thp'"
    else
        ok "transparent huge pages: $(grep -o '\[[a-z]*\]' "$thp")"
    fi
fi

gov=/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor
if [ -r "$gov" ]; then
    if [ "$(cat "$gov")" = performance ]; then
        ok "cpu frequency governor: performance"
    else
        warn "cpu frequency governor: $(cat "$gov"); 'cpupower frequency-set -g performance'" \
            "shortens shard wake-ups"
    fi
else
    ok "cpu frequency governor: not exposed (a VM, usually)"
fi

if [ "$warnings" -eq 0 ]; then
    echo "host-check: nothing to change"
else
    echo "host-check: ${warnings} setting(s) to look at"
fi
