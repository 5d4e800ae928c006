"""permessage-deflate (RFC 7692) for the conformance server: the answer a case gives, the check
that the client's offer allows it, the server's compressor, and the strict decoder of the
client's compressed messages. Stdlib only (zlib).

Windows. zlib's raw deflate cannot make a 256-byte window (windowBits -8 is refused), so when a
case agrees server_max_window_bits=8 the server compresses with Z_HUFFMAN_ONLY: a stream made of
literals only, with no back-reference at all, which any window decodes. The client's messages
are inflated with zlib.decompressobj(-client_max_window_bits), so the decoder keeps exactly the
agreed window of history. zlib checks a distance against that window only for history from an
earlier inflate() call: within one call it accepts any distance into that call's own output. So
the decoder is fed in small steps (INPUT_STEP bytes in, at most OUTPUT_STEP bytes out per call):
a distance larger than the window by more than OUTPUT_STEP bytes is always caught ("invalid
distance too far back"), and the cases' probe messages repeat content at distances of 1.5 times
the window, far beyond that slack."""

import zlib

TAIL = b"\x00\x00\xff\xff"
OUTPUT_STEP = 64
INPUT_STEP = 256


class Deflate:
    """The server's answer for one case. None for a window: the parameter is left out (the
    side then uses up to 15). The client offered `client_max_window_bits` without a value, so
    the answer may name it; everything else RFC 7692 lets a server add unsolicited."""

    def __init__(self, client_bits=None, server_bits=None, server_nct=False, client_nct=False,
                 spelled=None):
        self.client_bits_param, self.server_bits_param = client_bits, server_bits
        self.server_nct, self.client_nct = server_nct, client_nct
        self.spelled = spelled      # the same answer written another way (quoted values, spacing)

    @property
    def client_bits(self):
        return self.client_bits_param or 15

    @property
    def server_bits(self):
        return self.server_bits_param or 15

    def answer(self):
        if self.spelled:
            return self.spelled
        s = "permessage-deflate"
        if self.server_bits_param:
            s += "; server_max_window_bits=%d" % self.server_bits_param
        if self.client_bits_param:
            s += "; client_max_window_bits=%d" % self.client_bits_param
        if self.server_nct:
            s += "; server_no_context_takeover"
        if self.client_nct:
            s += "; client_no_context_takeover"
        return s


def header_values(head, name):
    """Every value of header `name` (lowercase) in a request head."""
    out = []
    for line in head.decode("latin-1").split("\r\n")[1:]:
        n, sep, v = line.partition(":")
        if sep and n.strip().lower() == name:
            out.append(v.strip())
    return out


def parse_extensions(values):
    """Sec-WebSocket-Extensions field values -> [(name, {param: value or True})], lowercased
    names. Quoted values are unquoted (RFC 6455 9.1)."""
    out = []
    for v in values:
        for elem in v.split(","):
            parts = [p.strip() for p in elem.split(";")]
            if not parts[0]:
                continue
            params = {}
            for p in parts[1:]:
                if not p:
                    continue
                name, eq, val = p.partition("=")
                val = val.strip()
                if len(val) >= 2 and val[0] == val[-1] == '"':
                    val = val[1:-1].replace("\\", "")
                params[name.strip().lower()] = val if eq else True
            out.append((parts[0].lower(), params))
    return out


def offer_problem(values, d):
    """Why the client's offer (its Sec-WebSocket-Extensions values) does not allow the answer
    `d` (RFC 7692 7.1), or None when one of its permessage-deflate offers does."""
    offers = [p for n, p in parse_extensions(values) if n == "permessage-deflate"]
    if not offers:
        return "the client did not offer permessage-deflate (Sec-WebSocket-Extensions: %s)" % (
            ", ".join(values) or "absent")
    why = []
    for p in offers:
        if d.client_bits_param and "client_max_window_bits" not in p:
            why.append("it does not offer client_max_window_bits, which this case's answer names")
            continue
        smwb = p.get("server_max_window_bits")
        if isinstance(smwb, str) and smwb.isdigit() and (d.server_bits_param or 15) > int(smwb):
            why.append("it asks for server_max_window_bits=%s, this case needs %d" % (smwb, d.server_bits))
            continue
        if "server_no_context_takeover" in p and not d.server_nct:
            why.append("it asks for server_no_context_takeover, which this case does not use")
            continue
        return None
    return "the client's permessage-deflate offer does not allow this case's answer %r: %s" % (
        d.answer(), "; ".join(why))


class Compressor:
    """The server's side of one connection: one compressed message at a time (RFC 7692 7.2.1:
    a sync flush, its trailing 00 00 ff ff removed)."""

    def __init__(self, d):
        self.d = d
        self.z = None

    def message(self, payload):
        if self.z is None or self.d.server_nct:
            bits, strategy = self.d.server_bits, zlib.Z_DEFAULT_STRATEGY
            if bits == 8:          # literals only: no distance, so a 256-byte window decodes it
                bits, strategy = 9, zlib.Z_HUFFMAN_ONLY
            self.z = zlib.compressobj(6, zlib.DEFLATED, -bits, 8, strategy)
        out = self.z.compress(payload) + self.z.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4] if out.endswith(TAIL) else out


class Decompressor:
    """Inflates the client's compressed messages with the agreed client window (a fresh stream
    per message under client_no_context_takeover). message() returns the bytes or raises
    zlib.error; after an error the stream is unusable and every later call raises too."""

    def __init__(self, d):
        self.bits = d.client_bits
        self.fresh = d.client_nct
        self.z = None
        self.broken = None

    def message(self, data):
        if self.broken:
            raise zlib.error("not inflated: an earlier compressed message failed (%s)" % self.broken)
        if self.z is None or self.fresh or self.z.eof:
            self.z = zlib.decompressobj(-self.bits)
        out = []
        data += TAIL
        try:
            for i in range(0, len(data), INPUT_STEP):
                tail = data[i:i + INPUT_STEP]
                while True:
                    o = self.z.decompress(tail, OUTPUT_STEP)
                    out.append(o)
                    tail = self.z.unconsumed_tail
                    if not o and not tail:
                        break
                if self.z.eof:     # a final block (RFC 7692 7.2.3.4): the rest of the message is
                    break          # the remains of the flush
        except zlib.error as e:
            self.broken = str(e)
            raise
        return b"".join(out)
