"""The conformance cases: the server side of each, and the strict outcome expected of an echo
client (one that echoes every text/binary message with the same type and answers closes).

Numbering follows the sections of the Autobahn TestSuite (1 framing, 2 pings/pongs, 3 reserved
bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 closing, 9 limits, 10 misc) so a failure here can
be matched to the category it would fail there. The cases themselves are written from RFC 6455;
ids that have no Autobahn counterpart carry a letter or sit in a sub-section Autobahn lacks
(1.3.x, 2.12+, 6.x.y.f / 6.x.y.c variants, 9.9.x) and say so in their description.

Expectation vocabulary (see Case):
  expect    the exact items the client must send before its close frame, in order:
            ("text", bytes), ("binary", bytes), ("pong", bytes); `alt` lists other acceptable
            sequences (only where RFC 6455 leaves the outcome to the implementation). With
            ordered=False (2.13 only) pongs and echoes must each be in order but may interleave
            freely.
  end       "normal": the server starts (or has started, in the steps) the closing handshake;
            the client must answer with a close frame whose code is in `codes` (None = an
            empty close payload), must not start closing itself, and must let the server close
            TCP first.
            "fail": the client must fail the connection by itself: a close frame with a code
            in `codes` (then TCP close), or, when may_drop, just a TCP close; nothing after
            the violation may be echoed or answered.
  failpoint steps: the bytes sent so far already violate the protocol; the client must fail
            before the server sends more (fail fast).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from server import (BINARY, CLOSE, CONT, PING, PONG, TEXT, ITEMS_WAIT, close_payload, frame,
                    utf8_error_index)


class Case:
    def __init__(self, id, desc, steps, expect=(), alt=(), end="normal", codes=(1000,),
                 may_drop=None, timeout=6.0, settle=0.1, items_wait=ITEMS_WAIT, tcp_first=None,
                 ordered=True, pmd=None, need_compressed=False):
        self.id = id
        self.desc = desc
        self.steps = list(steps)
        self.expect = list(expect)
        self.alt = [list(a) for a in alt]
        self.end = end
        self.codes = list(codes)
        self.may_drop = (end == "fail") if may_drop is None else may_drop
        self.timeout = timeout
        self.settle = settle
        self.items_wait = items_wait
        # who may close TCP first: "server" (a clean closing handshake: the client waits for
        # the server's FIN, RFC 6455 7.1.1) or "any" (the client failed the connection and may
        # drop TCP itself, RFC 6455 7.1.7)
        self.tcp_first = tcp_first or ("any" if end == "fail" else "server")
        self.ordered = ordered
        # permessage-deflate (sections 12, 13): the server's answer (a pmd.Deflate; None: no
        # extension agreed, so RSV1 from the client is a violation), and whether the client must
        # compress at least one message (cases that test its window or its context takeover)
        self.pmd = pmd
        self.need_compressed = need_compressed

    def expectation(self):
        from server import describe_codes, describe_items
        s = "client sends %s" % describe_items(self.expect)
        if self.pmd:
            s = "server answers %r; %s%s" % (self.pmd.answer(), s, ", at least one compressed"
                                             if self.need_compressed else "")
        for a in self.alt:
            s += " (or %s)" % describe_items(a)
        if self.end == "fail":
            s += "; then fails the connection: close %s then TCP close%s; either side may close TCP first" % (
                describe_codes(self.codes), ", or just TCP close" if self.may_drop else "")
        else:
            s += "; replies to the server's close with close %s; server closes TCP first" % \
                describe_codes(self.codes)
        return s


CASES = []


def add(*a, **kw):
    c = Case(*a, **kw)
    CASES.append(c)
    return c


def ok(id, desc, steps, expect=(), **kw):
    return add(id, desc, steps, expect, **kw)


def fail(id, desc, steps, expect=(), codes=(1002,), **kw):
    return add(id, desc, steps, expect, end="fail", codes=codes, **kw)


# --------------------------------------------------------------------------- step builders

def send(*frames):
    data = b"".join(frames)
    return lambda r: r.send(data)


def chop(data, size=1, delay=0.0):
    return lambda r: r.chop(data, size, delay)


def frames_apart(frames, delay=0.05):
    """Each frame in its own write, `delay` apart (frame-wise chops)."""
    def step(r):
        for i, f in enumerate(frames):
            if not r.send(f):
                return
            if delay and i + 1 < len(frames):
                r.sleep(delay)
    return step


def sleep(s):
    return lambda r: r.sleep(s)


def wait_items(n, timeout=ITEMS_WAIT):
    return lambda r: r.wait_items(n, timeout)


def failpoint(label):
    return lambda r: r.failpoint(label)


def expect_items(n, label, timeout=1.0):
    return lambda r: r.expect_items(n, label, timeout)


def server_close(code=None, reason=b"", payload=None, rsv=0, then=b"", chop_size=None):
    """Send a close frame (starting the closing handshake), optionally followed by more bytes in
    the same write, or written in chops of chop_size octets."""
    p = close_payload(code, reason) if payload is None else payload

    def step(r):
        if r.rec.server_close_t is None:
            r.rec.server_close_t = time.monotonic()
            r.rec.server_close_first = r.rec.client_close_t is None
        data = frame(CLOSE, p, rsv=rsv) + then
        if chop_size:
            r.chop(data, chop_size, 0.002)
        else:
            r.send(data)
    return step


def text(p, **kw):
    return frame(TEXT, p, **kw)


def binary(p, **kw):
    return frame(BINARY, p, **kw)


def cont(p, **kw):
    return frame(CONT, p, **kw)


def ping(p=b"", **kw):
    return frame(PING, p, **kw)


def pong(p=b"", **kw):
    return frame(PONG, p, **kw)


def b(s):
    return s.encode("utf-8") if isinstance(s, str) else s


# =========================================================================== 1 framing

SIZES = [0, 125, 126, 127, 128, 65535, 65536]
for i, n in enumerate(SIZES, 1):
    p = b"*" * n
    ok("1.1.%d" % i, "Text message, payload length %d" % n, [send(text(p))], [("text", p)])
p = b"*" * 65536
ok("1.1.8", "Text message, payload length 65536, written in chops of 997 octets",
   [chop(text(p), 997)], [("text", p)])
for i, n in enumerate(SIZES, 1):
    p = b"\xfe" * n
    ok("1.2.%d" % i, "Binary message, payload length %d" % n, [send(binary(p))], [("binary", p)])
p = b"\xfe" * 65536
ok("1.2.8", "Binary message, payload length 65536, written in chops of 997 octets",
   [chop(binary(p), 997)], [("binary", p)])

# 1.3: framing rules of RFC 6455 5.1/5.2 that Autobahn does not exercise (not Autobahn cases)
fail("1.3.1", "[extra] Server sends a masked text frame (RFC 6455 5.1: client MUST close)",
     [send(text(b"Hello, world!", mask=b"\x11\x22\x33\x44"))])
fail("1.3.2", "[extra] Text frame with a 64-bit length whose most significant bit is set "
     "(RFC 6455 5.2), header only", [send(text(b"", length=(1 << 63) | 16))])
fail("1.3.3", "[extra] Binary frame announcing 2^40 bytes (over maxPackageSize), header only: "
     "the client must fail with 1009 without waiting for the payload",
     [send(binary(b"", length=1 << 40))], codes=(1009,))
ok("1.3.4", "[extra] Two text messages and a binary message in one TCP write",
   [send(text(b"one"), text(b"two"), binary(b"\x00\x01"))],
   [("text", b"one"), ("text", b"two"), ("binary", b"\x00\x01")])
ok("1.3.5", "[extra] Text message whose frame header is split across writes after each octet, "
   "payload 300 octets", [chop(text(b"x" * 300)[:4], 1, 0.01), send(b"x" * 300)],
   [("text", b"x" * 300)])

# =========================================================================== 2 pings and pongs

ok("2.1", "Ping without payload", [send(ping())], [("pong", b"")])
ok("2.2", "Ping with small text payload", [send(ping(b"Hello, world!"))], [("pong", b"Hello, world!")])
bp = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
ok("2.3", "Ping with small binary (non UTF-8) payload", [send(ping(bp))], [("pong", bp)])
p125 = bytes((i * 7 + 3) & 0xFF for i in range(125))
ok("2.4", "Ping with binary payload of 125 octets", [send(ping(p125))], [("pong", p125)])
fail("2.5", "Ping with binary payload of 126 octets (control frame too long): fail, no pong",
     [send(ping(b"\xfe" * 126))])
ok("2.6", "Ping with binary payload of 125 octets, written in 1-octet chops with 2 ms delays",
   [chop(ping(p125), 1, 0.002)], [("pong", p125)])
ok("2.7", "Unsolicited pong without payload: nothing to answer", [send(pong())], [], settle=0.3)
ok("2.8", "Unsolicited pong with payload: nothing to answer", [send(pong(b"unsolicited pong payload"))],
   [], settle=0.3)
ok("2.9", "Unsolicited pong with payload, then ping with payload: pong for the ping only",
   [send(pong(b"unsolicited pong payload"), ping(b"ping payload"))], [("pong", b"ping payload")])
pl = [("payload-%d" % i).encode() for i in range(10)]
ok("2.10", "10 pings with payload in one write: 10 pongs, in order",
   [send(*[ping(x) for x in pl])], [("pong", x) for x in pl])
ok("2.11", "10 pings with payload, written in 1-octet chops: 10 pongs, in order",
   [chop(b"".join(ping(x) for x in pl), 1)], [("pong", x) for x in pl])
storm = [("storm %04d " % i).encode() + b"." * (i % 100) for i in range(1000)]
ok("2.12", "[extra] Ping storm: 1000 pings with distinct payloads in one write: 1000 pongs, in order",
   [send(*[ping(x) for x in storm])], [("pong", x) for x in storm], timeout=10)
ok("2.13", "[extra] 100 pings of 125 octets each interleaved with 100 text messages (pongs in "
   "order, echoes in order, their interleaving free)",
   [send(*[ping(bytes([i]) * 125) + text(("m%d" % i).encode()) for i in range(100)])],
   [it for i in range(100) for it in (("pong", bytes([i]) * 125), ("text", ("m%d" % i).encode()))],
   ordered=False)
fail("2.14", "[extra] Pong with 126-octet payload: fail", [send(pong(b"\x01" * 126))])

# =========================================================================== 3 reserved bits

hw = b"Hello, world!"
fail("3.1", "Text message with RSV = 1: fail, no echo", [send(text(hw, rsv=1))])
fail("3.2", "Text message, then text message with RSV = 2, then ping: echo the first only",
     [send(text(hw), text(hw, rsv=2), ping(hw))], [("text", hw)])
fail("3.3", "Text, then text with RSV = 3, then ping, frame-wise chops with delays",
     [frames_apart([text(hw), text(hw, rsv=3), ping(hw)], 0.05)], [("text", hw)])
fail("3.4", "Text, then text with RSV = 4, then ping, octet-wise chops",
     [chop(text(hw) + text(hw, rsv=4) + ping(hw), 1)], [("text", hw)])
fail("3.5", "Binary message with RSV = 5", [send(binary(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5))])
fail("3.6", "Ping with RSV = 6: fail, no pong", [send(ping(hw, rsv=6))])
fail("3.7", "Close with RSV = 7: fail with 1002 rather than a normal close reply",
     [server_close(1000, rsv=7)])

# =========================================================================== 4 opcodes

for sub, ops in (("1", (3, 4, 5, 6, 7)), ("2", (11, 12, 13, 14, 15))):
    kind = "non-control" if sub == "1" else "control"
    a, bb, c, d, e = ops
    fail("4.%s.1" % sub, "Frame with reserved %s opcode %d, no payload" % (kind, a), [send(frame(a))])
    fail("4.%s.2" % sub, "Frame with reserved %s opcode %d, with payload" % (kind, bb),
         [send(frame(bb, b"reserved opcode payload"))])
    fail("4.%s.3" % sub, "Text, then reserved %s opcode %d, then ping: echo the text only" % (kind, c),
         [send(text(hw), frame(c), ping(hw))], [("text", hw)])
    fail("4.%s.4" % sub, "Text, then reserved %s opcode %d with payload, then ping" % (kind, d),
         [send(text(hw), frame(d, hw), ping(hw))], [("text", hw)])
    fail("4.%s.5" % sub, "Text, then reserved %s opcode %d with payload, then ping, octet-wise chops"
         % (kind, e), [chop(text(hw) + frame(e, hw) + ping(hw), 1)], [("text", hw)])

# =========================================================================== 5 fragmentation

fail("5.1", "Ping fragmented into 2 frames (control frames must not be fragmented)",
     [send(ping(b"ping fragment 1", fin=False), cont(b"ping fragment 2"))])
fail("5.2", "Pong fragmented into 2 frames",
     [send(pong(b"pong fragment 1", fin=False), cont(b"pong fragment 2"))])
f1, f2 = b"fragment1", b"fragment2"
ok("5.3", "Text message in 2 fragments", [send(text(f1, fin=False), cont(f2))], [("text", f1 + f2)])
ok("5.4", "Text message in 2 fragments, frame-wise chops with delays",
   [frames_apart([text(f1, fin=False), cont(f2)], 0.05)], [("text", f1 + f2)])
ok("5.5", "Text message in 2 fragments, octet-wise chops with 1 ms delays",
   [chop(text(f1, fin=False) + cont(f2), 1, 0.001)], [("text", f1 + f2)])
pp = b"ping payload"
ok("5.6", "Text message in 2 fragments with a ping between them: pong comes first",
   [send(text(f1, fin=False), ping(pp), cont(f2))], [("pong", pp), ("text", f1 + f2)])
ok("5.7", "Text in 2 fragments with a ping between, frame-wise chops with delays (pong before "
   "the last fragment is sent)",
   [send(text(f1, fin=False)), sleep(0.05), send(ping(pp)),
    expect_items(1, "pong for a ping inside a fragmented message before its last fragment"),
    send(cont(f2))],
   [("pong", pp), ("text", f1 + f2)])
ok("5.8", "Text in 2 fragments with a ping between, octet-wise chops",
   [chop(text(f1, fin=False) + ping(pp) + cont(f2), 1)], [("pong", pp), ("text", f1 + f2)])
c_then = [cont(b"fragment1"), text(b"fragment2"), ping(pp)]
fail("5.9", "Continuation (FIN) without a message to continue, then text and ping: fail at once",
     [send(*c_then)])
fail("5.10", "Continuation (FIN) without start, then text and ping, frame-wise chops",
     [frames_apart(c_then, 0.05)])
fail("5.11", "Continuation (FIN) without start, then text and ping, octet-wise chops",
     [chop(b"".join(c_then), 1)])
c_then2 = [cont(b"fragment1", fin=False), text(b"fragment2"), ping(pp)]
fail("5.12", "Continuation (no FIN) without a message to continue, then text and ping",
     [send(*c_then2)])
fail("5.13", "Continuation (no FIN) without start, then text and ping, frame-wise chops",
     [frames_apart(c_then2, 0.05)])
fail("5.14", "Continuation (no FIN) without start, then text and ping, octet-wise chops",
     [chop(b"".join(c_then2), 1)])
fail("5.15", "Text in 2 fragments (echoed), then continuation (no FIN) and text: fail at the "
     "orphan continuation",
     [send(text(b"fragment1", fin=False), cont(b"fragment2"), cont(b"fragment3", fin=False),
           text(b"fragment4"))], [("text", b"fragment1fragment2")])
seq16 = [cont(b"fragment1", fin=False), text(b"fragment2", fin=False), cont(b"fragment3")] * 2
fail("5.16", "Twice: continuation (no FIN), text (no FIN), continuation (FIN): fail at the first frame",
     [send(*seq16)])
seq17 = [cont(b"fragment1"), text(b"fragment2", fin=False), cont(b"fragment3")] * 2
fail("5.17", "Twice: continuation (FIN), text (no FIN), continuation (FIN): fail at the first frame",
     [send(*seq17)])
fail("5.18", "Text fragment (no FIN) followed by another text frame (FIN) instead of a continuation",
     [send(text(b"fragment1", fin=False), text(b"fragment2"))])
frs = [b"fragment%d" % i for i in range(1, 6)]
full = b"".join(frs)
ok("5.19", "Text in 5 fragments, a ping after fragments 2 and 4, with delays: each pong before "
   "the message is complete",
   [send(text(frs[0], fin=False), cont(frs[1], fin=False), ping(b"pongme 1!")),
    expect_items(1, "pong 1 before the rest of the fragmented message is sent"),
    sleep(0.05), send(cont(frs[2], fin=False), cont(frs[3], fin=False), ping(b"pongme 2!")),
    expect_items(2, "pong 2 before the last fragment is sent"), sleep(0.05), send(cont(frs[4]))],
   [("pong", b"pongme 1!"), ("pong", b"pongme 2!"), ("text", full)])
ok("5.20", "Same as 5.19, every frame in its own write with delays, octet-wise chops for the pings",
   [send(text(frs[0], fin=False)), sleep(0.02), send(cont(frs[1], fin=False)), sleep(0.02),
    chop(ping(b"pongme 1!"), 1, 0.002),
    expect_items(1, "pong 1 before the rest of the fragmented message is sent"),
    send(cont(frs[2], fin=False)), sleep(0.02), send(cont(frs[3], fin=False)), sleep(0.02),
    chop(ping(b"pongme 2!"), 1, 0.002), expect_items(2, "pong 2 before the last fragment is sent"),
    send(cont(frs[4]))],
   [("pong", b"pongme 1!"), ("pong", b"pongme 2!"), ("text", full)])
# extras (not Autobahn cases)
ok("5.21", "[extra] Binary message in 1-octet fragments (64 frames)",
   [send(binary(bytes([0]), fin=False), *[cont(bytes([i]), fin=(i == 63)) for i in range(1, 64)])],
   [("binary", bytes(range(64)))])
ok("5.22", "[extra] Text message whose fragments are 1 octet each, written in 1-octet chops",
   [chop(text(b"a", fin=False) + b"".join(cont(bytes([c]), fin=(i == 8)) for i, c in enumerate(b"bcdefghij")), 1)],
   [("text", b"abcdefghij")])
ok("5.23", "[extra] Text message in 3 fragments, empty first and last",
   [send(text(b"", fin=False), cont(b"middle", fin=False), cont(b""))], [("text", b"middle")])
fail("5.24", "[extra] Binary fragment (no FIN) followed by a binary frame instead of a continuation",
     [send(binary(b"\x01", fin=False), binary(b"\x02"))])
fail("5.25", "[extra] Fragmented text message interrupted by a close frame fragment (close with FIN=0)",
     [send(text(b"frag", fin=False), frame(CLOSE, close_payload(1000), fin=False))])

# =========================================================================== 6 UTF-8


def fragments_at_code_points(p):
    """Split a byte string into pieces that each start at a byte that is not a continuation
    byte (for valid UTF-8: one code point per piece)."""
    out = []
    for i, c in enumerate(p):
        if out and 0x80 <= c <= 0xBF:
            out[-1] += bytes([c])
        else:
            out.append(bytes([c]))
    return out or [b""]


def text_fragments(pieces):
    fs = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        fs.append(text(piece, fin=last) if i == 0 else cont(piece, fin=last))
    return fs


def utf8_case(id, desc, p, variants=True):
    """Whole message; with variants also '<id>.f' (one fragment per code point) and '<id>.c'
    (one frame written in 1-octet chops). Invalid payloads must be failed with 1007, fast: as
    soon as the octet that makes them invalid arrives, even mid-frame or mid-message."""
    err = utf8_error_index(p)
    valid = err is None
    assert valid == _py_valid(p), (id, p)
    shown = p.hex() if len(p) <= 24 else p[:24].hex() + "..."
    whole = "%s (%s, %d octets)" % (desc, shown, len(p))
    if valid:
        ok(id, "Valid UTF-8, echoed: " + whole, [send(text(p))], [("text", p)])
    else:
        fail(id, "Invalid UTF-8, fail with 1007, no echo: " + whole, [send(text(p))], codes=(1007,))
    if not variants:
        return
    pieces = fragments_at_code_points(p)
    fs = text_fragments(pieces)
    if valid:
        ok(id + ".f", "[variant] %s, one fragment per code point (%d frames)" % (desc, len(fs)),
           [send(*fs)], [("text", p)])
        ok(id + ".c", "[variant] %s, one frame written in 1-octet chops" % desc,
           [chop(text(p), 1, 0.001)], [("text", p)])
    else:
        # the fragment holding the first invalid octet, and everything after it
        steps = []
        if err < len(p):
            upto, acc = 0, 0
            for k, piece in enumerate(pieces):
                acc += len(piece)
                if acc > err:
                    upto = k
                    break
            steps = [send(*fs[:upto + 1])]
            if upto + 1 < len(fs):
                steps += [failpoint("the fragment holding invalid octet #%d" % err), send(*fs[upto + 1:])]
        else:
            steps = [send(*fs)]
        fail(id + ".f", "[variant] %s, one fragment per code point, fail fast after the fragment with "
             "the invalid octet" % desc, steps, codes=(1007,))
        data = text(p)
        hl = len(data) - len(p)
        cut = hl + min(err + 1, len(p))
        steps = [chop(data[:cut], 1, 0.001)]
        if cut < len(data):
            steps += [failpoint("invalid octet #%d (written alone)" % err), send(data[cut:])]
        fail(id + ".c", "[variant] %s, 1-octet chops, fail fast at the invalid octet" % desc, steps,
             codes=(1007,))


def _py_valid(p):
    try:
        p.decode("utf-8", "strict")
        return True
    except UnicodeDecodeError:
        return False


U = lambda s: s.encode("utf-8")
H = bytes.fromhex

# 6.1 empty payloads
ok("6.1.1", "Text message of length 0", [send(text(b""))], [("text", b"")])
ok("6.1.2", "Text message in 3 fragments, each of length 0",
   [send(text(b"", fin=False), cont(b"", fin=False), cont(b""))], [("text", b"")])
ok("6.1.3", "Text message in 3 fragments, first and last of length 0",
   [send(text(b"", fin=False), cont(b"middle frame payload", fin=False), cont(b""))],
   [("text", b"middle frame payload")])

# 6.2 valid UTF-8 in various fragmentations
hello = U("Hello-µ@ßöäüàá-UTF-8!!")
kosme = H("cebae1bdb9cf83cebcceb5")
ok("6.2.1", "Valid UTF-8 text message in one fragment", [send(text(hello))], [("text", hello)])
ok("6.2.2", "Valid UTF-8 text in fragments split at code points",
   [send(*text_fragments(fragments_at_code_points(hello)))], [("text", hello)])
ok("6.2.3", "Valid UTF-8 text in 1-octet fragments (frames end mid code point)",
   [send(*text_fragments([bytes([c]) for c in hello]))], [("text", hello)])
ok("6.2.4", "Valid UTF-8 'κόσμε' in 1-octet fragments",
   [send(*text_fragments([bytes([c]) for c in kosme]))], [("text", kosme)])

# 6.3 invalid UTF-8, whole and fragmented
bad = kosme + H("eda080") + b"edited"
fail("6.3.1", "Invalid UTF-8 text (κόσμε + surrogate U+D800 + 'edited') in one frame",
     [send(text(bad))], codes=(1007,))
bad_fs = text_fragments([bytes([c]) for c in bad])
bad_at = utf8_error_index(bad)          # the 0xA0 after 0xED
fail("6.3.2", "Same invalid text in 1-octet fragments: fail fast after the fragment with 0xA0",
     [send(*bad_fs[:bad_at + 1]), failpoint("fragment #%d (0xA0 after 0xED)" % (bad_at + 1)),
      send(*bad_fs[bad_at + 1:])], codes=(1007,))

# 6.4 fail fast on invalid UTF-8
k_ed = kosme + H("f4") + H("908080") + U("edited")
fail("6.4.1", "Fail fast: 3 fragments, first valid, second invalid (F4 90 80 80), third valid; "
     "the client must fail before the third is sent",
     [send(text(kosme, fin=False)), sleep(0.05), send(cont(H("f4908080"), fin=False)),
      failpoint("the fragment F4 90 80 80"), send(cont(b"edited"))], codes=(1007,))
fail("6.4.2", "Fail fast: one frame in 3 chops, the second holding the invalid octets "
     "(F4 90 80 80); fail before the third chop",
     [send(text(k_ed)[:2 + len(kosme)]), sleep(0.05), send(H("f4908080")),
      failpoint("chop F4 90 80 80"), send(b"edited")], codes=(1007,))
fail("6.4.3", "Fail fast: 3 fragments: 'κόσμε'+F4 (valid so far), then 90 80 80 (0x90 is "
     "invalid after F4), then the rest",
     [send(text(kosme + H("f4"), fin=False)), sleep(0.05), send(cont(H("908080"), fin=False)),
      failpoint("the fragment 90 80 80"), send(cont(b"edited"))], codes=(1007,))
fail("6.4.4", "Fail fast: one frame in 3 chops: header+'κόσμε'+F4, then 0x90 alone, then the rest",
     [send(text(k_ed)[:2 + len(kosme) + 1]), sleep(0.05), send(H("90")),
      failpoint("octet 0x90 after F4"), send(text(k_ed)[2 + len(kosme) + 2:])], codes=(1007,))

# 6.5 valid UTF-8 samples
samples = [("'κόσμε'", kosme),
           ("ASCII and Greek", U("Greek: κόσμε, ASCII: kosme")),
           ("CJK and Cyrillic", U("中文 日本語 한국어 Русский")),
           ("4-octet code points (emoji, U+1D11E)", U("\U0001F600\U0001D11E\U00010000")),
           ("mixed 1 to 4 octet code points", U("a\u00e9\u20ac\U0001F4A9z"))]
for i, (d, p) in enumerate(samples, 1):
    utf8_case("6.5.%d" % i, d, p)

# 6.6 'κόσμε' built octet by octet: every prefix, valid only at code point boundaries
for i in range(1, len(kosme) + 1):
    utf8_case("6.6.%d" % i, "'κόσμε' prefix of %d octets" % i, kosme[:i])

# 6.7 first possible sequence of each length
for i, (d, h) in enumerate([("U+0000", "00"), ("U+0080", "c280"), ("U+0800", "e0a080"),
                            ("U+10000", "f0908080")], 1):
    utf8_case("6.7.%d" % i, "First possible sequence of its length, " + d, H(h))
# 6.8 first possible 5- and 6-octet sequences (not UTF-8)
utf8_case("6.8.1", "First possible 5-octet sequence (obsolete form)", H("f888808080"))
utf8_case("6.8.2", "First possible 6-octet sequence (obsolete form)", H("fc8480808080"))
# 6.9 last possible sequence of each length that is valid
for i, (d, h) in enumerate([("U+007F", "7f"), ("U+07FF", "dfbf"), ("U+FFFF", "efbfbf"),
                            ("U+10FFFF", "f48fbfbf")], 1):
    utf8_case("6.9.%d" % i, "Last possible valid sequence of its length, " + d, H(h))
# 6.10 last possible sequences of 4/5/6 octets (beyond U+10FFFF)
utf8_case("6.10.1", "Last possible 4-octet sequence, U+1FFFFF (beyond U+10FFFF)", H("f7bfbfbf"))
utf8_case("6.10.2", "Last possible 5-octet sequence", H("fbbfbfbfbf"))
utf8_case("6.10.3", "Last possible 6-octet sequence", H("fdbfbfbfbfbf"))
# 6.11 other boundary conditions
for i, (d, h) in enumerate([("U+D7FF (last before surrogates)", "ed9fbf"),
                            ("U+E000 (first after surrogates)", "ee8080"),
                            ("U+FFFD", "efbfbd"),
                            ("U+10FFFF", "f48fbfbf"),
                            ("U+110000 (first beyond Unicode)", "f4908080")], 1):
    utf8_case("6.11.%d" % i, "Boundary " + d, H(h))
# 6.12 unexpected continuation octets
for i, (d, p) in enumerate([("first continuation octet 0x80", H("80")),
                            ("last continuation octet 0xBF", H("bf")),
                            ("2 continuation octets", H("80bf")),
                            ("3 continuation octets", H("80bf80")),
                            ("4 continuation octets", H("80bf80bf")),
                            ("5 continuation octets", H("80bf80bf80")),
                            ("6 continuation octets", H("80bf80bf80bf")),
                            ("all 64 continuation octets 0x80-0xBF", bytes(range(0x80, 0xC0)))], 1):
    utf8_case("6.12.%d" % i, "Unexpected " + d, p)
# 6.13 lonely start octets, each followed by a space
for i, (d, lo, hi) in enumerate([("2-octet start octets C0-DF", 0xC0, 0xDF),
                                 ("3-octet start octets E0-EF", 0xE0, 0xEF),
                                 ("4-octet start octets F0-F7", 0xF0, 0xF7),
                                 ("5-octet start octets F8-FB", 0xF8, 0xFB),
                                 ("6-octet start octets FC-FD", 0xFC, 0xFD)], 1):
    utf8_case("6.13.%d" % i, "Lonely %s, each followed by a space" % d,
              b"".join(bytes([c, 0x20]) for c in range(lo, hi + 1)))
# 6.14 sequences with the last continuation octet missing
missing = [("2-octet U+0000 (overlong)", "c0"), ("3-octet U+0000", "e080"),
           ("4-octet U+0000", "f08080"), ("5-octet U+0000", "f8808080"),
           ("6-octet U+0000", "fc80808080"), ("2-octet U+07FF", "df"), ("3-octet U+FFFF", "efbf"),
           ("4-octet U+1FFFFF", "f7bfbf"), ("5-octet U+3FFFFFF", "fbbfbfbf"),
           ("6-octet U+7FFFFFFF", "fdbfbfbfbf")]
for i, (d, h) in enumerate(missing, 1):
    utf8_case("6.14.%d" % i, "Last continuation octet missing: " + d, H(h))
# 6.15 concatenation of the incomplete sequences
utf8_case("6.15.1", "Concatenation of the 10 incomplete sequences of 6.14",
          b"".join(H(h) for _, h in missing))
# 6.16 impossible octets
utf8_case("6.16.1", "Impossible octet 0xFE", H("fe"))
utf8_case("6.16.2", "Impossible octet 0xFF", H("ff"))
utf8_case("6.16.3", "Impossible octets FE FE FF FF", H("fefeffff"))
# 6.17 overlong '/'
for i, h in enumerate(["c0af", "e080af", "f08080af", "f8808080af", "fc80808080af"], 1):
    utf8_case("6.17.%d" % i, "Overlong U+002F in %d octets" % (i + 1), H(h))
# 6.18 maximum overlong sequences
for i, (d, h) in enumerate([("U+007F in 2 octets", "c1bf"), ("U+07FF in 3 octets", "e09fbf"),
                            ("U+FFFF in 4 octets", "f08fbfbf"),
                            ("U+1FFFFF in 5 octets", "f887bfbfbf"),
                            ("U+3FFFFFF in 6 octets", "fc83bfbfbfbf")], 1):
    utf8_case("6.18.%d" % i, "Maximum overlong sequence, " + d, H(h))
# 6.19 overlong NUL
for i, h in enumerate(["c080", "e08080", "f0808080", "f880808080", "fc8080808080"], 1):
    utf8_case("6.19.%d" % i, "Overlong U+0000 in %d octets" % (i + 1), H(h))
# 6.20 single UTF-16 surrogates
for i, (cp, h) in enumerate([("D800", "eda080"), ("DB7F", "edadbf"), ("DB80", "edae80"),
                             ("DBFF", "edafbf"), ("DC00", "edb080"), ("DF80", "edbe80"),
                             ("DFFF", "edbfbf")], 1):
    utf8_case("6.20.%d" % i, "Single surrogate U+" + cp, H(h))
# 6.21 paired UTF-16 surrogates
pairs = [("D800", "eda080", "DC00", "edb080"), ("D800", "eda080", "DFFF", "edbfbf"),
         ("DB7F", "edadbf", "DC00", "edb080"), ("DB7F", "edadbf", "DFFF", "edbfbf"),
         ("DB80", "edae80", "DC00", "edb080"), ("DB80", "edae80", "DFFF", "edbfbf"),
         ("DBFF", "edafbf", "DC00", "edb080"), ("DBFF", "edafbf", "DFFF", "edbfbf")]
for i, (a, ha, c, hc) in enumerate(pairs, 1):
    utf8_case("6.21.%d" % i, "Surrogate pair U+%s U+%s encoded as two 3-octet sequences" % (a, c),
              H(ha + hc))
# 6.22 noncharacters are valid UTF-8 and must be echoed
nonchars = [0xFFFE, 0xFFFF] + [cp for plane in range(1, 17)
                               for cp in (plane * 0x10000 + 0xFFFE, plane * 0x10000 + 0xFFFF)]
for i, cp in enumerate(nonchars, 1):
    utf8_case("6.22.%d" % i, "Noncharacter U+%04X (valid UTF-8)" % cp, chr(cp).encode("utf-8"),
              variants=False)
# 6.23 other valid special code points
special = [("U+FEFF byte order mark", "\ufeff"), ("U+FFFD replacement character", "\ufffd"),
           ("U+FFFD repeated", "\ufffd" * 3), ("U+0000 in the middle of text", "a\x00b"),
           ("U+0085 next line", "\x85"), ("U+2028 line separator, U+2029 paragraph separator",
                                          "\u2028\u2029"), ("U+E000 private use", "\ue000")]
for i, (d, s) in enumerate(special, 1):
    utf8_case("6.23.%d" % i, d, U(s), variants=(i <= 2))

# =========================================================================== 7 closing

ok("7.1.1", "Text message, then (once echoed) close 1000: echo, then close reply 1000",
   [send(text(b"Hello World!")), wait_items(1), server_close(1000)], [("text", b"Hello World!")])
ok("7.1.2", "Close 1000 twice: the client answers once, then sends nothing more",
   [server_close(1000, then=frame(CLOSE, close_payload(1000)))])
ok("7.1.3", "Close 1000, then a ping: no pong after the close",
   [server_close(1000, then=ping(b"Hello World!"))])
ok("7.1.4", "Close 1000, then a text message: no echo after the close",
   [server_close(1000, then=text(b"Hello World!"))])
ok("7.1.5", "Text fragment, close 1000, then the last fragment: nothing echoed",
   [send(text(b"fragment1", fin=False)), server_close(1000, then=cont(b"fragment2"))])
big = b"BAsd7&jh23" * 26214 + b"BAsd"
ok("7.1.6", "256 KiB text message, close 1000, then ping: the echo may or may not go out "
   "before the close reply (implementation-defined), but whole if at all; no pong",
   [send(text(big)), server_close(1000, then=ping(b"Hello World!"))], [("text", big)], alt=[[]])
ok("7.1.7", "[extra] Text message and close 1000 in one write: echoing before the close reply is "
   "allowed, not required (RFC 6455 5.5.1); either way a clean close 1000",
   [send(text(b"Hello World!")), server_close(1000)], [("text", b"Hello World!")], alt=[[]])
ok("7.3.1", "Close with an empty payload: reply with an empty close or 1000", [server_close()],
   codes=(None, 1000))
fail("7.3.2", "Close with a 1-octet payload: 1002", [server_close(payload=b"\x2a")])
ok("7.3.3", "Close 1000 without reason", [server_close(1000)])
ok("7.3.4", "Close 1000 with a reason", [server_close(1000, b"Hello World!")])
ok("7.3.5", "Close 1000 with a reason of 123 octets (payload 125)", [server_close(1000, b"*" * 123)])
fail("7.3.6", "Close 1000 with a reason of 124 octets (payload 126, control frame too long): 1002",
     [server_close(1000, b"*" * 124)])
fail("7.5.1", "Close 1000 with a reason that is not UTF-8: 1007",
     [server_close(1000, kosme + H("eda080") + b"edited")], codes=(1007,))
for i, code in enumerate([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000,
                          4999], 1):
    ok("7.7.%d" % i, "Close with valid code %d: the reply carries the same code" % code,
       [server_close(code)], codes=(code,))
for i, code in enumerate([0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999], 1):
    fail("7.9.%d" % i, "Close with invalid code %d: 1002" % code, [server_close(code)])
# 1012-1014 were registered with IANA after RFC 6455 (service restart, try again later, bad
# gateway) and real servers send them when they restart; Autobahn does not test them.
# moonwire accepts them and replies with the same code; 1015 is never sent on the wire: 1002.
for i, code in enumerate([1012, 1013, 1014], 10):
    ok("7.9.%d" % i, "[extra] Close with IANA-registered code %d: the reply carries the same code" % code,
       [server_close(code)], codes=(code,))
fail("7.9.13", "[extra] Close with reserved code 1015 (never sent on the wire): 1002",
     [server_close(1015)])
fail("7.13.1", "Close with code 5000 (beyond the registered ranges): 1002", [server_close(5000)])
fail("7.13.2", "Close with code 65535: 1002", [server_close(65535)])
# extras (not Autobahn cases)
ok("7.13.3", "[extra] Close 1000 with reason written in 1-octet chops",
   [server_close(1000, b"bye", chop_size=1)])
ok("7.13.4", "[extra] Ping, then close 1000 in the same write: pong, then close reply",
   [send(ping(b"p")), server_close(1000)], [("pong", b"p")])
ok("7.13.5", "[extra] Close 1001 with a multi-octet UTF-8 reason", [server_close(1001, U("κόσμε"))],
   codes=(1001,))
fail("7.13.6", "[extra] Close whose reason is truncated mid code point (CE only): 1007",
     [server_close(1000, H("ce"))], codes=(1007,))

# =========================================================================== 9 limits

KB, MB = 1024, 1024 * 1024
big_sizes = [64 * KB, 256 * KB, 1 * MB, 4 * MB, 8 * MB, 16 * MB]


def payload_of(n, kind):
    if kind == "text":
        unit = b"*" * 64 + kosme + b"-" * 53    # 128 octets of valid UTF-8
        assert len(unit) == 128
        return unit * (n // 128) + b"*" * (n % 128)
    return bytes(range(256)) * (n // 256) + bytes(n % 256)


def big_case(id, desc, p, kind, make_steps, timeout=20):
    ok(id, desc, make_steps(p), [(kind, p)], timeout=timeout, items_wait=15.0)


for sec, kind, mk in (("9.1", "text", text), ("9.2", "binary", binary)):
    for i, n in enumerate(big_sizes, 1):
        p = payload_of(n, kind)
        big_case("%s.%d" % (sec, i), "%s message of %d KiB in one frame" % (kind.capitalize(), n // KB),
                 p, kind, lambda p, mk=mk: [lambda r: r.send(mk(p))])


def frag_steps(p, size, first):
    def step(r):
        n = len(p)
        parts = []
        for off in range(0, n, size):
            last = off + size >= n
            parts.append(frame(first if off == 0 else CONT, p[off:off + size], fin=last))
        r.send(b"".join(parts))
    return [step]


frag_sizes = [64, 256, 1 * KB, 4 * KB, 16 * KB, 64 * KB, 256 * KB, 1 * MB, 4 * MB]
for sec, kind, op in (("9.3", "text", TEXT), ("9.4", "binary", BINARY)):
    p = payload_of(4 * MB, kind)
    for i, fs in enumerate(frag_sizes, 1):
        big_case("%s.%d" % (sec, i), "%s message of 4 MiB in fragments of %d octets"
                 % (kind.capitalize(), fs), p, kind, lambda p, fs=fs, op=op: frag_steps(p, fs, op))

chop_sizes = [64, 128, 256, 512, 1024, 2048]
for sec, kind, mk in (("9.5", "text", text), ("9.6", "binary", binary)):
    p = payload_of(1 * MB, kind)
    for i, cs in enumerate(chop_sizes, 1):
        big_case("%s.%d" % (sec, i), "%s message of 1 MiB in one frame written in chops of %d octets"
                 % (kind.capitalize(), cs), p, kind, lambda p, cs=cs, mk=mk: [lambda r: r.chop(mk(p), cs)])


def round_trips(kind, size, count):
    mk = text if kind == "text" else binary
    msgs = [payload_of(size, kind)[:size] for _ in range(count)]

    def step(r):
        for i, m in enumerate(msgs):
            if not r.send(mk(m)) or not r.wait_items(i + 1, 5.0):
                return
            if r.rec.gone():
                return
    return [step], [(kind, m) for m in msgs]


for sec, kind in (("9.7", "text"), ("9.8", "binary")):
    for i, size in enumerate([0, 16, 64, 256, 1024, 4096], 1):
        steps, exp = round_trips(kind, size, 1000)
        ok("%s.%d" % (sec, i), "1000 %s messages of %d octets, each sent after the previous echo"
           % (kind, size), steps, exp, timeout=20)

# 9.9: maxPackageSize (not Autobahn cases; the echo script sets maxPackageSize = 64 MiB)
fail("9.9.1", "[extra] Text frame announcing 64 MiB + 1 octets (over maxPackageSize), header and "
     "1 KiB of payload: 1009 before the rest arrives",
     [send(text(b"", length=64 * MB + 1) + b"*" * 1024)], codes=(1009,))
fail("9.9.2", "[extra] Binary message whose fragments add up to more than 64 MiB: 1009 at the latest "
     "when the fragment that crosses the limit arrives",
     [lambda r: r.send(binary(b"\x00" * (32 * MB), fin=False)),
      lambda r: r.send(cont(b"\x00" * (32 * MB), fin=False)),
      send(frame(CONT, b"", fin=False, length=1 * MB)), send(b"\x00" * 1024),
      failpoint("the header of the fragment that crosses 64 MiB")], codes=(1009,), timeout=20)

# =========================================================================== 10 misc

p = payload_of(64 * KB, "text")
ok("10.1.1", "Text message of 64 KiB sent in fragments of 1300 octets, echoed whole",
   frag_steps(p, 1300, TEXT), [("text", p)])
p = payload_of(16 * MB, "binary")
ok("10.1.2", "[extra] Binary message of 16 MiB in fragments of 65535 octets, echoed whole",
   frag_steps(p, 65535, BINARY), [("binary", p)], timeout=20, items_wait=15.0)

# =========================================================================== 12, 13 compression

import cases_pmd  # noqa: E402,F401  (sections 12 and 13, permessage-deflate, add to CASES)

BY_ID = {c.id: c for c in CASES}
assert len(BY_ID) == len(CASES), "duplicate case ids"
