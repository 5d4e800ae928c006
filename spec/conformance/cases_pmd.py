"""Sections 12 and 13: permessage-deflate (RFC 7692), written from the RFC. Loaded by cases.py,
whose CASES they extend.

The client offers `permessage-deflate; client_max_window_bits`; each case's server answers with
its own parameters (pmd.Deflate): RFC 7692 lets a server add server_max_window_bits,
server_no_context_takeover and client_no_context_takeover unsolicited, and name
client_max_window_bits=N because the client offered it without a value. The server compresses
its messages with what it announced (RSV1 on the first frame only); it decodes the client's
strictly (server.assemble, pmd.Decompressor): RSV1 only on the first frame of a data message,
inflated with the agreed client window, a fresh stream per message under
client_no_context_takeover; the echoed bytes must equal what was sent.

12 (payloads, the default answer `permessage-deflate`: both sides keep their context, windows 15)
  12.1-12.5  batches of messages of 16 octets to 256 KiB: repetitive text, repetitive binary,
             JSON-like text, random binary, random UTF-8 text
  12.6       fragmented compressed messages, split writes
  12.7       1000 messages in a row
  12.8       uncompressed server messages (RSV1 clear) on a compressed connection
  12.9       [extra] RSV1 misuse and broken streams from the server: the client must fail
13 (parameters)
  13.1       every client window x server window, 8..15 (probe messages: a larger window than
             agreed makes the case fail)
  13.2       context takeover on/off in each direction (a client that keeps its context under
             client_no_context_takeover makes the case fail)
  13.3.s.i   4 parameter sets x 8 message sizes
  13.4       no extension agreed (no RSV1 from the client); answers spelled another way
"""

import random

import cases as C
from pmd import Deflate
from server import BINARY, TEXT

KB = 1024
SIZES = [16, 64, 256, 1 * KB, 4 * KB, 16 * KB, 64 * KB, 256 * KB]
KIND = {TEXT: "text", BINARY: "binary"}


# --------------------------------------------------------------------------- payloads

def fit(data, n):
    """Exactly n octets of valid UTF-8 (data is): cut at a code point boundary, pad with spaces."""
    cut = min(n, len(data))
    while 0 < cut < len(data) and 0x80 <= data[cut] <= 0xBF:
        cut -= 1
    return data[:cut] + b" " * (n - cut)


def rep_text(n, seed=0):
    unit = ("lorem ipsum dolor sit amet %d, consectetur adipiscing elit. " % seed).encode()
    return fit(unit * (n // len(unit) + 1), n)


def rep_binary(n, seed=0):
    k = seed % 256
    return (bytes(range(256)) * (n // 256 + 2))[k:k + n]


def random_binary(n, seed=0):
    return random.Random(seed).randbytes(n)


CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 äöüßéκόσμε日本語€𝄞😀"


def random_text(n, seed=0):
    rng = random.Random(seed)
    s = "".join(rng.choice(CHARS) for _ in range(n // 2 + 4))
    while len(s.encode()) < n:
        s += "".join(rng.choice(CHARS) for _ in range(n // 4 + 4))
    return fit(s.encode(), n)


NAMES = ["alice", "bob", "κόσμε", "zoë", "日本", "carol", "dave", "émile", "frank"]


def json_text(n, seed=0):
    rng = random.Random(seed)
    parts, size = [], 1
    while size < n:
        rec = '{"id":%d,"name":"%s","score":%.3f,"tags":["t%d","t%d"],"active":%s}' % (
            rng.randrange(100000), rng.choice(NAMES), rng.random() * 1000, rng.randrange(50),
            rng.randrange(50), rng.choice(["true", "false"]))
        parts.append(rec)
        size += len(rec.encode()) + 1
    return fit(("[" + ",".join(parts) + "]").encode(), n)


# --------------------------------------------------------------------------- steps

def msgs(items, frag=None, chop_size=None, after_echo=False):
    """Send data messages: items are (opcode, payload) or (opcode, payload, compress); each is
    compressed when the connection has the extension and compress is not False. All in one
    write (or written in chops of chop_size octets), or each after the previous echo."""
    def step(r):
        def one(it):
            return r.message(it[0], it[1], it[2] if len(it) > 2 else r.compressor is not None, frag)
        if after_echo:
            for i, it in enumerate(items):
                if not r.send(one(it)) or not r.wait_items(i + 1, 5.0) or r.rec.gone():
                    return
            return
        data = b"".join(one(it) for it in items)
        if chop_size:
            r.chop(data, chop_size)
        else:
            r.send(data)
    return step


def echoes(items):
    return [(KIND[it[0]], it[1]) for it in items]


def pmd_ok(id, desc, items, pmd, steps=None, **kw):
    kw.setdefault("timeout", 10)
    C.ok(id, desc, steps or [msgs(items)], echoes(items), pmd=pmd, **kw)


def batch(n):
    """How many messages of n octets a case sends: 20 small ones, 2 of 256 KiB."""
    return max(2, min(20, 256 * KB // n))


def size_name(n):
    return "%d KiB" % (n // KB) if n >= KB else "%d octets" % n


# =========================================================================== 12 payloads

for sec, what, op, gen in (("12.1", "repetitive text", TEXT, rep_text),
                           ("12.2", "repetitive binary", BINARY, rep_binary),
                           ("12.3", "JSON-like text", TEXT, json_text),
                           ("12.4", "random (incompressible) binary", BINARY, random_binary),
                           ("12.5", "random UTF-8 text", TEXT, random_text)):
    for i, n in enumerate(SIZES, 1):
        items = [(op, gen(n, seed)) for seed in range(batch(n))]
        pmd_ok("%s.%d" % (sec, i), "Compressed %s: %d messages of %s in one write, context takeover "
               "both ways" % (what, len(items), size_name(n)), items, Deflate())

# 12.6 fragmented compressed messages: RSV1 on the first frame only
D = Deflate()
for i, (n, fs) in enumerate([(16 * KB, 1), (128 * KB, 64), (128 * KB, 1000), (128 * KB, 4096),
                             (128 * KB, 65536)], 1):
    items = [(TEXT, json_text(n, 60 + i))]
    pmd_ok("12.6.%d" % i, "Compressed JSON-like text of %s, the compressed stream in fragments of %d "
           "octets" % (size_name(n), fs), items, D, [msgs(items, frag=fs)])
items = [(BINARY, random_binary(64 * KB, 66))]
pmd_ok("12.6.6", "Compressed random binary of 64 KiB in fragments of 1000 octets", items, D,
       [msgs(items, frag=1000)])
p = rep_text(4 * KB, 67)


def empty_ends(r, p=p):
    z = r.compressor.message(p)
    r.send(C.text(b"", fin=False, rsv=4) + C.cont(z[:10], fin=False) + C.cont(z[10:], fin=False) +
           C.cont(b""))


pmd_ok("12.6.7", "Compressed text of 4 KiB in 4 fragments, the first (with RSV1) and the last empty",
       [(TEXT, p)], D, [empty_ends])
items = [(TEXT, json_text(32 * KB, 68))]
pmd_ok("12.6.8", "Compressed JSON-like text of 32 KiB in fragments of 1000 octets, written in chops "
       "of 7 octets", items, D, [msgs(items, frag=1000, chop_size=7)])
items = [(TEXT, rep_text(300, 69))]
pmd_ok("12.6.9", "Compressed text of 300 octets in one frame written in 1-octet chops", items, D,
       [msgs(items, chop_size=1)])
p = json_text(8 * KB, 70)


def ping_between(r, p=p):
    z = r.compressor.message(p)
    h = len(z) // 2
    r.send(C.text(z[:h], fin=False, rsv=4) + C.ping(b"inside") + C.cont(z[h:]))


C.ok("12.6.10", "Compressed text of 8 KiB in 2 fragments with a ping between them: pong first",
     [ping_between], [("pong", b"inside"), ("text", p)], pmd=D)
items = [(TEXT, json_text(2 * KB, 71)), (BINARY, rep_binary(3 * KB, 72)), (TEXT, json_text(2 * KB, 73))]
pmd_ok("12.6.11", "Three compressed messages in a row, each in fragments of 100 octets (context "
       "carried across them)", items, D, [msgs(items, frag=100)])

# 12.7 many messages in a row
items = [(TEXT, json_text(64 + (i * 37) % 200, 1000 + i)) for i in range(1000)]
pmd_ok("12.7.1", "1000 compressed JSON-like text messages of 64-263 octets in one write, context "
       "takeover", items, D, timeout=20)
items = [(TEXT, json_text(64, 3000 + i)) for i in range(1000)]
pmd_ok("12.7.2", "1000 compressed JSON-like text messages of 64 octets, each sent after the previous "
       "echo", items, D, [msgs(items, after_echo=True)], timeout=20)
items = [((TEXT, rep_text(256, i)) if i % 2 else (BINARY, rep_binary(256, i))) for i in range(1000)]
pmd_ok("12.7.3", "1000 compressed messages of 256 octets, text and binary alternating, in one write",
       items, D, timeout=20)
items = [(TEXT, json_text(128, 5000 + i)) for i in range(1000)]
pmd_ok("12.7.4", "1000 compressed JSON-like text messages of 128 octets in one write, no context "
       "takeover either way", items, Deflate(server_nct=True, client_nct=True), timeout=20)

# 12.8 uncompressed server messages on a compressed connection (RFC 7692 6: RSV1 clear)
items = [(TEXT, rep_text(4 * KB, 80), False)]
pmd_ok("12.8.1", "Uncompressed text of 4 KiB (RSV1 clear) on a compressed connection", items, D)
items = [(TEXT, json_text(1 * KB, 81 + i), i % 2 == 0) for i in range(20)]
pmd_ok("12.8.2", "20 JSON-like text messages of 1 KiB, compressed and uncompressed alternating "
       "(the context carries over the uncompressed ones)", items, D)
items = [(TEXT, rep_text(3 * KB, 82), False), (TEXT, rep_text(3 * KB, 82))]
pmd_ok("12.8.3", "Uncompressed text of 3 KiB in fragments of 1000 octets, then the same text "
       "compressed, also fragmented", items, D, [msgs(items, frag=1000)])
items = [(BINARY, rep_binary(256 * KB, 83), False)]
pmd_ok("12.8.4", "Uncompressed binary of 256 KiB on a compressed connection", items, D)
items = [(TEXT, b""), (TEXT, b"", False), (BINARY, b""), (BINARY, b"", False), (TEXT, b"end")]
pmd_ok("12.8.5", "Empty messages, compressed and uncompressed, text and binary", items, D)

# =========================================================================== 13 parameters


def probe_distance(bits):
    """How far back the probe repeats its content: beyond the window and the decoder's slack
    (pmd.OUTPUT_STEP), and within reach of a zlib compressor with a window one bit larger, whose
    longest distance is 2^(bits+1) - 262 (zlib's MAX_DIST). For 8 bits that reach is 250, inside
    the window: a 9-bit zlib stream is a valid 8-bit one, so 8 uses 1.5 windows (for a client
    with a still larger window)."""
    if bits == 15:
        return 20000
    return 3 * (1 << bits) // 2 if bits == 8 else 5 * (1 << bits) // 4


def probe(bits, seed):
    """Messages whose repeated content lies probe_distance() back: a client compressing with a
    larger window than `bits` refers to it, and the server's decoder (that window) fails; within
    the agreed window there is nothing to refer to. Then ordinary text."""
    n = probe_distance(bits)
    x, x2 = random_binary(n, seed), random_binary(n, seed + 1)
    return [(BINARY, x), (BINARY, x), (BINARY, x2 + x2), (TEXT, json_text(8 * KB, seed + 2)),
            (TEXT, rep_text(20 * KB, seed + 3))]


k = 0
for cb in range(8, 16):
    for sb in range(8, 16):
        k += 1
        d = Deflate(client_bits=cb, server_bits=sb)
        pmd_ok("13.1.%d" % k, "client_max_window_bits=%d, server_max_window_bits=%d: probe messages "
               "(random content repeated %d octets back), JSON-like and repetitive text"
               % (cb, sb, probe_distance(cb)),
               probe(cb, 100 * k), d, need_compressed=cb >= 9)


def context_probe(seed):
    """Messages that each repeat the previous one: under client_no_context_takeover a client that
    kept its context refers back into the previous message, and the server's fresh decoder
    fails."""
    r = random_binary(200, seed)
    out = []
    for i in range(6):
        out.append((BINARY, r + bytes([i])))
        out.append((TEXT, json_text(299, seed) + str(i).encode()))
    return out


k = 0
for sb, cb in ((15, 15), (9, 9), (13, 11)):
    for snct, cnct in ((False, False), (True, False), (False, True), (True, True)):
        k += 1
        d = Deflate(client_bits=cb, server_bits=sb, server_nct=snct, client_nct=cnct)
        pmd_ok("13.2.%d" % k, "Context takeover: server %s, client %s (windows %d/%d): 12 messages, "
               "each repeating the previous one" % ("off" if snct else "on", "off" if cnct else "on",
                                                    sb, cb), context_probe(200 + k), d,
               need_compressed=True)

SETS = [("the default answer", Deflate()),
        ("no context takeover either way", Deflate(server_nct=True, client_nct=True)),
        ("windows of 9 bits both ways", Deflate(client_bits=9, server_bits=9)),
        ("windows of 9 bits and no context takeover both ways",
         Deflate(client_bits=9, server_bits=9, server_nct=True, client_nct=True))]
for s, (what, d) in enumerate(SETS, 1):
    for i, n in enumerate(SIZES, 1):
        items = [(TEXT, json_text(n, 7000 + 100 * s + 10 * i + j)) for j in range(batch(n))]
        pmd_ok("13.3.%d.%d" % (s, i), "%s: %d JSON-like text messages of %s in one write"
               % (what.capitalize(), len(items), size_name(n)), items, d)

# 13.4 the server declines the offer: the client must not set RSV1
items = [(TEXT, rep_text(64 * KB, 90), False), (BINARY, rep_binary(64 * KB, 91), False)]
C.ok("13.4.1", "The server answers no extension: repetitive text and binary of 64 KiB are echoed "
     "uncompressed (RSV1 clear)", [msgs(items)], echoes(items))

# 12.9 [extra] RSV1 misuse and broken streams from the server: the client must fail (RFC 7692 6,
# 6.2; RFC 6455 5.2). Decompression failure has no code of its own: 1002 or 1007.
hw = b"Hello, compressed world! Hello, compressed world!"


def then(*make):
    """A compressed message, its echo awaited, then the frames built by make(r) in one write."""
    def step(r):
        if r.send(r.message(TEXT, hw)) and r.wait_items(1):
            r.send(b"".join(m(r) for m in make))
    return step


C.fail("12.9.1", "[extra] Compressed text, then a ping with RSV1: echo the text, then fail",
       [then(lambda r: C.ping(b"p", rsv=4))], [("text", hw)], pmd=D)
C.fail("12.9.2", "[extra] Compressed text, then a compressed message whose continuation frame also "
       "has RSV1: fail", [then(lambda r: C.text(r.compressor.message(hw)[:5], fin=False, rsv=4),
                               lambda r: C.cont(b"\x00", rsv=4))], [("text", hw)], pmd=D)
C.fail("12.9.3", "[extra] Uncompressed text fragment, then a continuation with RSV1: fail",
       [then(lambda r: C.text(b"abc", fin=False), lambda r: C.cont(b"def", rsv=4))], [("text", hw)],
       pmd=D)
C.fail("12.9.4", "[extra] Compressed text, then close 1000 with RSV1: fail with 1002 rather than a "
       "normal close reply", [then(lambda r: C.frame(C.CLOSE, C.close_payload(1000), rsv=4))],
       [("text", hw)], pmd=D)
C.fail("12.9.5", "[extra] Compressed text, then an RSV1 message that is no DEFLATE stream (block "
       "type 3, reserved): fail with 1002 or 1007",
       [then(lambda r: C.text(b"\xff\xff\xff\xff", rsv=4))], [("text", hw)], codes=(1002, 1007), pmd=D)
C.fail("12.9.6", "[extra] A compressed message whose first match reaches back before the start of "
       "the stream: fail with 1002 or 1007",
       [lambda r: r.send(C.text(bytes.fromhex("020200"), rsv=4))],
       codes=(1002, 1007), pmd=D)
C.fail("12.9.7", "[extra] Compressed text, then a compressed text message that inflates to invalid "
       "UTF-8 (κόσμε + U+D800): 1007, no echo of it",
       [then(lambda r: r.message(TEXT, C.H("cebae1bdb9cf83cebcceb5eda080") + b"edited"))],
       [("text", hw)], codes=(1007,), pmd=D)

# 13.4.2-3 the same parameters spelled another way (RFC 6455 9.1: a value may be a quoted-string;
# optional whitespace around ";" and "=")
for i, (spelled, d) in enumerate([
        ('permessage-deflate;client_max_window_bits="10";server_max_window_bits="12"', (10, 12)),
        ('permessage-deflate ;\tclient_max_window_bits = 11 ; client_no_context_takeover', (11, None))], 2):
    dd = Deflate(client_bits=d[0], server_bits=d[1], client_nct="no_context" in spelled, spelled=spelled)
    pmd_ok("13.4.%d" % i, "The answer %r: probe messages" % spelled, probe(d[0], 900 + i), dd,
           need_compressed=True)
