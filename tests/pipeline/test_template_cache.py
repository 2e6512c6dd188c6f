from __future__ import annotations

import random

from vigil.pipeline.template_cache import ShapeCachedMiner, template_shape
from vigil.pipeline.templates import TemplateMiner, mask_message


def messages(count: int, seed: int = 7) -> list[str]:
    """Log lines of many kinds whose numbers vary, some keeping digits in their tokens."""
    rng = random.Random(seed)
    kinds = [
        lambda: (
            f"GET /api/orders/{rng.randrange(10**6)} {rng.choice([200, 404, 500])} in {rng.random() * 90:.1f}ms"
        ),
        lambda: f"session opened for user u{rng.randrange(9)} by (uid={rng.randrange(1000)})",
        lambda: f"user{rng.randrange(3)}=bob logged in from 10.0.{rng.randrange(255)}.{rng.randrange(255)}",
        lambda: f"Took {rng.random() * 30:.2f} seconds to build instance {rng.getrandbits(64):016x}",
        lambda: f"worker-{rng.randrange(4)} handled job {rng.randrange(100)} of batch b{rng.randrange(20)}",
        lambda: (
            f"connection from 10.0.0.{rng.randrange(9)} () at Sun Jul  {rng.randrange(1, 29)} 10:05:25 2005"
        ),
        lambda: (
            f"{rng.randrange(10)} bytes sent, {rng.randrange(9999)} bytes (1.16 KB) received, lifetime <1 sec"
        ),
        lambda: (
            f"retry {rng.randrange(5)}/5 for key k{rng.randrange(50)}: code E{rng.randrange(3)}0{rng.randrange(3)}"
        ),
        lambda: f"http2 stream {rng.randrange(99)} reset by peer v1.{rng.randrange(3)}",
        lambda: (
            rng.choice(["VM Started", "VM Stopped", "VM Paused", "VM Resumed"]) + f" id={rng.randrange(40)}"
        ),
    ]
    return [rng.choice(kinds)() for _ in range(count)]


def hex_text(rng: random.Random, length: int) -> str:
    """Hex of `length` characters, often mostly digits or mostly letters (edge cases: all digits,
    no digit, a last group all digits)."""
    digits = rng.choice([0.0, 0.2, 0.625, 0.9, 1.0])
    return "".join(rng.choice("0123456789" if rng.random() < digits else "abcdef") for _ in range(length))


def uuid_text(rng: random.Random, upper: bool = False) -> str:
    text = "-".join(hex_text(rng, n) for n in (8, 4, 4, 4, 12))
    return text.upper() if upper else text


def hex_messages(count: int, seed: int = 11) -> list[str]:
    """Log lines with hex ids and UUIDs, alone and next to what the masking rules look at
    (units, dates, brackets, key=value), in both cases and of lengths around the rules' limits."""
    rng = random.Random(seed)
    kinds = [
        lambda: f"request {uuid_text(rng)} finished in {rng.randrange(900)} ms",
        lambda: f"trace {hex_text(rng, rng.choice([7, 8, 16, 32]))} span {hex_text(rng, 16)} ended",
        lambda: f"blob {hex_text(rng, 8)} {rng.choice(['B', 'bytes', 'ms', 'days', 'KB'])} stored",
        lambda: f"object {uuid_text(rng)} {rng.choice(['B', 'bytes', 's', 'ms'])} written",
        lambda: f"on Jul {rng.randrange(1, 29)} {hex_text(rng, 8)} {rng.randrange(2000, 2030)} rotated",
        lambda: f"key {uuid_text(rng, upper=rng.random() < 0.5)} ({hex_text(rng, 12)}) [{uuid_text(rng)}]",
        lambda: f"id={hex_text(rng, 24)} user {rng.choice(['deadbeef', 'acceded', 'effaced', 'cafe'])}",
        lambda: f"{hex_text(rng, 40)} {hex_text(rng, 8).upper()} 0x{hex_text(rng, 8)} commit",
        lambda: f"Dec {hex_text(rng, 8)}\t{uuid_text(rng)}\u00a0{hex_text(rng, 10)},{hex_text(rng, 9)}",
        lambda: f"VM {rng.choice(['Started', 'Stopped'])} {uuid_text(rng)} on host{rng.randrange(9)}",
        lambda: f"[instance: {uuid_text(rng)}] {rng.choice(['VM Started', 'VM Paused'])} ({hex_text(rng, 9)}).",
        lambda: f"\"{hex_text(rng, 8)}\", '{uuid_text(rng)}': {{{hex_text(rng, 12)}}} ({hex_text(rng, 8)} {rng.choice(['B', 's'])}",
        lambda: f"got {uuid_text(rng)}... and {hex_text(rng, 8)}.{rng.randrange(9)} or ({hex_text(rng, 16)})x, done!?",
        lambda: f"[[{hex_text(rng, 8)}]] -{hex_text(rng, 8)} <{hex_text(rng, 8)}> {hex_text(rng, 8)}]{rng.randrange(9)}",
    ]
    return [rng.choice(kinds)() for _ in range(count)]


def test_cached_miner_gives_the_miners_results_exactly() -> None:
    lines = messages(5000)
    plain, cached = TemplateMiner(), ShapeCachedMiner()
    assert [cached.mine(m) for m in lines] == [plain.mine(m) for m in lines]
    assert cached.state() == plain.state()


def test_cached_miner_gives_the_miners_results_exactly_with_hex_ids_and_uuids() -> None:
    lines = hex_messages(6000) + messages(2000, seed=5)
    random.Random(2).shuffle(lines)
    plain, cached = TemplateMiner(), ShapeCachedMiner()
    assert [cached.mine(m) for m in lines] == [plain.mine(m) for m in lines]
    assert cached.state() == plain.state()


def test_hex_ids_and_uuids_share_a_shape_only_as_whole_lowercase_tokens() -> None:
    one = "request 3f2a9c1e-0b4d-4e8f-9a7c-5d6e1f2a3b4c took 12 ms trace 9f86d081884c7d65 [abcdef12]."
    other = "request 00c1b2a3-ffff-4000-8abc-deadbeef0001 took 97 ms trace deadbeefcafe1234 [12345abc]."
    assert template_shape(one) == template_shape(other)
    for kept, changed in [
        ("a 12345678 b", "a 1234567a b"),  # all digits: a number
        ("a 1234abc b", "a 1234abd b"),  # shorter than 8
        ("a 1234ABCD b", "a 1234ABCE b"),  # uppercase
        ("a id=1234abcd b", "a id=1234abce b"),  # glued to a key
        ("a abcdefab-abcd-abcd-abcd-abcdefabcdef b", "a abcdefab-abcd-abcd-abcd-abcdefabcdee b"),  # no digit
        ("a 1234abcd-1234-1234-1234-123456789012 b", "a 1234abce-1234-1234-1234-123456789012 b"),  # digits last
        ("a /v2/1234abcd b", "a /v2/1234abce b"),  # glued to a path
        ("a (1234abcd)x b", "a (1234abce)x b"),  # a letter after the closing bracket
    ]:
        assert template_shape(kept) != template_shape(changed)


def test_a_shape_whose_tokens_keep_digits_is_tokenized_message_by_message() -> None:
    miner = ShapeCachedMiner()
    first = miner.mine("user1=bob logged in")
    second = miner.mine("user2=bob logged in")
    assert (first.template, second.template) == ("user1=bob logged in", "user2=bob logged in")
    assert first.template_id != second.template_id


def test_messages_of_one_shape_share_tokens() -> None:
    miner = ShapeCachedMiner()
    a = miner.mine("GET /api/orders/1234 200 in 12ms")
    b = miner.mine("GET /api/orders/9876 404 in 95ms")
    assert a.template_id == b.template_id
    assert a.template == " ".join(mask_message("GET /api/orders/9876 404 in 95ms"))


def test_state_round_trip_keeps_the_cache_out_of_the_state() -> None:
    lines = messages(500, seed=3)
    cached = ShapeCachedMiner()
    for line in lines:
        cached.mine(line)
    resumed = ShapeCachedMiner.from_state(cached.state())
    plain = TemplateMiner.from_state(cached.state())
    more = messages(500, seed=4)
    assert isinstance(resumed, ShapeCachedMiner)
    assert [resumed.mine(m) for m in more] == [plain.mine(m) for m in more]
