"""The evaluation of the rules engine's analysis on scripted fault scenarios (bench/analysis_scenarios.py).

Each scenario goes to a running Vigil as telemetry, through its real OTLP/HTTP receiver: every
service logs through the OpenTelemetry SDK's log exporter, inside spans exported through the SDK's
span exporter where the scenario says records belong to requests. A project per scenario has one
runbook per failure family and a pipeline to the built-in agent (`builtin:error-summary`, rules
engine); its answer is read back from the outputs API and scored:

* root cause correct: the family's error type, or "don't know" (known=False) where undecidable;
* runbook correct: the family's runbook, or none where undecidable;
* citations valid: every cited template is one of the project's stored records' templates;
* precision at confidence >= 0.7: of the definite answers that sure, the share that is right.

    .venv/bin/python bench/analysis_eval.py [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from bench.analysis_scenarios import FAMILIES, SCENARIOS, Line, Scenario
from tests.conftest import VigilHandle, make_settings, running

SURE = 0.7
LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING}
LEVELS |= {"ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL}
PIPELINE = {
    "filter": {},
    "batch": {"max_records": 1000, "max_wait_ms": 1500},
    "agent": {"endpoint": "builtin:error-summary"},
}


def runbooks() -> dict[str, dict[str, Any]]:
    """One runbook per family, matching the family's error types; notify-only, never acting."""
    return {
        runbook: {
            "title": f"What to do about {family.replace('_', ' ')}",
            "match": {"error_types": sorted(types)},
            "tier": "supervised",
            "steps": [
                {"action": "notify", "params": {"message": f"{family} runbook", "severity": "warning"}}
            ],
        }
        for family, (types, runbook) in FAMILIES.items()
    }


@dataclass
class Outcome:
    scenario: str
    stack: str
    family: str | None
    error_type: str
    known: bool
    confidence: float
    runbook_id: str | None
    correct: bool
    runbook_correct: bool
    citations: int
    citations_valid: int


class _Service:
    """One service's SDK log and trace pipelines to Vigil; records leave on flush, in one export."""

    def __init__(self, name: str, receiver_url: str, key: str) -> None:
        resource = Resource.create({"service.name": name})
        headers = {"X-API-Key": key}
        self.logs = LoggerProvider(resource=resource)
        exporter = OTLPLogExporter(endpoint=f"{receiver_url}/v1/logs", headers=headers)
        self.logs.add_log_record_processor(
            BatchLogRecordProcessor(
                exporter, schedule_delay_millis=60_000, max_export_batch_size=4096, max_queue_size=8192
            )
        )
        self.traces = TracerProvider(resource=resource)
        spans = OTLPSpanExporter(endpoint=f"{receiver_url}/v1/traces", headers=headers)
        self.traces.add_span_processor(BatchSpanProcessor(spans, schedule_delay_millis=60_000))
        self.tracer = self.traces.get_tracer("vigil-analysis-eval")
        self.logger = logging.getLogger(f"eval.{name}.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=self.logs))

    def emit(self, line: Line) -> None:
        level = LEVELS[line.level]
        texts = [line.text.format(i=i, n=(i * 7919) % 9 + 1) for i in range(line.count)]
        if line.per_trace <= 0:
            for text in texts:
                self.logger.log(level, text)
            return
        for start in range(0, len(texts), line.per_trace):
            with self.tracer.start_as_current_span("GET /api/v1/list"):
                for text in texts[start : start + line.per_trace]:
                    self.logger.log(level, text)

    def close(self) -> None:
        self.traces.force_flush(10_000)
        self.logs.force_flush(10_000)
        self.traces.shutdown()
        self.logs.shutdown()


def send(scenario: Scenario, receiver_url: str, key: str) -> int:
    """Log the scenario's lines (healthy traffic first, then the failure) as its services would."""
    lines = [*scenario.healthy, *scenario.lines]
    services = {name: _Service(name, receiver_url, key) for name in sorted({line.service for line in lines})}
    for line in lines:
        services[line.service].emit(line)
    for service in services.values():
        service.close()
    return sum(line.count for line in lines)


async def run_scenario(vigil: VigilHandle, scenario: Scenario, timeout_s: float = 60.0) -> Outcome:
    project_id, key = await vigil.project_with_key(f"eval-{scenario.name}")
    api = vigil.api
    base = f"/api/v1/projects/{project_id}"
    for runbook_id, spec in runbooks().items():
        answer = await api.put(f"{base}/runbooks/{runbook_id}", json=spec)
        assert answer.status_code in (200, 201), answer.text
    answer = await api.put(f"{base}/pipelines/analysis", json=PIPELINE)
    assert answer.status_code == 200, answer.text
    sent = await asyncio.to_thread(send, scenario, vigil.receiver_url, key)

    deadline = time.monotonic() + timeout_s
    while True:
        batches = (await api.get(f"{base}/batches", params={"limit": 1000, "records": True})).json()
        outputs = (await api.get(f"{base}/outputs")).json()
        if sum(b["represented"] for b in batches) >= sent and len(outputs) >= len(batches) > 0:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{scenario.name}: {len(outputs)} answers to {len(batches)} batches")
        await asyncio.sleep(0.2)
    if len(outputs) != 1:
        raise RuntimeError(
            f"{scenario.name}: the records reached the agent in {len(outputs)} batches, not one"
        )
    return score(scenario, outputs[0]["payload"], batches)


def score(scenario: Scenario, payload: dict[str, Any], batches: list[dict[str, Any]]) -> Outcome:
    stored = {record.get("template_id") for batch in batches for record in batch["records"]}
    cited = payload.get("evidence") or []
    valid = [c for c in cited if c.get("kind", "template") == "template" and c["template_id"] in stored]
    if scenario.family is None:
        correct = not payload["known"]
        runbook_correct = payload.get("runbook_id") is None
    else:
        types, runbook = FAMILIES[scenario.family]
        correct = bool(payload["known"]) and payload["error_type"] in types
        runbook_correct = payload.get("runbook_id") == runbook
    return Outcome(
        scenario=scenario.name,
        stack=scenario.stack,
        family=scenario.family,
        error_type=payload["error_type"],
        known=bool(payload["known"]),
        confidence=float(payload["confidence"]),
        runbook_id=payload.get("runbook_id"),
        correct=correct,
        runbook_correct=runbook_correct,
        citations=len(cited),
        citations_valid=len(valid),
    )


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    decidable = [o for o in outcomes if o.family is not None]
    undecidable = [o for o in outcomes if o.family is None]
    sure = [o for o in outcomes if o.known and o.confidence >= SURE]
    right = [o.confidence for o in outcomes if o.known and o.correct]
    wrong = [o.confidence for o in outcomes if o.known and not o.correct]
    cited = sum(o.citations for o in outcomes)

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 3) if whole else None

    return {
        "scenarios": len(outcomes),
        "decidable": len(decidable),
        "undecidable": len(undecidable),
        "root_cause_correct": share(sum(o.correct for o in decidable), len(decidable)),
        "runbook_correct": share(sum(o.runbook_correct for o in decidable), len(decidable)),
        "dont_know_on_undecidable": share(sum(o.correct for o in undecidable), len(undecidable)),
        "all_correct": share(sum(o.correct for o in outcomes), len(outcomes)),
        "citations_valid": share(sum(o.citations_valid for o in outcomes), cited),
        "citations": cited,
        "answers_at_0_7": len(sure),
        "precision_at_0_7": share(sum(o.correct for o in sure), len(sure)),
        "mean_confidence_right": round(sum(right) / len(right), 2) if right else None,
        "mean_confidence_wrong": round(sum(wrong) / len(wrong), 2) if wrong else None,
        "families": len({o.family for o in decidable}),
        "stacks": len({o.stack for o in outcomes}),
    }


async def evaluate(vigil: VigilHandle, scenarios: tuple[Scenario, ...] = SCENARIOS) -> list[Outcome]:
    return [await run_scenario(vigil, scenario) for scenario in scenarios]


async def _main(as_json: bool, only: str) -> dict[str, Any]:
    chosen = tuple(s for s in SCENARIOS if not only or any(s.name.startswith(p) for p in only.split(",")))
    with tempfile.TemporaryDirectory(prefix="vigil-analysis-") as tmp:
        async with running(make_settings(Path(tmp) / "vigil")) as vigil:
            outcomes = await evaluate(vigil, chosen)
    result = {"summary": summarize(outcomes), "outcomes": [asdict(o) for o in outcomes]}
    if not as_json:
        for o in outcomes:
            mark = "ok " if o.correct else "BAD"
            print(
                f"{mark} {o.scenario:28} {o.error_type:26} known={o.known!s:5} conf={o.confidence:.2f} "
                f"runbook={o.runbook_id}",
                file=sys.stderr,
            )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="every outcome, as JSON")
    parser.add_argument("--only", default="", help="comma-separated prefixes of scenario names")
    args = parser.parse_args()
    as_json = args.json
    result = asyncio.run(_main(as_json, args.only))
    from output import print_json  # the script's directory: imported as `bench.analysis_eval` by tests too

    print_json(result if as_json else result["summary"], indent=1)


if __name__ == "__main__":
    main()
