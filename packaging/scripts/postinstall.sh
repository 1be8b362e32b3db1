#!/bin/sh
# echoctl .deb/.rpm: after install and upgrade. The service is neither
# enabled nor started here (systemctl enable --now echoctl does it); an
# upgrade restarts it if it is running, on the new binary.
#   deb: postinst configure [OLD-VERSION]    rpm: %post 1 (install) or 2 (upgrade)
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if { [ "$1" = configure ] && [ -n "${2:-}" ]; } || [ "$1" = 2 ]; then
		systemctl try-restart echoctl.service >/dev/null 2>&1 || true
	fi
fi
exit 0
