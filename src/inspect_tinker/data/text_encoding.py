"""Text files people hand us (configs, training and evaluation files) must be UTF-8; when one
is not, say which encoding it is in and where it breaks, instead of a decoder's byte offset."""

from __future__ import annotations

import codecs
from pathlib import Path

from inspect_tinker.errors import UsageError

# UTF-32 first: its little-endian mark begins with UTF-16's.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"),
)


def foreign_encoding(head: bytes) -> str | None:
    """What the first bytes of a file show it is when that is not UTF-8 text: a UTF-16 or
    UTF-32 byte order mark, or NUL bytes (UTF-16 without a mark, or a binary file); else None."""
    for mark, name in _BYTE_ORDER_MARKS:
        if head.startswith(mark):
            return f"{name} (it starts with a {name} byte order mark)"
    if b"\0" in head:  # never in UTF-8 text, JSON or YAML; every other byte in UTF-16 of ASCII
        return "UTF-16 or binary, not text (it holds NUL bytes)"
    return None


def not_utf8_error(path: Path | str, head: bytes) -> UsageError | None:
    """The error for a file whose first bytes `head` show a foreign encoding, or None."""
    found = foreign_encoding(head)
    if found is None:
        return None
    return UsageError(
        f"{path}: the file is {found}, not UTF-8; save it as UTF-8 "
        f"(for example: iconv -f {found.split()[0]} -t UTF-8 {path} > fixed{Path(path).suffix})."
    )


def decode_utf8(raw: bytes, path: Path | str) -> str:
    """A whole file's bytes `raw` as text, without a leading UTF-8 byte order mark.

    Raises UsageError naming `path` and the encoding found, or the line and column of the
    first byte that is not UTF-8.
    """
    error = not_utf8_error(path, raw[:4096])
    if error is not None:
        raise error
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise UsageError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {column}); save the file as "
            "UTF-8 (text from Windows converts with: iconv -f CP1252 -t UTF-8)."
        ) from None
