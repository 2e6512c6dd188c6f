from __future__ import annotations

import random

from vigil.pipeline.template_cache import ShapeCachedMiner
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


def test_cached_miner_gives_the_miners_results_exactly() -> None:
    lines = messages(5000)
    plain, cached = TemplateMiner(), ShapeCachedMiner()
    assert [cached.mine(m) for m in lines] == [plain.mine(m) for m in lines]
    assert cached.state() == plain.state()


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
