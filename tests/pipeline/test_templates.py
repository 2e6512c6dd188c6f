from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from vigil.pipeline.templates import (
    WILDCARD,
    TemplateMatch,
    TemplateMiner,
    TemplateMinerConfig,
    mask_message,
    template_hash,
)
from vigil.pipeline.templates_cli import mine_lines, run_templates


def mine_all(miner: TemplateMiner, messages: list[str]) -> list[TemplateMatch]:
    return [miner.mine(m) for m in messages]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Took 19.05 seconds to build instance", "Took <*> to build instance"),
        ("connection from 10.0.0.1 () at Sun Jul  3 10:05:25 2005", "connection from <*> at <*>"),
        ("session opened for user cyrus by (uid=0)", "session opened for user cyrus by (uid=<*>)"),
        ("Deleting block blk_-6952295868487656571 file /mnt/data/blk_1", "Deleting block <*> file <*>"),
        (
            "hm.baidu.com:80 open through proxy proxy.example.org:5070 HTTPS",
            "<*> open through proxy <*> HTTPS",
        ),
        (
            "0 bytes sent, 1190 bytes (1.16 KB) received, lifetime <1 sec",
            "<*> sent, <*> received, lifetime <*>",
        ),
        (
            "image 0673dd71-34c5-4fbb-86c4-40623fbe45b4 at (/var/lib/nova/_base/a489c868f0): checking",
            "image <*> at (<*>): checking",
        ),
        ("ciod: LOGIN chdir(/p/gb2/t800) failed", "ciod: LOGIN chdir(<*>) failed"),
        ("sshd[1234]: Accepted password", "sshd[<*>]: Accepted password"),
        ("GET https://example.com/api?id=3 returned 200 in 35ms", "GET <*> returned <*> in <*>"),
        ("fpr29=0xffffffff ffffffff", "fpr29=<*> <*>"),
        ("java.io.IOException: Connection reset by peer", "java.io.IOException: Connection reset by peer"),
        ("open share/locale/de/app.mo failed, using I/O at KB/s", "open <*> failed, using I/O at KB/s"),
        ("mail from alice@example.org queued", "mail from <*> queued"),
        ("flags=UP,BROADCAST,RUNNING on eth", "flags=<*> on eth"),
        ("pointer 0xDEADBEEF hash cafebabedeadbeef ok", "pointer <*> hash <*> ok"),
        ("link aa:bb:cc:dd:ee:ff up, peer=de-ad-be-ef-ca-fe", "link <*> up, peer=<*>"),
    ],
)
def test_variables_are_masked(message: str, expected: str) -> None:
    assert " ".join(mask_message(message)) == expected
    assert TemplateMiner().mine(message).template == expected


def test_same_template_gets_same_id_and_different_templates_differ() -> None:
    miner = TemplateMiner()
    a1, a2, b, a3 = mine_all(
        miner,
        [
            "PacketResponder 1 for block blk_38865049064139660 terminating",
            "PacketResponder 0 for block blk_-6952295868487656571 terminating",
            "Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106 dest: /10.250.19.102:50010",
            "PacketResponder 2 for block blk_8229193803249955061 terminating",
        ],
    )
    assert a1.is_new and not a2.is_new and b.is_new and not a3.is_new
    assert a1.template_id == a2.template_id == a3.template_id
    assert a3.cluster_size == 3
    assert b.template_id != a1.template_id
    assert a1.template == "PacketResponder <*> for block <*> terminating"
    assert len(a1.template_id) == 16
    # derived from the template text at creation: the same on every replica
    assert a1.template_id == template_hash(a1.template)
    assert TemplateMiner().mine("PacketResponder 7 for block blk_1 terminating").template_id == a1.template_id


def test_a_different_word_is_a_different_event() -> None:
    miner = TemplateMiner()
    started, stopped = mine_all(
        miner,
        ["[instance: 1b2c] VM Started (Lifecycle Event)", "[instance: 9f3a] VM Stopped (Lifecycle Event)"],
    )
    assert started.template_id != stopped.template_id
    assert started.template == "[instance: <*>] VM Started (Lifecycle Event)"


def test_a_word_position_with_many_values_becomes_a_variable() -> None:
    miner = TemplateMiner()
    users = ["admin", "oracle", "guest", "webmaster", "nagios", "pi"]
    matches = [miner.mine(f"Invalid user {u} from 173.234.31.{i}") for i, u in enumerate(users)]
    assert [m.is_new for m in matches[:4]] == [True] * 4
    assert not matches[4].is_new and matches[4].template == "Invalid user <*> from <*>"
    assert matches[4].template_id == matches[0].template_id  # the oldest cluster's id survives
    assert matches[5].template_id == matches[0].template_id
    assert matches[5].cluster_size == 6
    # the merged-away clusters resolve to the survivor
    assert {miner.resolve(m.template_id) for m in matches} == {matches[0].template_id}
    assert miner.template(matches[1].template_id) == "Invalid user <*> from <*>"
    assert miner.cluster_count == 1


def test_template_generalizes_but_id_stays() -> None:
    miner = TemplateMiner()
    first = miner.mine("user root logged in on tty")
    second = miner.mine("user u1001 logged in on tty")
    assert second.template_id == first.template_id
    assert second.template == "user <*> logged in on tty"
    assert first.template_id == template_hash("user root logged in on tty")


def test_state_round_trip_keeps_ids() -> None:
    messages = [
        "PacketResponder 1 for block blk_38865049064139660 terminating",
        "session closed for user cyrus",
        "session closed for user news",
        "session closed for user test",
        "session closed for user root",
        "session closed for user games",
        "Verification succeeded for blk_-4980916519894289629",
        "[instance: 1b2c] VM Started (Lifecycle Event)",
        "jetty-6.1.26",  # nothing but a variable
    ]
    miner = TemplateMiner()
    before = {m: miner.mine(m) for m in messages}
    data = miner.state()
    assert isinstance(data, bytes)
    payload = json.loads(data)  # JSON, not pickle
    assert payload["version"] == 1

    restored = TemplateMiner.from_state(data)
    assert restored.cluster_count == miner.cluster_count
    assert [t.template_id for t in restored.templates()] == [t.template_id for t in miner.templates()]
    for message, match in before.items():
        again = restored.mine(message)
        assert again.template_id == miner.resolve(match.template_id)
        assert not again.is_new
    # aliases of merged-away clusters survive the restart
    assert restored.resolve(before["session closed for user news"].template_id) == (
        before["session closed for user cyrus"].template_id
    )
    # new clusters after a restart never reuse an id
    fresh = restored.mine("a brand new kind of message")
    assert fresh.is_new
    assert fresh.template_id not in {m.template_id for m in before.values()}


def test_state_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        TemplateMiner.from_state(b'{"version": 99}')


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        TemplateMinerConfig(similarity_threshold=1.5)
    with pytest.raises(ValueError):
        TemplateMinerConfig(min_distinct_values=1)


def test_max_clusters_caps_memory_but_ids_stay_stable() -> None:
    miner = TemplateMiner(TemplateMinerConfig(max_clusters=1))
    first = miner.mine("alpha beta gamma")
    over = miner.mine("delta epsilon")
    assert miner.cluster_count == 1
    assert miner.mine("alpha beta gamma").cluster_size == first.cluster_size + 1
    assert over.is_new and over.template == "delta epsilon"
    assert miner.mine("delta epsilon").template_id == over.template_id


def test_empty_and_long_messages() -> None:
    miner = TemplateMiner(TemplateMinerConfig(max_tokens=4))
    assert miner.mine("").template == ""
    assert miner.mine("   ").template_id == miner.mine("").template_id
    long = miner.mine("a b c d e f g")
    assert long.template == "a b c d <*>"
    assert miner.mine("a b c d x y z w v").template_id == long.template_id
    assert miner.mine("a b c d").template_id != long.template_id


def test_cluster_index_finds_the_same_clusters_as_a_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    import vigil.pipeline.templates as templates

    words = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "theta"]
    messages = [
        f"{a} {b} value {i} {c}"
        for i, (a, b, c) in enumerate((a, b, c) for a in words for b in words[:4] for c in words[:3])
    ]
    scanned = mine_lines(messages)
    monkeypatch.setattr(templates, "_SCAN_ALL_BELOW", 0)
    assert mine_lines(messages) == scanned


def test_run_templates_writes_csv_per_line_in_order(tmp_path: Path) -> None:
    source = tmp_path / "messages.txt"
    lines = [
        "session closed for user cyrus",
        'Took 0.48 seconds to deallocate network, "quoted", for instance',
        "session closed for user news",
        "",
        "session closed for user test",
        "session closed for user root",
        "session closed for user games",
    ]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = io.StringIO()
    run_templates(source, out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["template_id", "template"]
    body = rows[1:]
    assert len(body) == len(lines)
    # every line carries its cluster as it is at the end of the file (merged: one id)
    session_rows = [body[i] for i in (0, 2, 4, 5, 6)]
    assert {tuple(r) for r in session_rows} == {(body[0][0], "session closed for user <*>")}
    assert body[1][1] == 'Took <*> to deallocate network, "quoted", for instance'
    assert body[1][0] != body[0][0]
    assert body[3] == [template_hash(""), ""]
    assert all(WILDCARD not in r[0] for r in body)


def test_long_messages_of_varying_length_share_a_template() -> None:
    miner = TemplateMiner()
    head = " ".join(f"word{chr(97 + i)}" for i in range(24)).replace("word", "w")
    tails = ["the disk is gone", "and then some more free text follows here", "x"]
    matches = [miner.mine(f"{head} {tail}") for tail in tails]
    assert len({m.template_id for m in matches}) == 1
    assert matches[-1].template == head + " <*>"
    assert miner.mine(head).template_id != matches[0].template_id
