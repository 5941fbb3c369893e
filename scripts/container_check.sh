#!/usr/bin/env bash
# Replay what the Containerfile does, on a host without a container engine,
# and check the result the way the image would be used:
#
#   build stage:  pip wheel . ; install it ; generate the man pages
#   final stage:  install the wheel alone into a fresh Python 3.11, run each
#                 daemon as an unprivileged uid (10001, no passwd entry, no
#                 capabilities) with XDG_RUNTIME_DIR set, answer `dlepctl info`
#                 (the image's HEALTHCHECK), bring a session up, stop on SIGTERM.
#
# Needs root (to drop to uid 10001) and network access to PyPI for the wheel's
# dependencies. Loopback only; the example configurations are used with their
# port 8854 moved to a free one so that a test run next to it does not clash.
# Usage: scripts/container_check.sh [python3.11]   (default: /usr/bin/python3.11)
set -euo pipefail

PY=${1:-/usr/bin/python3.11}
UID_DLEP=10001
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/dlep-container-check.XXXXXX)
chmod 0755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$(id -u)" != 0 ]; then
    echo "container_check: needs root to run the daemons as uid $UID_DLEP" >&2
    exit 2
fi

step() { printf '== %s\n' "$*"; }

step "build stage: wheel and man pages"
"$PY" -m venv "$WORK/build"
"$WORK/build/bin/pip" -q install --upgrade pip
"$WORK/build/bin/pip" -q wheel --wheel-dir "$WORK/wheels" "$ROOT"
"$WORK/build/bin/pip" -q install --no-index --find-links "$WORK/wheels" dlep
"$WORK/build/bin/python" "$ROOT/scripts/gen_man.py" --out "$WORK/man"
ls "$WORK/man"

step "final stage: the wheel alone in a fresh Python"
"$PY" -m venv "$WORK/image"
"$WORK/image/bin/pip" -q install --no-index --find-links "$WORK/wheels" dlep
BIN="$WORK/image/bin"
"$BIN/dlep-router" --print-example-config >/dev/null

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
install -d -m 0755 "$WORK/etc"
for role in router modem; do
    sed "s/8854/$PORT/g" "$ROOT/examples/$role.toml" >"$WORK/etc/$role.toml"
done
install -d -o "$UID_DLEP" -g "$UID_DLEP" -m 0700 "$WORK/run" "$WORK/home"

as_dlep() {
    # exec: the daemon itself (not a shell around it) gets the signals.
    exec env -i PATH="$BIN:/usr/bin:/bin" HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/run" \
        PYTHONUNBUFFERED=1 \
        setpriv --reuid "$UID_DLEP" --regid "$UID_DLEP" --clear-groups \
        --inh-caps=-all --bounding-set=-all "$@"
}

step "daemons as uid $UID_DLEP, port $PORT"
(as_dlep "$BIN/dlep-modem" --config "$WORK/etc/modem.toml" >"$WORK/modem.log" 2>&1) &
PIDS+=($!)
(as_dlep "$BIN/dlep-router" --config "$WORK/etc/router.toml" >"$WORK/router.log" 2>&1) &
PIDS+=($!)

up=""
for _ in $(seq 1 60); do
    if (as_dlep "$BIN/dlepctl" --timeout 3 --socket "$WORK/run/dlep-router.sock" sessions \
            --json) 2>/dev/null | grep -q '"in_session"\|"state": "in-session"\|IN_SESSION'; then
        up=yes
        break
    fi
    sleep 0.5
done
for role in modem router; do
    echo "-- $role: uid $(stat -c %u /proc/"$(pgrep -n -f "dlep-$role --config $WORK")")"
done
(as_dlep "$BIN/dlepctl" --timeout 3 --socket "$WORK/run/dlep-modem.sock" info)
(as_dlep "$BIN/dlepctl" --timeout 3 --socket "$WORK/run/dlep-router.sock" sessions)
ls -l "$WORK/run"
if [ -z "$up" ]; then
    echo "container_check: no session within 30 s" >&2
    tail -n 20 "$WORK/modem.log" "$WORK/router.log" >&2
    exit 1
fi

step "SIGTERM: both stop cleanly"
rc=0
for p in "${PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PIDS[@]}"; do wait "$p" || rc=$?; done
PIDS=()
tail -n 3 "$WORK/modem.log" "$WORK/router.log"
if grep -q Traceback "$WORK/modem.log" "$WORK/router.log"; then
    echo "container_check: a traceback in the logs" >&2
    exit 1
fi
if [ "$rc" != 0 ]; then
    echo "container_check: a daemon exited with $rc" >&2
    exit 1
fi
echo "container_check: OK (wheel, man pages, both daemons as uid $UID_DLEP, session up, clean stop)"
