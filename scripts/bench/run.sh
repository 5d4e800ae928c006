#!/usr/bin/env bash
# run.sh [--quick | --smoke] [--runs N] [--only CASE[,CASE..]] [--clients a,b,..]
# The moonwire benchmark (issue 7): builds what it needs (moonwire into build-bench/, the
# bench server and raw client into build/bench/), installs the peers that are missing
# (Debian packages as root, Node's ws included: node-ws), makes
# throw-away TLS certificates, then runs scripts/bench/bench.py.
#   (no flag)  the full run: issue 7's counts, each figure the median of --runs (5) runs
#   --quick    a tenth of the counts (idle: 1,000 connections), 5 runs, 2-5 minutes
#   --smoke    tiny counts, 1 run: checks that every client still works (a ctest test)
# MOONWIRE_BIN=path uses that binary instead of building build-bench/ (ctest does this);
# BENCH_OUT=dir puts the results there (default build/bench; results.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BENCH=$ROOT/scripts/bench
SMOKE=0
for a in "$@"; do [ "$a" = "--smoke" ] && SMOKE=1; done
OUT=${BENCH_OUT:-$ROOT/build/bench}
mkdir -p "$OUT"

say() { echo "bench: $*" >&2; }

# ---- peers (Debian) ----
# lua-http is packaged for Lua 5.1-5.3, its dependencies basexx and fifo for 5.1-5.2 only:
# it runs under lua5.2 (LUAHTTP_LUA overrides). libssl-dev: the TLS bench server (OpenSSL).
# libwslay-dev, golang-go, golang-github-gorilla-websocket-dev: the C and Go receive peers (issue 17).
PACKAGES=(nodejs node-ws python3 python3-websockets lua-http lua5.2 libssl-dev openssl zlib1g-dev
  libwslay-dev golang-go golang-github-gorilla-websocket-dev libwolfssl-dev)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing packages (run as root to install): ${missing[*]}"
  fi
fi
LUAHTTP_LUA=${LUAHTTP_LUA:-lua5.2}

# ---- moonwire ----
if [ -n "${MOONWIRE_BIN:-}" ]; then
  MW=$MOONWIRE_BIN
else
  say "building moonwire (RelWithDebInfo) into build-bench/"
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-bench -j"$(nproc)" --target moonwire >/dev/null
  MW=$ROOT/build-bench/moonwire
fi

# ---- bench server and raw client ----
CFLAGS="-O2 -Wall -Wextra"
build() { # out src [flags...] (server.c includes server_pmd.c: either being newer rebuilds)
  local out=$1 src=$2; shift 2
  if [ ! -x "$out" ] || [ "$src" -nt "$out" ] || [ "$BENCH/server_pmd.c" -nt "$out" ]; then
    cc $CFLAGS -o "$out" "$src" "$@"
  fi
}
build "$OUT/server" "$BENCH/server.c" -lcrypto -lz
build "$OUT/rawclient" "$BENCH/rawclient.c"
# issue 17's receive peers: wslay (C) and gorilla/websocket (Go, built offline from Debian's
# /usr/share/gocode: no module download); a peer that cannot be built is left out, and says so.
WSLAY=
if [ -f /usr/include/wslay/wslay.h ] && build "$OUT/wslay_recv" "$BENCH/clients/wslay_recv.c" -lwslay; then
  WSLAY=$OUT/wslay_recv
else
  say "no libwslay-dev: the wslay peer is left out"
fi
GORILLA=
if command -v go >/dev/null && [ -d /usr/share/gocode/src/github.com/gorilla/websocket ]; then
  if [ ! -x "$OUT/gorilla" ] || [ "$BENCH/clients/gorilla/main.go" -nt "$OUT/gorilla" ]; then
    (cd "$BENCH/clients/gorilla" && GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= \
      GOCACHE="$OUT/gocache" go build -o "$OUT/gorilla" .) || say "gorilla peer did not build"
  fi
  [ -x "$OUT/gorilla" ] && GORILLA=$OUT/gorilla
else
  say "no golang-go or gorilla/websocket: the gorilla peer is left out"
fi
# issue 17.3: what wolfCrypt alone decrypts per second with the wss case's AEAD
WOLFBENCH=
if build "$OUT/wolfaead" "$BENCH/wolfaead.c" -lwolfssl; then WOLFBENCH=$OUT/wolfaead; fi
SERVER_TLS=
if [ -f /usr/include/openssl/ssl.h ] && build "$OUT/server_tls" "$BENCH/server.c" -DBENCH_TLS -lssl -lcrypto -lz; then
  SERVER_TLS=$OUT/server_tls
else
  say "no OpenSSL headers: the wss case will read n/a"
fi

# ---- Node's ws: Debian's node-ws (apt is the only registry: nothing is fetched) ----
NODE_PATH=/usr/share/nodejs
NODE_WS_VERSION=$(NODE_PATH=$NODE_PATH node -e 'console.log(require("ws/package.json").version)' 2>/dev/null || echo "?")

# ---- throw-away TLS certificates (EC P-256): a CA and a 127.0.0.1 server cert ----
CERTS=$(mktemp -d)
trap 'rm -rf "$CERTS"' EXIT
(
  cd "$CERTS"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout ca.key -out ca.pem -subj "/CN=moonwire bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' > ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile ext -out server.pem 2>/dev/null
) || say "openssl could not make certificates: the wss case will read n/a"

# 10,000 idle connections need as many descriptors in the client and in the server
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

NOTE="moonwire $("$MW" --version 2>/dev/null | head -1) ($MW); node $(node --version) ws $NODE_WS_VERSION; python3 websockets $(/usr/bin/python3 -c 'import websockets; print(websockets.__version__)' 2>/dev/null); lua-http under $LUAHTTP_LUA"
JSON=$OUT/results.json
[ "$SMOKE" = 1 ] && JSON=$OUT/results-smoke.json
rc=0
/usr/bin/python3 "$BENCH/bench.py" --moonwire "$MW" --server "$OUT/server" --server-tls "$SERVER_TLS" \
  --rawclient "$OUT/rawclient" --wslay "$WSLAY" --gorilla "$GORILLA" --wolfaead "$WOLFBENCH" --node-path "$NODE_PATH" --luahttp-lua "$LUAHTTP_LUA" \
  --cert "$CERTS/server.pem" --key "$CERTS/server.key" --cafile "$CERTS/ca.pem" \
  --json "$JSON" --note "$NOTE" "$@" || rc=$?
# issue 14: many connections from three source addresses (bindto)
SOURCES_N=60000
for a in "$@"; do [ "$a" = "--quick" ] && SOURCES_N=6000; done
[ "$SMOKE" = 1 ] && SOURCES_N=300
echo "== sources.sh ($SOURCES_N connections, 3 source addresses)"
"$BENCH/sources.sh" "$MW" "$OUT/server" "$SOURCES_N" || rc=1
if [ "$SMOKE" = 1 ]; then
  # the allocation counter (target 8) must keep working too; its figures are a report
  echo "== alloc.sh --quick"
  a=0
  MOONWIRE_BIN=$MW BENCH_OUT=$OUT "$BENCH/alloc.sh" --quick || a=$?
  if [ "$a" != 0 ] && [ "$a" != 77 ]; then rc=1; fi
fi
exit $rc
