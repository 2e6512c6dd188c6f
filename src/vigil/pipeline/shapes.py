"""The shape of a text: the text with every ASCII digit written as `0`.

Texts of one kind differ mostly in their numbers ("user 4711 logged in", "user 815 logged in");
work whose result depends only on the shape (template tokens, the redaction rules worth trying)
is done once per shape. Computed on the UTF-8 bytes: `bytes.translate` is more than ten times as
fast as `str.translate`.
"""

from __future__ import annotations

DIGITS_TO_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else b for b in range(256))
"""The `bytes.translate` table of `shape`."""


def shape(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass").translate(DIGITS_TO_ZERO)
