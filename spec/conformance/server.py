#!/usr/bin/python3
"""Raw-socket WebSocket (RFC 6455) test server for the moonwire client conformance suite.

Stdlib only. For every connection it reads the client's opening handshake, answers 101, then
plays the server side of the case named by the request path (/case/<id>), sending frames
exactly as the case says (well-formed or not), while a reader thread records every frame the
client sends back (unmasked, with mask/RSV/length checks) and when the client closed TCP.
When the script is done the server ends the connection the way the case expects (starting
the closing handshake itself, or waiting for the client to fail the connection), closes the
TCP connection, and hands the record to `evaluate()`, which turns it into a list of problems
(empty list: strict pass).

permessage-deflate (RFC 7692, sections 12 and 13): a case with `pmd` answers the client's offer
with those parameters (after checking the offer allows them), compresses what the case sends
through Runner.message, and `assemble()` inflates the client's RSV1 messages with the agreed
client window (pmd.Decompressor); without an agreed extension any RSV bit is a violation.

Standalone use (for poking at one client by hand):
    /usr/bin/python3 server.py --port 9001
    moonwire echo_client.lua ws://127.0.0.1:9001/case/6.4.1
prints the verdict of each case as connections come in.
"""

import base64
import hashlib
import os
import socket
import struct
import sys
import threading
import time

import pmd
from utf8 import utf8_error_index  # noqa: F401  (cases.py imports it from here)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
OPNAMES = {CONT: "continuation", TEXT: "text", BINARY: "binary", CLOSE: "close",
           PING: "ping", PONG: "pong"}

# Timing knobs (seconds). A correct client never makes the server wait for any of these:
# every wait ends as soon as the awaited event happens.
FAIL_WAIT = 2.0        # how long to wait for the client to fail the connection
REPLY_WAIT = 2.0       # how long to wait for the client's close reply
ITEMS_WAIT = 3.0       # how long to wait for the expected echoes/pongs before closing
FAILFAST_WAIT = 0.6    # how long a fail-fast checkpoint waits before sending the rest
TCP_GRACE = 0.05       # after the close handshake, window in which a client TCP close counts as "client first"
DRAIN_WAIT = 1.5       # after our FIN, how long to wait for the client's FIN


# --------------------------------------------------------------------------- frames

def apply_mask(data, key):
    """XOR data with the 4-byte key (RFC 6455 5.3). Linear time even for 16 MiB."""
    n = len(data)
    if n == 0:
        return b""
    k = (bytes(key) * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=None, length=None):
    """Build one frame as a server would send it (unmasked unless mask is given).
    `length` overrides the announced payload length (for malformed frames)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask is not None else 0
    hdr = bytearray([b0])
    if n < 126:
        hdr.append(mbit | n)
    elif n < 65536:
        hdr.append(mbit | 126)
        hdr += struct.pack("!H", n)
    else:
        hdr.append(mbit | 127)
        hdr += struct.pack("!Q", n)
    if mask is not None:
        hdr += bytes(mask)
        payload = apply_mask(payload, mask)
    return bytes(hdr) + payload


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


def close_frame(code=None, reason=b"", **kw):
    return frame(CLOSE, close_payload(code, reason), **kw)


def valid_close_code_to_send(code):
    """Codes an endpoint may put in a Close frame (RFC 6455 7.4.1/7.4.2 and the IANA registry):
    1000-1003, 1007-1014, and 3000-4999. 1004-1006 and 1015 must never be sent, the rest of
    0-2999 is unassigned, 5000+ does not exist. (moonwire's own rule for *received* codes is
    narrower, 1012-1014 excluded; the cases check that separately.)"""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# --------------------------------------------------------------------------- records

class Frame:
    __slots__ = ("t", "fin", "rsv", "opcode", "masked", "payload", "minimal", "length")

    def __init__(self, t, fin, rsv, opcode, masked, payload, minimal, length):
        self.t, self.fin, self.rsv, self.opcode = t, fin, rsv, opcode
        self.masked, self.payload, self.minimal, self.length = masked, payload, minimal, length


class Record:
    """Everything observed on one connection."""

    def __init__(self, case_id):
        self.case_id = case_id
        self.cond = threading.Condition()
        self.t0 = time.monotonic()
        self.request = b""
        self.handshake_errors = []
        self.frames = []            # Frame objects, in arrival order
        self.parse_errors = []      # unparseable client bytes
        self.eof_t = None           # client FIN (recv returned 0) or reset
        self.reset = False
        self.early_data = b""       # bytes sent by the client before our 101 response
        self.server_close_t = None  # when we sent our close frame
        self.server_close_first = False  # we sent close before the client did
        self.server_fin_t = None    # when we shut down our side of TCP
        self.client_close_t = None  # first client close frame
        self.failpoints = []        # (label, ok, waited)
        self.checks = []            # (label, ok): mid-case checks other than fail-fast
        self.chunks = []            # (t, label) of notable writes
        self.send_errors = []
        self.notes = []
        self.done = threading.Event()
        self.connections = 0
        self.pmd = None             # pmd.Deflate when permessage-deflate was agreed
        self.compressed = 0         # client messages that came compressed (RSV1), set by assemble()

    # -- used by the reader thread
    def add_frame(self, f):
        with self.cond:
            self.frames.append(f)
            if f.opcode == CLOSE and self.client_close_t is None:
                self.client_close_t = f.t
            self.cond.notify_all()

    def set_eof(self, reset=False):
        with self.cond:
            if self.eof_t is None:
                self.eof_t = time.monotonic()
                self.reset = reset
            self.cond.notify_all()

    # -- queries
    def gone(self):
        return self.client_close_t is not None or self.eof_t is not None

    def item_count(self):
        n = 0
        for f in self.frames:
            if f.opcode == CLOSE:
                break
            if f.fin and f.opcode in (TEXT, BINARY, CONT, PING, PONG):
                n += 1
        return n

    def wait_for(self, pred, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def rel(self, t):
        return None if t is None else t - self.t0


# --------------------------------------------------------------------------- per-connection runner

class Runner:
    """The handle a case script gets: send bytes, chop, sleep, checkpoints."""

    def __init__(self, sock, rec, case):
        self.sock, self.rec, self.case = sock, rec, case
        self.compressor = pmd.Compressor(rec.pmd) if rec.pmd else None

    def message(self, opcode, payload, compress=True, frag=None):
        """The frames of one data message: compressed with the connection's compressor (RSV1
        on the first frame only) unless compress is false, in fragments of `frag` octets."""
        data = self.compressor.message(payload) if compress else payload
        size = frag or max(1, len(data))
        pieces = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
        return b"".join(frame(opcode if i == 0 else CONT, p, fin=(i == len(pieces) - 1),
                              rsv=(4 if compress and i == 0 else 0)) for i, p in enumerate(pieces))

    def send(self, data, label=None):
        if self.rec.eof_t is not None:
            return False
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.rec.send_errors.append(repr(e))
            return False
        self.rec.chunks.append((time.monotonic(), label or "%d bytes" % len(data)))
        return True

    def chop(self, data, size, delay=0.0):
        for i in range(0, len(data), size):
            if not self.send(data[i:i + size]):
                return False
            if delay:
                time.sleep(delay)
        return True

    def sleep(self, s):
        time.sleep(s)

    def send_close(self, payload):
        if self.rec.server_close_t is None:
            self.rec.server_close_t = time.monotonic()
            self.rec.server_close_first = self.rec.client_close_t is None
        return self.send(frame(CLOSE, payload))

    def wait_items(self, n, timeout=ITEMS_WAIT):
        r = self.rec
        return r.wait_for(lambda: r.item_count() >= n or r.gone(), timeout)

    def expect_items(self, n, label, timeout=1.0):
        """The client must have sent n items (echoes/pongs) by now, at the latest `timeout`
        seconds from now."""
        ok = self.wait_items(n, timeout) and self.rec.item_count() >= n
        self.rec.checks.append((label, ok))
        return ok

    def failpoint(self, label, timeout=FAILFAST_WAIT):
        """The bytes just sent make the connection invalid: the client must fail it now,
        before we send anything more."""
        t = time.monotonic()
        self.rec.chunks.append((t, "nothing more: fail-fast checkpoint"))
        ok = self.rec.wait_for(self.rec.gone, timeout)
        self.rec.failpoints.append((label, ok, time.monotonic() - t))
        return ok


def _reader(sock, rec, initial):
    buf = bytearray(initial)
    pos = 0
    while True:
        # parse as many complete frames as the buffer holds
        while True:
            avail = len(buf) - pos
            if avail < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            ln = b1 & 0x7F
            hl = 2
            minimal = True
            if ln == 126:
                if avail < 4:
                    break
                ln = struct.unpack_from("!H", buf, pos + 2)[0]
                hl = 4
                minimal = ln >= 126
            elif ln == 127:
                if avail < 10:
                    break
                ln = struct.unpack_from("!Q", buf, pos + 2)[0]
                hl = 10
                minimal = ln >= 65536
                if ln >> 63 or ln > (1 << 31):
                    rec.parse_errors.append("client frame announces a %d-byte payload" % ln)
                    with rec.cond:
                        rec.cond.notify_all()
                    _drain_forever(sock, rec)
                    return
            masked = bool(b1 & 0x80)
            if masked:
                hl += 4
            if avail < hl + ln:
                break
            start = pos + hl
            payload = bytes(buf[start:start + ln])
            if masked:
                payload = apply_mask(payload, buf[start - 4:start])
            rec.add_frame(Frame(time.monotonic(), bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF,
                                masked, payload, minimal, ln))
            pos += hl + ln
        if pos:
            del buf[:pos]
            pos = 0
        try:
            data = sock.recv(1 << 18)
        except OSError:
            rec.set_eof(reset=True)
            return
        if not data:
            if buf:
                rec.parse_errors.append("client closed TCP in the middle of a frame (%d bytes pending)" % len(buf))
            rec.set_eof()
            return
        buf += data


def _drain_forever(sock, rec):
    try:
        while sock.recv(1 << 16):
            pass
        rec.set_eof()
    except OSError:
        rec.set_eof(reset=True)


def _read_request(sock, limit=16384, timeout=5.0):
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return None, b""
            data += chunk
            if len(data) > limit:
                return None, b""
    except OSError:
        return None, b""
    finally:
        sock.settimeout(None)
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def check_handshake(head, port):
    """Validate a client opening handshake (RFC 6455 4.1). Returns (path, key, errors)."""
    errors = []
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return None, None, ["request head is not ASCII"]
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None, None, ["malformed request line %r" % lines[0]]
    method, path, version = parts
    if method != "GET":
        errors.append("method is %r, not GET" % method)
    if version != "HTTP/1.1":
        errors.append("HTTP version is %r, not HTTP/1.1" % version)
    headers = {}
    for line in lines[1:]:
        if ":" not in line:
            errors.append("malformed header line %r" % line)
            continue
        name, _, value = line.partition(":")
        if name != name.strip() or not name:
            errors.append("malformed header name %r" % name)
        headers.setdefault(name.strip().lower(), []).append(value.strip())

    def one(name):
        v = headers.get(name)
        if not v:
            errors.append("missing %s header" % name)
            return None
        if len(v) > 1:
            errors.append("%s header given %d times" % (name, len(v)))
        return v[0]

    host = one("host")
    if host is not None and host.lower() != "127.0.0.1:%d" % port:
        errors.append("Host is %r, expected '127.0.0.1:%d'" % (host, port))
    up = one("upgrade")
    if up is not None and "websocket" not in [t.strip().lower() for t in up.split(",")]:
        errors.append("Upgrade is %r, must contain websocket" % up)
    conn = one("connection")
    if conn is not None and "upgrade" not in [t.strip().lower() for t in conn.split(",")]:
        errors.append("Connection is %r, must contain the Upgrade token" % conn)
    ver = one("sec-websocket-version")
    if ver is not None and ver != "13":
        errors.append("Sec-WebSocket-Version is %r, not 13" % ver)
    key = one("sec-websocket-key")
    if key is not None:
        try:
            raw = base64.b64decode(key.encode(), validate=True)
            if len(raw) != 16:
                errors.append("Sec-WebSocket-Key decodes to %d bytes, not 16" % len(raw))
        except Exception:
            errors.append("Sec-WebSocket-Key %r is not base64" % key)
    return path, key, errors


def accept_value(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


# --------------------------------------------------------------------------- evaluation

def describe_payload(p, kind=None):
    if kind == "text" or kind is None:
        try:
            s = p.decode("utf-8")
            if len(s) > 40:
                return "%d bytes %r..." % (len(p), s[:30])
            return repr(s)
        except UnicodeDecodeError:
            pass
    if len(p) > 24:
        return "%d bytes %s..." % (len(p), p[:16].hex())
    return "%d bytes %s" % (len(p), p.hex()) if p else "0 bytes"


def describe_item(item):
    kind, payload = item
    verb = {"text": "echo of text", "binary": "echo of binary", "pong": "pong",
            "ping": "ping", "partial": "partial (unfinished) message",
            "undecodable": "undecodable compressed message"}.get(kind, kind)
    return "%s %s" % (verb, describe_payload(payload, kind))


def describe_items(items):
    if not items:
        return "nothing"
    if len(items) > 6:
        kinds = {}
        for k, _ in items:
            kinds[k] = kinds.get(k, 0) + 1
        return "%d frames/messages (%s)" % (len(items), ", ".join("%d %s" % (v, k) for k, v in kinds.items()))
    return ", ".join(describe_item(i) for i in items)


def describe_codes(codes):
    return " or ".join("no code (empty close)" if c is None else str(c) for c in codes)


def assemble(rec):
    """Client frames -> (items before the client's close, close frame or None, frames after
    close, problems with the frames themselves)."""
    problems = []
    items = []
    close = None
    after = []
    msg_kind = None
    msg = []
    inflater = pmd.Decompressor(rec.pmd) if rec.pmd else None
    compressed = False
    rec.compressed = 0
    for i, f in enumerate(rec.frames):
        name = OPNAMES.get(f.opcode, "opcode %d" % f.opcode)
        if close is not None:
            after.append(f)
            continue
        if not f.masked:
            problems.append("client frame #%d (%s) is not masked" % (i + 1, name))
        if f.rsv and (inflater is None or f.rsv != 4):
            problems.append("client frame #%d (%s) has RSV bits %d" % (i + 1, name, f.rsv))
        elif f.rsv and f.opcode not in (TEXT, BINARY):
            problems.append("client frame #%d (%s) has RSV1 set: permessage-deflate allows it only on the "
                            "first frame of a data message (RFC 7692 6)" % (i + 1, name))
        if not f.minimal:
            problems.append("client frame #%d (%s) does not use the minimal length encoding" % (i + 1, name))
        if f.opcode >= 8:
            if f.opcode not in (CLOSE, PING, PONG):
                problems.append("client frame #%d uses reserved control opcode %d" % (i + 1, f.opcode))
                continue
            if not f.fin:
                problems.append("client control frame #%d (%s) is fragmented" % (i + 1, name))
            if f.length > 125:
                problems.append("client control frame #%d (%s) has %d-byte payload" % (i + 1, name, f.length))
            if f.opcode == CLOSE:
                close = f
            elif f.opcode == PONG:
                items.append(("pong", f.payload))
            else:
                items.append(("ping", f.payload))
            continue
        if f.opcode in (TEXT, BINARY):
            if msg_kind is not None:
                problems.append("client started a new %s message inside an unfinished fragmented message" % name)
            msg_kind = "text" if f.opcode == TEXT else "binary"
            msg = [f.payload]
            compressed = inflater is not None and f.rsv == 4
        elif f.opcode == CONT:
            if msg_kind is None:
                problems.append("client sent a continuation frame without a message to continue")
                continue
            msg.append(f.payload)
        else:
            problems.append("client frame #%d uses reserved data opcode %d" % (i + 1, f.opcode))
            continue
        if f.fin:
            data = b"".join(msg)
            if compressed:
                rec.compressed += 1
                try:
                    data = inflater.message(data)
                except pmd.zlib.error as e:
                    problems.append("client message #%d (compressed, %d octets) does not inflate with the "
                                    "agreed %d-bit window%s: %s" % (
                                        len(items) + 1, len(data), inflater.bits,
                                        " and no context takeover" if inflater.fresh else "", e))
                    items.append(("undecodable", data))
                    msg_kind, msg = None, []
                    continue
            if msg_kind == "text" and utf8_error_index(data) is not None:
                problems.append("client sent a text message that is not valid UTF-8")
            items.append((msg_kind, data))
            msg_kind, msg = None, []
    if msg_kind is not None:
        items.append(("partial", b"".join(msg)))
    return items, close, after, problems


def evaluate(case, rec, port=None):
    """Return a list of human-readable problems; empty means strict pass."""
    if rec is None or rec.connections == 0:
        return ["client never opened a WebSocket connection"]
    problems = []
    if rec.connections > 1:
        problems.append("client opened %d connections for one case" % rec.connections)
    if rec.handshake_errors:
        problems.extend("handshake: " + e for e in rec.handshake_errors)
        return problems
    if rec.early_data:
        problems.append("client sent %d bytes before the 101 response" % len(rec.early_data))
    problems.extend(rec.parse_errors)
    items, close, after, frame_problems = assemble(rec)
    problems.extend(frame_problems)

    # 1. what the client sent before its close: exact sequence, in order
    alts = [case.expect] + list(case.alt)
    if case.ordered:
        matched = items in alts
    else:   # pongs and echoes each in order, but their interleaving is up to the client
        split = lambda seq: ([i for i in seq if i[0] in ("pong", "ping")],
                             [i for i in seq if i[0] not in ("pong", "ping")])
        matched = split(items) in [split(a) for a in alts]
    if not matched:
        exp = " | or | ".join(describe_items(a) for a in alts)
        got = describe_items(items)
        if len(alts) == 1 and (len(items) > 6 or len(case.expect) > 6):
            k = next((j for j, (x, y) in enumerate(zip(items, case.expect)) if x != y),
                     min(len(items), len(case.expect)))
            got += " (first difference at #%d: expected %s, got %s)" % (
                k + 1, describe_item(case.expect[k]) if k < len(case.expect) else "nothing more",
                describe_item(items[k]) if k < len(items) else "nothing more")
        if case.end == "fail" and close is not None:
            problems.append("expected %s then close %s, got %s" % (exp, describe_codes(case.codes), got))
        else:
            problems.append("expected %s, got %s" % (exp, got))

    # 2. the close
    code = reason = None
    if close is not None:
        p = close.payload
        if len(p) == 1:
            problems.append("client close frame has a 1-byte payload")
        elif len(p) >= 2:
            code = struct.unpack("!H", p[:2])[0]
            reason = p[2:]
            if not valid_close_code_to_send(code):
                problems.append("client sent close code %d, which must not be sent" % code)
            if utf8_error_index(reason) is not None:
                problems.append("client close reason is not valid UTF-8")
    if case.end == "fail":
        dropped = rec.eof_t is not None and rec.server_fin_t is not None and rec.eof_t <= rec.server_fin_t
        if close is not None and rec.server_fin_t is not None and close.t > rec.server_fin_t:
            problems.append("client sent its close only after the server had closed TCP; expected it "
                            "to fail the connection (close %s) by itself" % describe_codes(case.codes))
        elif close is None:
            if not dropped:
                problems.append("expected the client to fail the connection (close %s), it did not"
                                % describe_codes(case.codes))
            elif not case.may_drop:
                problems.append("expected close %s, client dropped TCP without a close frame"
                                % describe_codes(case.codes))
        elif code not in case.codes:
            problems.append("expected close %s, got close %s" % (describe_codes(case.codes),
                                                                 "with no code" if code is None else code))
    else:
        if close is None:
            if rec.server_close_t is None:
                problems.append("server never got to send its close (client gone before the case ended)")
            if rec.eof_t is not None and (rec.server_fin_t is None or rec.eof_t < rec.server_fin_t):
                problems.append("expected close reply %s, client dropped TCP without a close frame"
                                % describe_codes(case.codes))
            else:
                problems.append("expected close reply %s, client sent no close frame"
                                % describe_codes(case.codes))
        else:
            if not rec.server_close_first:
                problems.append("client initiated the closing handshake (close %s); expected it to "
                                "wait for the server's close" % ("with no code" if code is None else code))
            if code not in case.codes:
                problems.append("expected close reply %s, got close %s"
                                % (describe_codes(case.codes), "with no code" if code is None else code))
            if case.tcp_first == "server" and rec.eof_t is not None and rec.server_fin_t is not None \
                    and rec.eof_t < rec.server_fin_t:
                problems.append("client closed TCP before the server did (RFC 6455 7.1.1: the server "
                                "closes the TCP connection first)")
    if case.need_compressed and rec.compressed == 0:
        problems.append("client sent no compressed message; this case tests its compressor (window or "
                        "context takeover), so it must compress at least one")
    if after:
        problems.append("client sent %d frame(s) after its close frame (%s)"
                        % (len(after), ", ".join(OPNAMES.get(f.opcode, str(f.opcode)) for f in after)))
    # 3. timing: fail fast, answers before the rest is sent
    for label, ok in rec.checks:
        if not ok:
            problems.append("too late: " + label)
    for label, ok, waited in rec.failpoints:
        if not ok:
            problems.append("not fail-fast: client had not failed the connection %.1fs after %s"
                            % (waited, label))
    return problems


def trace(rec):
    """One-line timeline of a connection, in ms since the handshake, for -v output."""
    ev = []
    for t, label in rec.chunks:
        ev.append((t, label if label.startswith("nothing") else "server wrote " + label))
    for f in rec.frames:
        d = OPNAMES.get(f.opcode, "op%d" % f.opcode)
        if f.opcode == CLOSE and len(f.payload) >= 2:
            d += " %d" % struct.unpack("!H", f.payload[:2])[0]
        elif f.opcode != CLOSE:
            d += "(%d)" % f.length
        ev.append((f.t, "client " + d))
    for t, what in ((rec.server_close_t, "server close"), (rec.server_fin_t, "server FIN"),
                    (rec.eof_t, "client FIN" if not rec.reset else "client RST")):
        if t is not None:
            ev.append((t, what))
    ev.sort(key=lambda e: e[0])
    if len(ev) > 40:
        ev = ev[:20] + [(ev[20][0], "...")] + ev[-19:]
    return ", ".join("%.0fms %s" % ((t - rec.t0) * 1000, w) for t, w in ev)


# --------------------------------------------------------------------------- server

class Server:
    def __init__(self, cases, host="127.0.0.1", port=0, on_done=None):
        self.cases = cases            # id -> Case
        self.records = {}             # id -> Record (registered by the harness)
        self.lock = threading.Lock()
        self.on_done = on_done
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.stopping = False

    def register(self, case_id):
        rec = Record(case_id)
        with self.lock:
            self.records[case_id] = rec
        return rec

    def start(self):
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        return self

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept_loop(self):
        while not self.stopping:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(s,), daemon=True).start()

    def _handle(self, s):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head, rest = _read_request(s)
        if head is None:
            s.close()
            return
        path, key, errors = check_handshake(head, self.port)
        offered = pmd.header_values(head, "sec-websocket-extensions")
        case_id = path[len("/case/"):] if path and path.startswith("/case/") else None
        case = self.cases.get(case_id)
        if case is None:
            s.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            s.close()
            return
        with self.lock:
            rec = self.records.get(case_id)
            if rec is None:                      # standalone mode: not registered by a harness
                rec = self.records[case_id] = Record(case_id)
            rec.connections += 1
            first = rec.connections == 1
        if not first:
            s.sendall(b"HTTP/1.1 409 Conflict\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            s.close()
            return
        rec.request = head
        rec.t0 = time.monotonic()
        why = case.pmd and pmd.offer_problem(offered, case.pmd)
        if why:
            errors.append(why)
        if errors:
            rec.handshake_errors = errors
            s.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            s.close()
            rec.done.set()
            if self.on_done:
                self.on_done(case, rec)
            return
        rec.early_data = rest
        rec.pmd = case.pmd
        ext = "Sec-WebSocket-Extensions: %s\r\n" % case.pmd.answer() if case.pmd else ""
        s.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: %s\r\n%s\r\n" % (accept_value(key), ext)).encode())
        reader = threading.Thread(target=_reader, args=(s, rec, b""), daemon=True)
        reader.start()
        try:
            self._play(s, rec, case)
        except Exception as e:  # a bug in a case script must show up as a failure, not a hang
            rec.notes.append("server error: %r" % e)
            rec.parse_errors.append("server-side exception while playing the case: %r" % e)
        finally:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if rec.server_fin_t is None:
                rec.server_fin_t = time.monotonic()
            rec.wait_for(lambda: rec.eof_t is not None, DRAIN_WAIT)
            reader.join(0.5)
            s.close()
            rec.done.set()
            if self.on_done:
                self.on_done(case, rec)

    def _play(self, s, rec, case):
        r = Runner(s, rec, case)
        for step in case.steps:
            if case.end == "fail" and rec.gone():
                break            # the client has failed; nothing more to show it
            step(r)
        if case.end == "fail":
            rec.wait_for(rec.gone, FAIL_WAIT)
        else:
            if rec.server_close_t is None:
                r.wait_items(len(case.expect), case.items_wait)
                if case.settle:
                    rec.wait_for(lambda: rec.client_close_t is not None or rec.eof_t is not None, case.settle)
                r.send_close(close_payload(1000))
            rec.wait_for(lambda: rec.client_close_t is not None or rec.eof_t is not None, REPLY_WAIT)
        # answer a client-initiated close, as a server does (RFC 6455 5.5.1)
        if rec.client_close_t is not None and rec.server_close_t is None and rec.eof_t is None:
            cf = next(f for f in rec.frames if f.opcode == CLOSE)
            code = cf.payload[:2] if len(cf.payload) >= 2 else b""
            if code and not valid_close_code_to_send(struct.unpack("!H", code)[0]):
                code = struct.pack("!H", 1002)
            r.send_close(code)
        # give a client that closes TCP right after its close frame the chance to show it
        if rec.client_close_t is not None:
            rec.wait_for(lambda: rec.eof_t is not None, TCP_GRACE)
        rec.server_fin_t = time.monotonic()


def main():
    import argparse
    sys.dont_write_bytecode = True
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import cases as cases_mod
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=9001)
    args = ap.parse_args()
    all_cases = {c.id: c for c in cases_mod.CASES}

    def done(case, rec):
        probs = evaluate(case, rec)
        print(("ok %s" % case.id) if not probs else ("FAIL %s: %s" % (case.id, "; ".join(probs))), flush=True)
        with srv.lock:
            srv.records.pop(case.id, None)   # allow running the case again

    srv = Server(all_cases, port=args.port, on_done=done)
    print("serving %d cases on ws://127.0.0.1:%d/case/<id>" % (len(all_cases), srv.port), flush=True)
    srv.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
