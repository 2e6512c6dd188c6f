from __future__ import annotations

import json

from tests.detect.traffic import T0
from vigil.detect.error_templates import NewErrorTemplates, TemplateSignalConfig
from vigil.detect.signals import Severity, Signal, SignalKind, fingerprint
from vigil.pipeline.templates import TemplateMiner


def feed(
    watcher: NewErrorTemplates, miner: TemplateMiner, t: float, message: str, service: str = "api"
) -> Signal | None:
    match = miner.mine(message)
    if not match.is_new:
        return None
    return watcher.observe(
        project="p",
        service=service,
        template_id=match.template_id,
        template=match.template,
        time_s=t,
        trace_id="abc",
        record={"body": message},
    )


def test_new_error_template_after_warmup_only() -> None:
    watcher, miner = NewErrorTemplates(TemplateSignalConfig(warmup_s=600)), TemplateMiner()
    assert feed(watcher, miner, T0, "connection refused to db-1 after 3 retries") is None  # learning
    assert feed(watcher, miner, T0 + 300, "timeout reading from cache node 7") is None
    assert feed(watcher, miner, T0 + 700, "connection refused to db-2 after 5 retries") is None  # known shape
    signal = feed(watcher, miner, T0 + 900, "payment provider rejected card 4242 with code 51")
    assert signal is not None and signal.kind is SignalKind.NEW_ERROR_TEMPLATE
    assert signal.severity is Severity.WARNING and signal.service == "api"
    assert signal.evidence.template_id is not None and signal.evidence.template is not None
    assert signal.fingerprint == fingerprint(
        SignalKind.NEW_ERROR_TEMPLATE, "p", "api", signal.evidence.template_id
    )
    assert signal.trace_ids == ["abc"] and signal.evidence.records == [
        {"body": "payment provider rejected card 4242 with code 51"}
    ]
    assert signal.window_start <= T0 + 900 < signal.window_end
    # the same template reported again (e.g. by a second pipeline) is not news
    again = watcher.observe(
        project="p", service="api", template_id=signal.evidence.template_id, template="x", time_s=T0 + 901
    )
    assert again is None
    fatal = watcher.observe(
        project="p", service="api", template_id="t-fatal", template="oom", time_s=T0 + 950, severity_number=21
    )
    assert fatal is not None and fatal.severity is Severity.CRITICAL


def test_bursts_are_capped_and_state_survives_restarts() -> None:
    watcher = NewErrorTemplates(TemplateSignalConfig(warmup_s=0, max_per_window=2))
    got = [
        watcher.observe(project="p", service="api", template_id=f"t{i}", template=f"e{i}", time_s=T0 + i)
        for i in range(5)
    ]
    assert [s is not None for s in got] == [True, True, False, False, False] and watcher.capped == 3
    restored = NewErrorTemplates.from_state(json.loads(json.dumps(watcher.state())), watcher.config)
    assert (
        restored.observe(project="p", service="api", template_id="t0", template="e0", time_s=T0 + 120) is None
    )
    assert (
        restored.observe(project="p", service="api", template_id="t9", template="e9", time_s=T0 + 120)
        is not None
    )
    assert restored.capped == 3
