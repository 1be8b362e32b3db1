#!/usr/bin/env bash
# pair.sh: compare two echo servers in alternating pairs of runs, the way
# docs/profile.md's tables were measured. Both servers run at once, pinned
# to CPU 0; `echoctl bench`, pinned to CPU 1, measures one then the other
# (in turn first), so both see the same hour of a noisy machine. Each line
# is one pair: A's and B's messages/s, server CPU µs per message and s per
# GB, and the ratios A/B.
#
# usage: scripts/pair.sh PAIRS "SERVER A" "SERVER B" [bench flags...]
#   each server command takes --addr HOST:PORT last, for example
#   scripts/pair.sh 6 "bin/echoctl serve" "bin/gnetecho" --mode stream --chunk 65536 --conns 16
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 3 ]; then
	sed -n '9,11p' "$0" | sed 's/^# //' >&2
	exit 2
fi
pairs=$1 a=$2 b=$3
shift 3
echoctl=${ECHOCTL:-bin/echoctl}
port_a=$((20000 + RANDOM % 5000))
port_b=$((port_a + 5000))
# shellcheck disable=SC2086 # the server commands are meant to be split
taskset -c 0 $a --addr "127.0.0.1:$port_a" >/dev/null 2>&1 &
pid_a=$!
# shellcheck disable=SC2086
taskset -c 0 $b --addr "127.0.0.1:$port_b" >/dev/null 2>&1 &
pid_b=$!
trap 'kill $pid_a $pid_b 2>/dev/null; wait 2>/dev/null' EXIT
sleep 0.5

# run PORT PID: one measured run, as "messages/s µs/message s/GB"
run() {
	taskset -c 1 "$echoctl" bench --addr "127.0.0.1:$1" --server-pid "$2" \
		--warmup "${WARMUP:-0.5s}" --duration "${DURATION:-1.5s}" --json "${@:3}" |
		python3 -c 'import json, sys
d = json.load(sys.stdin); s = d["server"]
print("%.0f %.3f %.3f" % (d["messages_per_s"], s["cpu_us_per_message"], s["cpu_s_per_gb"]))'
}

for i in $(seq "$pairs"); do
	if ((i % 2)); then
		ra=$(run "$port_a" "$pid_a" "$@")
		rb=$(run "$port_b" "$pid_b" "$@")
	else
		rb=$(run "$port_b" "$pid_b" "$@")
		ra=$(run "$port_a" "$pid_a" "$@")
	fi
	echo "$ra $rb" | awk '{printf "A %s %s %s | B %s %s %s | throughput %.2fx  cpu/message %.2fx  cpu/GB %.2fx\n",
		$1, $2, $3, $4, $5, $6, $1/$4, $2/$5, $3/$6}'
done
