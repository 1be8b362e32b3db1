#!/usr/bin/env bash
# make test-deps (and so make test): install the programs the tests run
# against when they are missing: haproxy and nginx with its stream module
# (the load-balancer tests, PROXY protocol), socat and ncat (peers echoctl
# did not write), python3 (the seed's programs), openssl, make and chromium
# (bench's HTML report, opened headless in internal/report's test), groff
# (the man pages rendered without warnings) and bash (its completion);
# internal/testtool says how tests find them. On Debian or Ubuntu as
# root it installs them with apt-get; elsewhere it says what is missing and
# the tests that need it skip, except under CI=true, where a missing tool
# fails them (and this script fails first).
set -uo pipefail
need=(haproxy nginx socat ncat python3 openssl make chromium groff bash)
say() { echo "test-deps: $*" >&2; }

missing=()
for tool in "${need[@]}"; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# nginx's stream module is a package of its own on Debian (a dynamic
# module): needed with nginx, or beside an nginx that lacks it.
stream_module_missing() {
	local v dir
	v=$(nginx -V 2>&1) || return 0
	case "$v" in
	*--with-stream=dynamic*) ;;
	*) return 1 ;; # built in (or absent, which the test reports)
	esac
	dir=$(sed -n 's/.*--modules-path=\([^ ]*\).*/\1/p' <<<"$v")
	[ ! -e "${dir:-/usr/lib/nginx/modules}/ngx_stream_module.so" ]
}
if ! command -v nginx >/dev/null 2>&1 || stream_module_missing; then
	missing+=(libnginx-mod-stream)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
# Debian's package for each, where its name is not the tool's.
packages=()
for m in "${missing[@]}"; do
	case "$m" in
	groff) packages+=(groff-base) ;;
	*) packages+=("$m") ;;
	esac
done

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	say "installing ${missing[*]} with apt-get"
	if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"; } >/tmp/echoctl-test-deps.log 2>&1; then
		exit 0
	fi
	say "apt-get failed (see /tmp/echoctl-test-deps.log)"
else
	say "${missing[*]} not installed, and apt-get is not available as root: install them to run every test"
fi
if [ "${CI:-}" = true ]; then
	say "CI=true: the tests need ${missing[*]}"
	exit 1
fi
say "the tests that need ${missing[*]} will skip"
