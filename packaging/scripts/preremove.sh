#!/bin/sh
# echoctl .deb/.rpm: before removal, not before an upgrade, stop and disable
# the service.
#   deb: prerm remove|upgrade|deconfigure    rpm: %preun 0 (remove) or 1 (upgrade)
set -e
if [ "$1" = remove ] || [ "$1" = 0 ]; then
	if [ -d /run/systemd/system ]; then
		systemctl --no-reload disable --now echoctl.service >/dev/null 2>&1 || true
	fi
fi
exit 0
