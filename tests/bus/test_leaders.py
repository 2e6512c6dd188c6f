"""Spreading the records partitions' leaders over the nodes: which step comes next."""

from __future__ import annotations

from vigil.bus.client import plan_leader_move

NODES = {"n1", "n2", "n3"}


def followers(leaders: dict[str, str | None], online: set[str] = NODES) -> dict[str, set[str]]:
    return {stream: online - {leader} for stream, leader in leaders.items()}


def test_spread_leaders_stay_where_they_are() -> None:
    leaders: dict[str, str | None] = {"R0": "n1", "R1": "n2", "R2": "n3"}
    assert plan_leader_move(leaders, followers(leaders)) is None


def test_a_node_leading_two_partitions_gives_one_to_the_idle_node() -> None:
    leaders: dict[str, str | None] = {"R0": "n1", "R1": "n1", "R2": "n3"}
    # the later partition moves; partition 0 keeps its leader
    assert plan_leader_move(leaders, followers(leaders)) == ("R1", "n2")


def test_one_node_leading_everything_takes_two_steps() -> None:
    leaders: dict[str, str | None] = {"R0": "n2", "R1": "n2", "R2": "n2"}
    stream, node = plan_leader_move(leaders, followers(leaders)) or ("", "")
    assert (stream, node) == ("R2", "n1")
    leaders[stream] = node
    assert plan_leader_move(leaders, followers(leaders)) == ("R1", "n3")
    leaders["R1"] = "n3"
    assert plan_leader_move(leaders, followers(leaders)) is None


def test_a_node_that_is_down_or_behind_is_not_chosen() -> None:
    # n3 was killed: it is no stream's current follower, so the two leaders of n1 stay
    leaders: dict[str, str | None] = {"R0": "n1", "R1": "n1", "R2": "n2"}
    assert plan_leader_move(leaders, followers(leaders, online={"n1", "n2"})) is None
    # n3 is back but still catching up on R1: R0 moves instead
    peers = followers(leaders)
    peers["R1"].discard("n3")
    assert plan_leader_move(leaders, peers) == ("R0", "n3")


def test_nothing_moves_while_a_partition_has_no_leader() -> None:
    leaders: dict[str, str | None] = {"R0": "n1", "R1": "n1", "R2": None}
    assert plan_leader_move(leaders, followers(leaders)) is None
    assert plan_leader_move({}, {}) is None


def test_more_partitions_than_nodes_only_moves_towards_idle_nodes() -> None:
    leaders: dict[str, str | None] = {"R0": "n1", "R1": "n2", "R2": "n3", "R3": "n1"}
    assert plan_leader_move(leaders, followers(leaders)) is None
