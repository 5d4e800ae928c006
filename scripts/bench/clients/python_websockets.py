"""python_websockets.py MODE URL N [SIZE] [KIND]: the bench modes with Python's
`websockets` (asyncio), written as a user would write them. MODE: recv | send | echo | idle.
Run with /usr/bin/python3 (Debian's python3-websockets).
KIND json (and MODE zidle, the memory case of compression): permessage-deflate with the
library's defaults (compression="deflate"), the messages being the lines of $BENCH_JSON,
message i line i % lines."""
import asyncio
import os
import sys
import time

import websockets

OPTS = dict(compression=None, max_size=None, ping_interval=None)
PMD_OPTS = dict(max_size=None, ping_interval=None)


def opts(kind):
    return PMD_OPTS if kind == "json" else OPTS


def json_lines():
    with open(os.environ["BENCH_JSON"]) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def info_ext(ws):
    ext = ws.response_headers.get("Sec-WebSocket-Extensions", "") or ""
    print(f"INFO ext={ext.replace(' ', '')}", flush=True)


def report(msgs, nbytes, secs, extra=""):
    print(f"RESULT msgs={msgs} bytes={nbytes} secs={secs:.6f}{extra}", flush=True)


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


async def recv(url, n, size, kind):
    async with websockets.connect(url, **opts(kind)) as ws:
        t0 = time.monotonic()
        info_ext(ws)
        got = nbytes = 0
        while got < n:
            data = await ws.recv()
            got += 1
            nbytes += len(data)
        report(got, nbytes, time.monotonic() - t0)


async def send(url, n, size, kind):
    msg = b"x" * size if kind == "binary" else "x" * size
    lines = json_lines() if kind == "json" else None
    async with websockets.connect(url, **opts(kind)) as ws:
        t0 = time.monotonic()
        info_ext(ws)
        if lines:
            count = len(lines)
            for i in range(n):
                await ws.send(lines[i % count])
        else:
            for _ in range(n):
                await ws.send(msg)
        reply = await ws.recv()
        assert reply == "done", reply
        report(n, n * size, time.monotonic() - t0)


async def echo(url, n, size, kind):
    msg = "e" * size
    async with websockets.connect(url, **OPTS) as ws:
        t0 = time.monotonic()
        for _ in range(n):
            await ws.send(msg)
            await ws.recv()
        report(n, n * size, time.monotonic() - t0)


async def idle(url, n, size, kind, exchange=False):
    before, t0 = rss_kb(), time.monotonic()
    sem = asyncio.Semaphore(500)

    async def one():
        async with sem:
            ws = await websockets.connect(url, **(PMD_OPTS if exchange else OPTS))
            if exchange:
                await ws.send(await ws.recv())
                reply = await ws.recv()
                if reply != "ok":
                    sys.exit(f"error: the server got our message back wrong ({reply})")
            return ws

    conns = await asyncio.gather(*(one() for _ in range(n)))
    await asyncio.sleep(0.2)
    report(len(conns), 0, time.monotonic() - t0, f" rss_before_kb={before} rss_after_kb={rss_kb()}")
    for c in conns:
        c.transport.abort()


def main():
    mode, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    kind = sys.argv[5] if len(sys.argv) > 5 else "text"
    if mode == "zidle":
        asyncio.run(idle(url, n, size, kind, exchange=True))
        return
    asyncio.run({"recv": recv, "send": send, "echo": echo, "idle": idle}[mode](url, n, size, kind))


main()
