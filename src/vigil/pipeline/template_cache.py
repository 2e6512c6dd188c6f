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
"""

from __future__ import annotations

import re

from vigil.pipeline.shapes import shape
from vigil.pipeline.templates import TemplateMiner, TemplateMinerConfig

_ASCII_DIGIT = re.compile(r"[0-9]")
_SHAPES = 20_000
"""Shapes kept; the cache is emptied when full (the miner's own caches work the same way)."""
_MAX_LENGTH = 2_048
"""Longer messages are rare and mostly unique: not cached."""


class ShapeCachedMiner(TemplateMiner):
    """A `TemplateMiner` whose tokenizer results are cached by message shape; it assigns the same
    templates and ids as `TemplateMiner` to the same messages (state, merges and sizes included)."""

    def __init__(self, config: TemplateMinerConfig | None = None) -> None:
        super().__init__(config)
        self._shapes: dict[bytes, tuple[str, ...] | None] = {}

    def _tokens(self, message: str) -> tuple[str, ...]:
        if len(message) > _MAX_LENGTH:
            return super()._tokens(message)
        key = shape(message)
        tokens = self._shapes.get(key)
        if tokens is not None:
            return tokens
        tokens = super()._tokens(message)
        if key not in self._shapes:
            if len(self._shapes) >= _SHAPES:
                self._shapes.clear()
            # None: a shape whose tokens keep digits, tokenized message by message
            self._shapes[key] = None if _ASCII_DIGIT.search("".join(tokens)) else tokens
        return tokens
