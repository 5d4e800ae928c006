#!/usr/bin/python3
"""jsonmsgs.py FILE: writes the compressed cases' messages (issue 13), one a line: 1,000
distinct 200-byte JSON objects shaped like an exchange's trade feed (field names repeat,
numbers change). Message i of a run is line i % 1000, for every client and for the bench
server, which reads the same file (server --json FILE) to frame what it floods and to check
what it sinks. 1,000 x 200 bytes is more than a 32 KiB window, so no message is ever a copy
of one still in the window: the compression is that of a real feed, not of a repeat."""
import sys

COUNT = 1000
SIZE = 200
PAD = "loopback-bench-feed-" * 10


def message(k):
    body = ('{"e":"trade","E":%d,"s":"BTCUSDT","t":%d,"p":"%d.%02d","q":"%d.%05d",'
            '"b":%d,"a":%d,"T":%d,"m":%s,"M":true' % (
                1700000000000 + k * 131, 100000000 + k * 7919,
                40000 + (k * 37) % 1000, (k * 53) % 100, (k * 13) % 10, (k * 7717) % 100000,
                5000000000 + k * 104729, 5000000017 + k * 104729 + k % 5,
                1700000000000 + k * 131 - (k % 7), "true" if k % 3 == 0 else "false"))
    tail = ',"v":"'
    room = SIZE - len(body) - len(tail) - 2
    msg = body + tail + PAD[:room] + '"}'
    assert len(msg) == SIZE, (k, len(msg))
    return msg


def write(path):
    with open(path, "w") as f:
        for k in range(COUNT):
            f.write(message(k) + "\n")


if __name__ == "__main__":
    write(sys.argv[1])
