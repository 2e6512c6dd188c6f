"""The evaluation of the analysis, fast: the first scenario of every failure family and every
scenario built to be undecidable, sent as telemetry through the real OTLP receiver to the built-in
agent, meet the targets `make bench` reports on the whole suite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import VigilHandle

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the evaluation lives in bench/
from bench.analysis_eval import FAMILIES, SCENARIOS, evaluate, summarize

pytestmark = pytest.mark.slow

FIRST_OF_EACH = tuple({s.family: s for s in reversed(SCENARIOS) if s.family is not None}.values())
UNDECIDABLE = tuple(s for s in SCENARIOS if s.family is None)


async def test_every_family_and_every_undecidable_scenario(vigil: VigilHandle) -> None:
    assert len(FIRST_OF_EACH) == len(FAMILIES) >= 12 and len(UNDECIDABLE) >= 5
    outcomes = await evaluate(vigil, FIRST_OF_EACH + UNDECIDABLE)
    summary = summarize(outcomes)
    wrong = [(o.scenario, o.error_type, o.known, o.runbook_id) for o in outcomes if not o.correct]
    assert summary["root_cause_correct"] >= 0.9, wrong
    assert summary["runbook_correct"] >= 0.9, wrong
    assert summary["dont_know_on_undecidable"] == 1.0, wrong
    assert summary["citations"] > 0 and summary["citations_valid"] == 1.0
    assert summary["precision_at_0_7"] is None or summary["precision_at_0_7"] >= 0.95
    for outcome in outcomes:  # a definite answer always names a runbook of the project's, or none
        assert outcome.known or outcome.runbook_id is None
