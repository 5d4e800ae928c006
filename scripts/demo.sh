#!/usr/bin/env bash
# demo.sh: bootstrap (install what is missing, build), start the line echo server from
# spec/servers on an ephemeral loopback port, run examples/tcp_echo.lua against it and
# show both sides of the exchange; the server is stopped on exit.
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

# The server prints "PORT <n>" first, then one line per event. Its stdin is a fifo kept
# open by this script, so it also ends when the script does.
mkfifo "$work/in"
/usr/bin/python3 -u spec/servers/peer.py echo <"$work/in" >"$work/server.log" 2>&1 &
server_pid=$!
exec 3>"$work/in"

port=
for _ in $(seq 100); do                       # wait for the PORT line, 10 s at most
  port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$work/server.log")
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then echo "demo: the echo server did not start" >&2; cat "$work/server.log" >&2; exit 1; fi

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
exit "$status"
