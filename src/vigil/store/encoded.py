"""A JSON list already encoded, to store in a JSON column as it is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EncodedList:
    """The JSON text of a list, as Vigil's JSON columns encode it (orjson, compact), and its
    length. A batch's records arrive encoded in its bus message: stored from there, they are
    neither decoded nor encoded again."""

    text: str
    length: int

    def __len__(self) -> int:
        return self.length
