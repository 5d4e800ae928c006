#!/usr/bin/env bash
# bootstrap.sh: install what is missing (Debian 12, as root), then configure and build
# moonwire into build/. Idempotent: a second run installs nothing and rebuilds only
# what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config                      # toolchain
  liblua5.4-dev lua5.4 libev-dev libwolfssl-dev libc-ares-dev zlib1g-dev  # moonwire's libraries
  libreadline-dev                                       # line editing for -c and -i (GNU readline)
  lua-busted lua-luv                                    # specs (luv: processes and pipes)
  python3 python3-websockets nodejs node-ws             # test servers (interop peers)
  python3-prometheus-client                             # metrics spec: parses --metrics FILE with a real Prometheus text parser
  valgrind                                              # leak check of the spec scripts
  clang libclang-rt-14-dev                              # libFuzzer targets (scripts/fuzz.sh)
  nginx-light openssl ca-certificates                   # TLS specs: nginx in front of a ws server, test certificates
  lua-http lua5.2 libssl-dev                            # bench peers: lua-http (Lua 5.2), the TLS bench server
  libwslay-dev golang-go golang-github-gorilla-websocket-dev  # bench peers (issue 17): wslay (C), gorilla (Go, built offline)
  tinyproxy microsocks                                  # proxy specs: HTTP CONNECT and SOCKS5 peers
  tmux                                                  # terminal specs (mw.stdin under a real tty)
  lua-dkjson lua-lpeg                                   # JSON for bots (README "JSON"): integers stay integers; lpeg: 2-3x faster decode
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: run as root to install packages (or install them yourself)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
