#!/usr/bin/env bash
# alloc.sh [--check] [--quick]: counts heap allocations per message in a moonwire process
# (issue 7, target 8) with an LD_PRELOAD shim (alloc_shim.c), across 100,000 messages in
# the steady state of cases 1-5: receive 16 B, receive 64 KiB, send 16 B, send 64 KiB, echo,
# receive 16 B through conn:receive() in a coroutine (corecv_16B, issue 15: target 0 in C),
# and of the compressed cases (issue 13: permessage-deflate agreed, context takeover):
# receive and send the 200-byte JSON messages. zlib's allocations (through moonwire's
# counting hooks, ws_deflate.c) are shown apart, as a part of C's.
# Calls from Lua's allocator (liblua, or moonwire's own mw_lua_alloc: strings, tables) are counted apart from C's (moonwire,
# libev, libc, ...). --check exits 1 when C allocates more than MAX_C_PER_MSG (0.01) per
# message in any case (without it, only a run that produces no count fails); --quick uses
# 10,000 messages.
# MOONWIRE_BIN=path uses that binary (else build-bench/, built by run.sh, or build/).
# An ASan binary has its own allocator hooks: the shim cannot count there (exit 77: skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BENCH=$ROOT/scripts/bench
OUT=${BENCH_OUT:-$ROOT/build/bench}
CHECK=0
N=100000
for a in "$@"; do
  case $a in
    --check) CHECK=1 ;;
    --quick) N=10000 ;;
    *) echo "usage: alloc.sh [--check] [--quick]" >&2; exit 2 ;;
  esac
done
MAX_C_PER_MSG=${MAX_C_PER_MSG:-0.01}
MW=${MOONWIRE_BIN:-}
if [ -z "$MW" ]; then
  if [ -x "$ROOT/build-bench/moonwire" ]; then MW=$ROOT/build-bench/moonwire; else MW=$ROOT/build/moonwire; fi
fi
# (not `ldd | grep -q`: grep -q quits at the first match, ldd may then die of SIGPIPE,
# and pipefail turns the match into a failure)
if [[ $(ldd "$MW") == *libasan* ]]; then
  echo "alloc: $MW is an ASan build; counting needs glibc's allocator: skipped"
  exit 77
fi
mkdir -p "$OUT"
cc -O2 -Wall -Wextra -shared -fPIC -o "$OUT/alloc_shim.so" "$BENCH/alloc_shim.c" -ldl
# Its own server binary: run.sh (bench/smoke) builds build/bench/server at the same time
# under ctest -j, and a half-written file shared by both would not run.
SERVER=$OUT/alloc_server
{ [ "$SERVER" -nt "$BENCH/server.c" ] && [ "$SERVER" -nt "$BENCH/server_pmd.c" ]; } || cc -O2 -Wall -Wextra -o "$SERVER" "$BENCH/server.c" -lcrypto -lz

JSON=$OUT/alloc_msgs.json
/usr/bin/python3 "$BENCH/jsonmsgs.py" "$JSON"
# moonwire's zlib hooks (counted_alloc, z_alloc, stream_new: whichever the compiler kept)
ZR=$(nm -S "$MW" 2>/dev/null | awk '$4 ~ /^(counted_alloc|z_alloc|stream_new)$/ { printf "%s%s:%s", sep, $1, $2; sep="," }')
[ -n "$ZR" ] || echo "alloc: no symbols for moonwire's zlib hooks in $MW: the zlib column reads 0 for want of them"
# moonwire's own Lua allocator (src/lalloc.c): what it allocates is Lua's
LR=$(nm -S "$MW" 2>/dev/null | awk '$4 == "mw_lua_alloc" { printf "%s:%s", $1, $2 }')
[ -n "$LR" ] || echo "alloc: no symbol mw_lua_alloc in $MW: Lua's allocations would be counted as C's" >&2

coproc SRV_IO { exec "$SERVER" --json "$JSON"; }
SRV=$SRV_IO_PID
trap 'kill $SRV 2>/dev/null || true' EXIT
# the server prints "PORT p" once it listens
read -r -t 10 _ PORT <&"${SRV_IO[0]}" || { echo "alloc: the bench server did not start" >&2; exit 1; }

# name mode warmup size kind
CASES=(
  "recv_16B recv 20000 16 text"
  "corecv_16B corecv 20000 16 text"
  "recv_64KiB recv 200 65536 binary"
  "send_16B send 60000 16 text"
  "send_64KiB send 200 65536 binary"
  "echo_32B echo 1000 32 text"
  "zrecv_json recv 2000 200 json"
  "zsend_json send 2000 200 json"
)
fail=0
broken=0
printf '%-11s %9s %12s %12s %12s %12s %14s\n' case messages "C allocs" "C per msg" "zlib allocs" "Lua allocs" "Lua per msg"
declare -a SITES=()
for c in "${CASES[@]}"; do
  read -r name mode warmup size kind <<< "$c"
  total=$((warmup + N))
  pmd=
  [ "$kind" = json ] && pmd="&pmd=1"
  case $mode in
    recv|corecv) url="ws://127.0.0.1:$PORT/flood?n=$total&size=$size&op=$kind$pmd" ;;
    send) url="ws://127.0.0.1:$PORT/sink?n=$total${pmd:+&op=json$pmd}" ;;
    echo) url="ws://127.0.0.1:$PORT/echo" ;;
  esac
  err=$(BENCH_JSON=$JSON ALLOC_ZLIB_RANGES=$ZR ALLOC_LUA_RANGES=$LR LD_PRELOAD="$OUT/alloc_shim.so" timeout 120 "$MW" "$BENCH/clients/moonwire_alloc.lua" \
        "$mode" "$url" "$warmup" "$N" "$size" "$kind" 2>&1 >/dev/null) || true
  line=$(grep '^ALLOCS ' <<< "$err" || true)
  if [ -z "$line" ]; then
    echo "$name: no count (the run failed): $err" | head -5
    broken=1
    continue
  fi
  if [ "$kind" = json ] && ! grep -q '^EXT permessage-deflate' <<< "$err"; then
    echo "$name: permessage-deflate was not agreed: $(grep '^EXT' <<< "$err")"
    broken=1
    continue
  fi
  ca=$(sed 's/.*c_alloc=\([0-9]*\).*/\1/' <<< "$line")
  za=$(sed 's/.*zlib_alloc=\([0-9]*\).*/\1/' <<< "$line")
  la=$(sed 's/.*lua_alloc=\([0-9]*\).*/\1/' <<< "$line")
  cpm=$(awk -v a="$ca" -v n="$N" 'BEGIN { printf "%.4f", a / n }')
  lpm=$(awk -v a="$la" -v n="$N" 'BEGIN { printf "%.4f", a / n }')
  printf '%-11s %9d %12d %12s %12d %12d %14s\n' "$name" "$N" "$ca" "$cpm" "$za" "$la" "$lpm"
  if awk -v x="$cpm" -v m="$MAX_C_PER_MSG" 'BEGIN { exit !(x > m) }'; then fail=1; fi
  while read -r _ count where sym; do
    mod=${where%+*}; off=${where##*+}
    src=$(addr2line -f -i -e "$mod" "$off" 2>/dev/null | paste -sd' ' | sed 's#'"$ROOT"'/##g' || true)
    SITES+=("$name: $count x $sym ${src:-$where}")
  done < <(grep '^ALLOCSITE ' <<< "$err" | head -4)
done
if ((${#SITES[@]})); then
  echo
  echo "C call sites that allocated in the window (count, caller, file:line):"
  printf '  %s\n' "${SITES[@]}"
fi
echo
echo "Lua allocations are Lua's own (lua_pushlstring of a message longer than 40 bytes makes a"
echo "new string; shorter ones are interned and reused while alive; garbage collection frees them)."
if [ "$broken" = 1 ]; then
  echo "alloc: FAILED: some case produced no count"
  exit 1
fi
if [ "$fail" = 1 ]; then
  echo "alloc: C-side allocations per message above $MAX_C_PER_MSG in some case (target 8 of issue 7)"
  [ "$CHECK" = 1 ] && exit 1
fi
exit 0
