#!/usr/bin/python3
"""WebSocket echo peer on Python's `websockets` (Debian's python3-websockets),
for interop specs and the demo.

Listens on 127.0.0.1 port 0 and prints `PORT <n>` first. Each event is a line:
  CONNECT <path> <header-name>=<value>...   a client completed the handshake
  MSG <text|binary> <len> <sha1>            a message arrived (and was echoed back)
  CLOSE <code> <reason>                     the client closed
Path /echo echoes every message; /send/<n> also sends one text and one binary
message of n bytes (pattern bytes) right after the handshake.
End of stdin, or --lifetime seconds, ends the server.

permessage-deflate is on, as websockets has it by default; --no-compression turns it
off, and --server-max-window-bits N, --server-no-context-takeover,
--client-no-context-takeover, --client-max-window-bits N set what the server asks for
and accepts. CONNECT is then followed by `EXT <the Sec-WebSocket-Extensions answer, or ->`.
"""
import argparse
import asyncio
import hashlib
import sys

import websockets


def out(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def pattern(n, seed):
    """Byte i is (i * 7 + seed) % 251: the period is 251, so repeat one block."""
    block = bytes((i * 7 + seed) % 251 for i in range(251))
    return (block * (n // 251 + 1))[:n]


async def handler(ws, path=None):
    path = path if path is not None else ws.path
    hdrs = " ".join(f"{k}={v}" for k, v in ws.request_headers.raw_items()
                    if k.lower() in ("cookie", "origin", "x-test", "host", "user-agent"))
    out("CONNECT", path, hdrs)
    out("EXT", ws.response_headers.get("Sec-WebSocket-Extensions", "-"))
    if path.startswith("/send/"):
        n = int(path.split("/")[2])
        await ws.send("x" * n)
        await ws.send(pattern(n, 2))
    try:
        async for m in ws:
            kind = "text" if isinstance(m, str) else "binary"
            data = m.encode("utf-8") if isinstance(m, str) else m
            out("MSG", kind, len(data), hashlib.sha1(data).hexdigest())
            await ws.send(m)
    except websockets.ConnectionClosed:
        pass
    out("CLOSE", ws.close_code, ws.close_reason or "-")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=120)
    ap.add_argument("--no-compression", action="store_true")
    ap.add_argument("--server-max-window-bits", type=int)
    ap.add_argument("--client-max-window-bits", type=int)
    ap.add_argument("--server-no-context-takeover", action="store_true")
    ap.add_argument("--client-no-context-takeover", action="store_true")
    args = ap.parse_args()
    kw = {}
    if args.no_compression:
        kw["compression"] = None
    elif (args.server_max_window_bits or args.client_max_window_bits or
          args.server_no_context_takeover or args.client_no_context_takeover):
        from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
        kw["compression"] = None
        kw["extensions"] = [ServerPerMessageDeflateFactory(
            server_no_context_takeover=args.server_no_context_takeover,
            client_no_context_takeover=args.client_no_context_takeover,
            server_max_window_bits=args.server_max_window_bits,
            client_max_window_bits=args.client_max_window_bits)]
    async with websockets.serve(handler, "127.0.0.1", 0, max_size=None,
                                ping_interval=None, **kw) as srv:
        out("PORT", srv.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        stdin_eof = loop.run_in_executor(None, sys.stdin.read)
        await asyncio.wait([stdin_eof], timeout=args.lifetime)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    sys.exit(0)
