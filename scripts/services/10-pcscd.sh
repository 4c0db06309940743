#!/usr/bin/env bash
# Starts pcscd for the PC/SC tests when it is not already running (CI runs as root, without
# systemd). Idempotent: a running pcscd that answers is left alone. vsmartcard-vpcd's readers
# ("Virtual PCD 00 00" on TCP 35963, "Virtual PCD 00 01" on 35964) come with it.
set -euo pipefail

socket=/run/pcscd/pcscd.comm
pidfile=/run/pcscd/pcscd.pid
log=${TMPDIR:-/tmp}/ukey-pcscd.log

if ! command -v pcscd >/dev/null; then
    echo "pcscd is not installed: apt-get install pcscd vsmartcard-vpcd" >&2
    exit 1
fi

running() {
    [ -S "$socket" ] && [ -f "$pidfile" ] && kill -0 "$(tr -d '\0' <"$pidfile")" 2>/dev/null
}

if running; then
    echo "pcscd already running (pid $(tr -d '\0' <"$pidfile"))"
    exit 0
fi

mkdir -p /run/pcscd
# Its own session, so it outlives this script and the test run that started it.
setsid pcscd --foreground >"$log" 2>&1 </dev/null &

# Bounded wait for the socket (15 s), polling every 50 ms.
for _ in $(seq 1 300); do
    if running; then
        pid=$(tr -d '\0' <"$pidfile")
        # Tell the test harness (tests/virtual-piv) that this pcscd is a test service it may
        # stop and restart under its exclusive lock.
        lockdir=${UKEY_TEST_LOCK_DIR:-${TMPDIR:-/tmp}/ukey-test-locks}
        mkdir -p "$lockdir" && chmod 1777 "$lockdir"
        echo "$pid" >"$lockdir/pcscd-harness.pid"
        echo "pcscd started (pid $pid), log in $log"
        exit 0
    fi
    sleep 0.05
done
echo "pcscd did not create $socket within 15 s; its log:" >&2
cat "$log" >&2
exit 1
