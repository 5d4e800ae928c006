#!/usr/bin/python3
"""A toy exchange that speaks JSON, on Python's `websockets` (Debian's python3-websockets),
for examples/json_bot.lua and spec/json_spec.lua. Python's json module encodes and
decodes on this side, so what moonwire's bot sends and reads is checked by another
implementation.

Listens on 127.0.0.1 port 0 and prints `PORT <n>` first. Each event is a line:
  CONNECT <path>          a client completed the handshake
  GOT <json>              a message arrived that is JSON: re-encoded with sorted keys,
                          integers as integers, floats in repr (so 1 and 1.0 differ)
  TYPES <key>=<type>...   the Python types of that message's top-level values
  BAD <text>              a message arrived that is not JSON
  CLOSE <code> <reason>   the client closed
To {"op":"subscribe","channel":C,"id":N} it answers {"event":"subscribed","channel":C,
"id":N}, then sends trade 1, a ping {"op":"ping","id":77}, a line that is not JSON, a
ping with text after it ({"op":"ping","id":78} x), then trades 2 and 3. Trade k has trade_id 2^53 + k (a float cannot hold it), price
43250.5 + k / 4, size 0.25, fee null and tags [] (k = 1, 2), ["block"] (k = 3).
Any other JSON message is only reported. End of stdin, or --lifetime seconds, ends it.
"""
import argparse
import asyncio
import json
import sys

import websockets


def out(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def trade(channel, k):
    return {"type": "trade", "channel": channel, "trade_id": 2**53 + k,
            "price": 43250.5 + k / 4, "size": 0.25, "side": "buy" if k % 2 else "sell",
            "fee": None, "tags": ["block"] if k == 3 else []}


async def handler(ws, path=None):
    path = path if path is not None else ws.path
    out("CONNECT", path)
    try:
        async for m in ws:
            try:
                msg = json.loads(m)
            except ValueError:
                out("BAD", m)
                continue
            out("GOT", json.dumps(msg, sort_keys=True, separators=(",", ":")))
            if isinstance(msg, dict):
                out("TYPES", " ".join(f"{k}={type(v).__name__}" for k, v in sorted(msg.items())))
            if isinstance(msg, dict) and msg.get("op") == "subscribe":
                ch = msg.get("channel")
                await ws.send(json.dumps({"event": "subscribed", "channel": ch, "id": msg.get("id")}))
                await ws.send(json.dumps(trade(ch, 1)))
                await ws.send(json.dumps({"op": "ping", "id": 77}))
                await ws.send("not json {")
                await ws.send('{"op":"ping","id":78} x')
                await ws.send(json.dumps(trade(ch, 2)))
                await ws.send(json.dumps(trade(ch, 3)))
    except websockets.ConnectionClosed:
        pass
    out("CLOSE", ws.close_code, ws.close_reason or "-")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()
    async with websockets.serve(handler, "127.0.0.1", 0, ping_interval=None) as srv:
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
