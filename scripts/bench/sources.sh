#!/usr/bin/env bash
# sources.sh MOONWIRE SERVER N: issue 14's many-connection case. One moonwire process
# opens N WebSocket connections to the bench server's /idle on 127.0.0.1 from three
# source addresses (bindto 127.0.0.1, 127.0.0.2, 127.0.0.3: past the ~28,000 ephemeral
# ports of one source), and reports resident KiB per connection and the time to open
# them all. N is capped by the descriptors this machine allows (ulimit -Hn, less a
# margin: the client and the server each hold N), and the cap is said.
set -euo pipefail
MW=$1 SERVER=$2 WANT=$3
BENCH=$(cd "$(dirname "$0")" && pwd)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
LIMIT=$(( $(ulimit -n) - 200 ))
N=$WANT
if [ "$N" -gt "$LIMIT" ]; then
  echo "sources: $WANT connections want $WANT descriptors in the client and in the server;" \
       "ulimit -Hn is $(ulimit -Hn) here: measuring $LIMIT" >&2
  N=$LIMIT
fi
exec 3< <(exec "$SERVER" </dev/null)
read -r _ PORT <&3
SRV=$!
trap 'kill $SRV 2>/dev/null || true' EXIT
line=$(timeout 600 "$MW" "$BENCH/clients/moonwire_sources.lua" "ws://127.0.0.1:$PORT/idle" "$N" \
  127.0.0.1,127.0.0.2,127.0.0.3)
echo "$line"
case "$line" in
  "RESULT open=$N failed=0 "*)
    set -- $line
    echo "sources: $N connections from 3 source addresses opened in ${4#secs=} s," \
         "${5#kib_per_conn=} KiB resident per connection (wanted $WANT)" ;;
  *) echo "sources: not every connection opened" >&2; exit 1 ;;
esac
