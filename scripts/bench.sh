#!/usr/bin/env bash
# make bench: build echoctl and the peer servers of the bench/ module, then
# run echoctl against them side by side (bench/cmd/benchrun) and write
# docs/benchmarks.md, with its charts beside it in docs/benchmarks.html
# (drawn by bin/echoctl bench report). Extra arguments go to benchrun (see bin/benchrun -h),
# for example: scripts/bench.sh -rounds 3 -modes pp128-c50,stream-c1
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
started=$(date +%s)
say() { echo "bench: $*" >&2; }

say "building bin/echoctl, and bin/goecho, bin/gnetecho, bin/benchrun from the bench/ module"
mkdir -p bin
CGO_ENABLED=0 "$GO" build -trimpath -o bin/echoctl .
(cd bench && CGO_ENABLED=0 "$GO" build -trimpath -o ../bin/ ./cmd/goecho ./cmd/gnetecho ./cmd/benchrun)

# socat: installed from the distribution if missing and possible, else left out.
if ! command -v socat >/dev/null 2>&1; then
	if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
		say "installing socat"
		if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq socat; } >/dev/null 2>&1; then
			say "could not install socat: it is left out"
		fi
	else
		say "socat is not installed and apt-get is not available as root: it is left out"
	fi
fi
socat=$(command -v socat || true)

# taskset (util-linux) pins the server to CPU 0 and the load to CPU 1.
pin=true
if ! command -v taskset >/dev/null 2>&1; then
	say "taskset (util-linux) not found: running without CPU pinning"
	pin=false
fi

# The seed's asyncio server with its logging quieted (--quiet).
asyncio=testdata/seed/asyncio_echo_server_coroutine.py
python=$(command -v python3 || true)
if [ -z "$python" ]; then
	say "python3 not found: the asyncio server is left out"
elif ! grep -q -- '--quiet' "$asyncio" 2>/dev/null; then
	say "$asyncio is missing or has no --quiet: the asyncio server is left out"
	python=
fi

bin/benchrun -echoctl bin/echoctl -goecho bin/goecho -gnetecho bin/gnetecho \
	-python "$python" -asyncio "$asyncio" -asyncio-args '--quiet {host} {port}' \
	-socat "$socat" -pin="$pin" -started "$started" -out docs/benchmarks.md -html docs/benchmarks.html "$@"
say "done in $(($(date +%s) - started))s"
