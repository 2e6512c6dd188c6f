"""A cache in front of the template miner's tokenizer, by message shape.

Most of `TemplateMiner.mine`'s time goes into turning a message into masked tokens (two regex
passes over the message, then one lookup per word), and messages of one kind differ mostly in
their numbers: "GET /api/orders/1234 200 in 12 ms" and "... /5678 200 in 9 ms". Messages of
one shape (`vigil.pipeline.shapes`: every ASCII digit written as `0`) are tokenized once.

That gives the miner's own result: every rule of the masking step treats the ten digits alike
(character classes such as `\\d` and `[0-9a-f]`, `str.isdigit`; no pattern names one digit), so
two messages of one shape go through the same steps and their tokens differ at most in the
digits they keep. A shape is cached only when its tokens keep no digit at all; otherwise every
message of it is tokenized on its own. tests/pipeline/test_template_cache.py holds the miner with
and without the cache to identical results; a masking rule that names a digit breaks that test.

Hex ids and UUIDs are unique per message, so their shapes would be too. A message whose shape is
not known is looked up once more, by `template_shape`, which also writes every *hex token* as one
byte that UTF-8 never holds (0xFF; a digit shape never holds it, so the keys do not mix). A hex
token is the core of a whitespace-delimited token (what is left without the opening brackets
and quotes it starts with and the closing ones and punctuation it ends with, as the miner strips
them: `[({'"` and `])}'",;:.!?`) that is either lowercase hex of 8 characters or more with at
least one letter, or a lowercase UUID (8-4-4-4-12) with at least one digit and a letter in its
last group. The miner makes every such core one `<*>` and nothing else of it, whatever its
characters, by its rules:
- the masking of a token: the miner strips the same characters around the core; a core of
  lowercase hex of 8 or more with a digit is `<*>` (a digit), without one too (the long hex
  word rule); a UUID has a digit; no other rule applies first (no `=`, `:`, `..`, `(`, `[`,
  `://`, no `aa:bb`-style groups); what is left around `<*>` is kept as it is;
- the masks applied to the whole message first cannot reach into such a core: the dates need
  a capitalized month name or digits followed by a non-word character or `:` (the core's first
  8 characters are word characters, and it is not all digits); a quantity with a unit needs
  digits followed by a unit (no unit is spelled with lowercase hex letters), or by `.` and
  digits, or by white space and a unit (only an all-digit last group could be: hence a letter
  there; what may follow the core holds no digit, letter or white space);
- it is one token, whose neighbours' masking does not depend on it (it is bounded by white
  space, which is white space for `str.split` too).
Uppercase or mixed-case hex is not rewritten (an uppercase `B` is a unit), nor hex glued to
other characters (`id=...`, `/v2/...`): those messages are cached by their digits only, as before.
"""

from __future__ import annotations

import re

from vigil.pipeline.shapes import DIGITS_TO_ZERO
from vigil.pipeline.templates import TemplateMiner, TemplateMinerConfig

_ASCII_DIGIT = re.compile(r"[0-9]")
_SHAPES = 20_000
"""Shapes kept; the cache is emptied when full (the miner's own caches work the same way)."""
_MAX_LENGTH = 2_048
"""Longer messages are rare and mostly unique: not cached."""
_HEX_TOKEN = re.compile(
    rb"(?<!\S)([\[({'\"]*)"  # opening brackets and quotes (the miner's lead characters)
    rb"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{8,})"
    rb"([\])}'\",;:.!?]*)(?!\S)"  # closing brackets, quotes and punctuation (its trail characters)
)
_HEX_TO_MARK = bytes(
    0xFE if 0x30 <= b <= 0x39 or 0x61 <= b <= 0x66 else 0x20 if b in b" \t\n\v\f\r[({'\"" else b
    for b in range(256)
)
_EIGHT_MARKS = b"\xfe" * 8
_SPACE_EIGHT_MARKS = b" " + _EIGHT_MARKS
"""A hex token starts with 8 lowercase hex characters after white space, an opening bracket or
quote, or at the start: checked with `bytes.translate` and `in` (fast) before the regular
expression (slow)."""
_HEX_LETTER = re.compile(rb"[a-f]")
_DIGIT = re.compile(rb"[0-9]")


def _hex_token(match: re.Match[bytes]) -> bytes:
    lead, token, trail = match.groups()
    if len(token) == 36 and token[8:9] == b"-":  # a UUID
        if _DIGIT.search(token) is None or _HEX_LETTER.search(token, 24) is None:
            return match.group()
    elif _HEX_LETTER.search(token) is None:  # all digits: a number (the digit shape has it)
        return match.group()
    return lead + b"\xff" + trail


def _without_hex_tokens(data: bytes) -> bytes | None:
    """`data` (UTF-8) with every hex token written as 0xFF; None when it holds none."""
    marked = data.translate(_HEX_TO_MARK)
    if _SPACE_EIGHT_MARKS not in marked and not marked.startswith(_EIGHT_MARKS):
        return None
    rewritten = _HEX_TOKEN.sub(_hex_token, data)
    return rewritten if rewritten != data else None


def template_shape(message: str) -> bytes:
    """`vigil.pipeline.shapes.shape` with every hex token (see above) written as one 0xFF byte."""
    data = message.encode("utf-8", "surrogatepass")
    return (_without_hex_tokens(data) or data).translate(DIGITS_TO_ZERO)


class ShapeCachedMiner(TemplateMiner):
    """A `TemplateMiner` whose tokenizer results are cached by message shape; it assigns the same
    templates and ids as `TemplateMiner` to the same messages (state, merges and sizes included)."""

    def __init__(self, config: TemplateMinerConfig | None = None) -> None:
        super().__init__(config)
        self._shapes: dict[bytes, tuple[str, ...] | None] = {}

    def _tokens(self, message: str) -> tuple[str, ...]:
        if len(message) > _MAX_LENGTH:
            return super()._tokens(message)
        shapes = self._shapes
        data = message.encode("utf-8", "surrogatepass")
        key = data.translate(DIGITS_TO_ZERO)
        tokens = shapes.get(key)
        if tokens is not None:
            return tokens
        if key not in shapes:
            # an unknown digit shape: perhaps one of a known shape with other hex ids (looked up
            # only now: the hex rewrite costs more than the lookup that mostly hits)
            rewritten = _without_hex_tokens(data)
            if rewritten is not None:
                key = rewritten.translate(DIGITS_TO_ZERO)
                tokens = shapes.get(key)
                if tokens is not None:
                    return tokens
        tokens = super()._tokens(message)
        if key not in shapes:
            if len(shapes) >= _SHAPES:
                shapes.clear()
            # None: a shape whose tokens keep digits, tokenized message by message
            shapes[key] = None if _ASCII_DIGIT.search("".join(tokens)) else tokens
        return tokens
