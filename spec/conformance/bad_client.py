#!/usr/bin/python3
"""A deliberately wrong permessage-deflate echo client, to show that sections 12 and 13 catch
what they claim to (run.py --expect-fail). Python's `websockets` 10.4 (as ref_client.py),
with its compression bent one way:

    /usr/bin/python3 bad_client.py MODE ws://127.0.0.1:PORT/case/<id>

MODE:
  window15      compresses with a 15-bit window whatever client_max_window_bits was agreed
  window+1      compresses with a window one bit larger than agreed (9 when 8 was agreed: what
                zlib before 1.2.9 silently did with 8)
  keep-context  keeps its compression context even under client_no_context_takeover
  rsv1-cont     sends each message in 2 fragments with RSV1 set on both (RFC 7692 6: only the
                first frame of a message may carry it)
  split         nothing wrong: each message in 2 fragments, RSV1 on the first only (the
                server's decoding of fragmented compressed messages; passes what ref_client.py
                passes)"""

import asyncio
import dataclasses
import sys

import websockets
from websockets.extensions import permessage_deflate as pmd

MODE = sys.argv[1]
_init = pmd.PerMessageDeflate.__init__
_encode = pmd.PerMessageDeflate.encode


def bent_init(self, remote_nct, local_nct, remote_bits, local_bits, settings=None):
    if MODE == "window15":
        local_bits = 15
    if MODE == "window+1":
        local_bits = min(15, local_bits + 1)
    if MODE == "keep-context":
        local_nct = False
    _init(self, remote_nct, local_nct, remote_bits, local_bits, settings or {})


def bent_encode(self, frame):
    out = _encode(self, frame)
    return dataclasses.replace(out, rsv1=True) if MODE == "rsv1-cont" else out


pmd.PerMessageDeflate.__init__ = bent_init
pmd.PerMessageDeflate.encode = bent_encode


async def main(url):
    try:
        async with websockets.connect(url, max_size=None, ping_interval=None, close_timeout=3) as ws:
            async for message in ws:
                if MODE in ("rsv1-cont", "split") and len(message) >= 2:
                    h = len(message) // 2
                    await ws.send(iter([message[:h], message[h:]]))
                else:
                    await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    except Exception as e:
        print("bad_client: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[2])))
