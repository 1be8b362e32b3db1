#!/bin/sh
# echoctl .deb/.rpm: after removal or upgrade, let systemd forget the old
# unit file.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
