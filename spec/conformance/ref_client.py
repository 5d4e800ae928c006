#!/usr/bin/python3
"""Reference echo client for validating the conformance harness: Python's `websockets`
library (Debian python3-websockets 10.4), asyncio client API.

    /usr/bin/python3 ref_client.py ws://127.0.0.1:PORT/case/1.1.1

Connects (offering the library's default compression, `permessage-deflate;
client_max_window_bits`, for sections 12 and 13), echoes every text/binary message back with
the same type, answers the closing handshake (the library does that), and exits when the
connection is closed."""

import asyncio
import sys

import websockets


async def main(url):
    try:
        async with websockets.connect(url, max_size=None, ping_interval=None,
                                      close_timeout=3) as ws:
            async for message in ws:       # str for text, bytes for binary
                await ws.send(message)     # same type back
    except websockets.ConnectionClosed:
        pass
    except Exception as e:                  # handshake errors and the like
        print("ref_client: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
