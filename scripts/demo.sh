#!/usr/bin/env bash
# demo.sh: bootstrap (install what is missing, build), then two exchanges, each against a
# local server on an ephemeral loopback port, showing both sides:
#   1. examples/tcp_echo.lua against the line echo server from spec/servers;
#   2. examples/ws_echo.lua, then the Workerman seed (examples/seed.lua, stopped with
#      SIGINT after its first exchange), against the Python `websockets` echo server.
# The servers are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The servers print "PORT <n>" first: wait for it (10 s at most) while the server lives.
wait_port() {
  local log=$1 port
  for _ in $(seq 100); do
    port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$log")
    [ -n "$port" ] && { echo "$port"; return 0; }
    kill -0 "$server_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# The server prints "PORT <n>" first, then one line per event. Its stdin is a fifo kept
# open by this script, so it also ends when the script does.
mkfifo "$work/in"
/usr/bin/python3 -u spec/servers/peer.py echo <"$work/in" >"$work/server.log" 2>&1 &
server_pid=$!
exec 3>"$work/in"

port=$(wait_port "$work/server.log") || { echo "demo: the echo server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

url="text://127.0.0.1:$port"
echo "== echo server listening on 127.0.0.1:$port"
echo "== moonwire examples/tcp_echo.lua $url"
status=0
timeout 30 build/moonwire examples/tcp_echo.lua "$url" "hello" "moonwire speaks text://" "bye" || status=$?
echo "== moonwire exited with status $status"
echo "== what the server saw:"
exec 3>&-                                     # end of its stdin: the server exits
wait "$server_pid" 2>/dev/null || true
server_pid=
sed 's/^/   /' "$work/server.log"
[ "$status" -eq 0 ] || exit "$status"

# 2. WebSocket: the same pattern against Python's websockets server.
mkfifo "$work/ws_in"
/usr/bin/python3 -u spec/servers/ws_py_peer.py <"$work/ws_in" >"$work/ws.log" 2>&1 &
server_pid=$!
exec 4>"$work/ws_in"
port=$(wait_port "$work/ws.log") || { echo "demo: the ws server did not start" >&2; cat "$work/ws.log" >&2; exit 1; }
echo
echo "== websockets echo server listening on 127.0.0.1:$port"
echo "== moonwire examples/ws_echo.lua ws://127.0.0.1:$port/echo"
timeout 30 build/moonwire examples/ws_echo.lua "ws://127.0.0.1:$port/echo" || status=$?
echo "== moonwire exited with status $status"
echo "== moonwire examples/seed.lua ws://127.0.0.1:$port/ (the Workerman seed; SIGINT after the first message)"
build/moonwire examples/seed.lua "ws://127.0.0.1:$port/" >"$work/seed.out" 2>&1 &
seed_pid=$!
for _ in $(seq 100); do                       # wait for its first echo, 10 s at most
  grep -q '^recv: hello' "$work/seed.out" && break
  sleep 0.1
done
kill -INT "$seed_pid" 2>/dev/null || true
seed_status=0
wait "$seed_pid" || seed_status=$?
sed 's/^/   /' "$work/seed.out"
echo "== seed exited with status $seed_status (SIGINT closes every WebSocket with 1001, then exits 0)"
grep -q '^recv: hello' "$work/seed.out" || seed_status=1
[ "$seed_status" -eq 0 ] || status=$seed_status
echo "== what the server saw:"
exec 4>&-
wait "$server_pid" 2>/dev/null || true
server_pid=
sed 's/^/   /' "$work/ws.log"
exit "$status"
