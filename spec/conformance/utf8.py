"""Streaming UTF-8 validation for the conformance server (and the cases that build invalid
input)."""


def utf8_error_index(data):
    """Streaming UTF-8 validation (Unicode table 3-7, RFC 3629).
    Returns None when `data` is complete, well-formed UTF-8; otherwise the index of the first
    byte at which a byte-at-a-time validator must reject it, or len(data) when the only problem
    is a sequence truncated by the end of the data."""
    need = 0
    lo, hi = 0x80, 0xBF
    for i, b in enumerate(data):
        if need == 0:
            if b < 0x80:
                continue
            if 0xC2 <= b <= 0xDF:
                need, lo, hi = 1, 0x80, 0xBF
            elif b == 0xE0:
                need, lo, hi = 2, 0xA0, 0xBF
            elif 0xE1 <= b <= 0xEC or 0xEE <= b <= 0xEF:
                need, lo, hi = 2, 0x80, 0xBF
            elif b == 0xED:
                need, lo, hi = 2, 0x80, 0x9F
            elif b == 0xF0:
                need, lo, hi = 3, 0x90, 0xBF
            elif 0xF1 <= b <= 0xF3:
                need, lo, hi = 3, 0x80, 0xBF
            elif b == 0xF4:
                need, lo, hi = 3, 0x80, 0x8F
            else:
                return i
        else:
            if not lo <= b <= hi:
                return i
            need -= 1
            lo, hi = 0x80, 0xBF
    return len(data) if need else None
