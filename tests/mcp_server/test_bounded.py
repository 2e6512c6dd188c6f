"""Tool answers are bounded: within the byte cap, cut strings and lists say so, and what fits is
left as it is."""

from __future__ import annotations

import orjson

from vigil.mcp_server.bounded import bounded, items_within, size


def test_what_fits_is_left_as_it_is() -> None:
    answer = {"incidents": [{"id": "a", "title": "t" * 100}], "count": 1}
    assert bounded(answer, max_bytes=1000) == answer


def test_a_large_answer_is_cut_under_the_cap_and_says_so() -> None:
    answer = {
        "title": "x" * 50_000,
        "signals": [{"fingerprint": f"fp-{n}", "detail": "y" * 3000} for n in range(200)],
        "count": 200,
    }
    cut = bounded(answer, max_bytes=24_000)
    assert len(orjson.dumps(cut)) <= 24_000
    assert cut["truncated"] is True and cut["count"] == 200
    assert cut["title"].endswith("…") and len(cut["title"]) < 50_000
    assert cut["signals"][-1].endswith("more left out")
    assert cut["signals"][0]["fingerprint"] == "fp-0"


def test_an_answer_that_cannot_fit_is_an_error_not_an_overflow() -> None:
    answer = {f"key-{n}": n for n in range(5000)}
    cut = bounded(answer, max_bytes=500)
    assert cut["truncated"] is True and "over 500 bytes" in cut["error"]
    assert size(cut) <= 500


def test_items_are_kept_while_they_fit() -> None:
    items = [{"n": n, "text": "z" * 90} for n in range(100)]
    kept, left_out = items_within(items, 1000)
    assert [item["n"] for item in kept] == list(range(len(kept))) and 5 <= len(kept) < 100
    assert left_out == 100 - len(kept) and size(kept) <= 1000
