"""What an import file's bytes look like when they are not in the expected encoding.

A guess from the bytes alone (byte-order marks, NUL patterns, bytes above 0x7f), so the
error can say which ``encoding`` to pass instead of only "not UTF-8".
"""

from __future__ import annotations

import codecs

#: (what the error calls it, the ``encoding`` value to suggest)
Guess = tuple[str, str]


def guess(sample: bytes) -> Guess | None:
    """The encoding ``sample`` (the start of a file) most likely is in, if recognisable."""
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32 (it starts with a UTF-32 byte-order mark)", "utf-32"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16 (it starts with a UTF-16 byte-order mark)", "utf-16"
    if sample.count(0) * 4 >= len(sample) > 0:
        # ASCII text in UTF-16: every other byte is NUL, after the character (LE) or before.
        odd_nuls = sample[1::2].count(0)
        even_nuls = sample[0::2].count(0)
        if odd_nuls > even_nuls:
            return "UTF-16 little-endian (NUL after every character)", "utf-16-le"
        return "UTF-16 big-endian (NUL before every character)", "utf-16-be"
    if any(byte >= 0x80 for byte in sample):
        try:
            sample.decode("utf-8")
        except UnicodeDecodeError:
            return "Latin-1 / Windows-1252 (single-byte accented letters)", "latin-1"
    return None


def undecodable_message(sample: bytes, encoding: str, bad_byte: int | None) -> str:
    """The error for a file that ``encoding`` cannot read, with the detected alternative."""
    expected = "UTF-8" if codecs.lookup(encoding).name in {"utf-8", "utf-8-sig"} else encoding
    if bad_byte is not None:
        what = f"not valid {expected} (byte 0x{bad_byte:02x})"
    elif b"\x00" in sample:
        what = f"not valid {expected} (NUL bytes)"
    else:
        what = f"not valid {expected}"
    detected = guess(sample) if sample else None
    if detected is None:
        return (
            f"{what}: the file is not {expected}; pass encoding (e.g. 'latin-1') or save "
            "it as UTF-8"
        )
    name, codec = detected
    return (
        f"{what}: the file is not {expected}; it looks like {name}: pass encoding: "
        f"{codec!r}, or save it as UTF-8"
    )
