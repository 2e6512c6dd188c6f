"""The benchmarks page's section on the analysis of fault scenarios (bench/analysis_eval.py's results)."""

from __future__ import annotations

from typing import Any

TARGETS = {"root_cause_correct": 0.9, "runbook_correct": 0.9, "citations_valid": 1.0}


def render(data: dict[str, Any]) -> tuple[str, list[tuple[str, str, str, bool]]]:
    """The benchmarks page's section and its summary rows (what, target, measured, met)."""
    s = data["summary"]

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    precision_ok = s["precision_at_0_7"] is None or s["precision_at_0_7"] >= 0.95
    rows = [
        ("Analysis: root cause correct (decidable scenarios)", ">= 90%", pct(s["root_cause_correct"]),
         (s["root_cause_correct"] or 0) >= TARGETS["root_cause_correct"]),
        ("Analysis: runbook correct", ">= 90%", pct(s["runbook_correct"]),
         (s["runbook_correct"] or 0) >= TARGETS["runbook_correct"]),
        ("Analysis: citations that resolve to stored records' templates", "100%",
         f"{pct(s['citations_valid'])} of {s['citations']}", s["citations_valid"] == 1.0),
        ("Analysis: \"don't know\" on undecidable scenarios", "100%", pct(s["dont_know_on_undecidable"]),
         s["dont_know_on_undecidable"] == 1.0),
        ("Analysis: precision at confidence >= 0.7", ">= 95%",
         f"{pct(s['precision_at_0_7'])} of {s['answers_at_0_7']} answers", precision_ok),
    ]  # fmt: skip
    table = "\n".join(
        f"| {o['scenario']} | {o['stack']} | {o['family'] or 'undecidable'} | {o['error_type']} | "
        f"{o['confidence']:.2f} | {o['runbook_id'] or '-'} | {'yes' if o['correct'] else '**no**'} |"
        for o in data["outcomes"]
    )
    section = f"""## n. Analysis of fault scenarios (rules engine)

{s["scenarios"]} scripted scenarios (`bench/analysis_scenarios.py`: {s["decidable"]} showing {s["families"]}
failure families in {s["stacks"]} stacks' own wording, and {s["undecidable"]} built to be undecidable) sent
as telemetry through the OTLP/HTTP receiver (the OpenTelemetry SDK's exporters; spans where records
belong to requests) to a pipeline with the built-in agent (`bench/analysis_eval.py`). The scenarios
are written apart from the knowledge base, from what each stack prints.

| | |
|---|---|
| Root cause correct (decidable) | {pct(s["root_cause_correct"])} |
| Runbook correct (decidable) | {pct(s["runbook_correct"])} |
| "Don't know" on the undecidable | {pct(s["dont_know_on_undecidable"])} |
| Citations valid | {pct(s["citations_valid"])} of {s["citations"]} |
| Precision at confidence >= 0.7 | {pct(s["precision_at_0_7"])} ({s["answers_at_0_7"]} answers) |
| Mean confidence when right / wrong | {s["mean_confidence_right"]} / {s["mean_confidence_wrong"] or "n/a (none wrong)"} |

| Scenario | Stack | Family | Answer | Confidence | Runbook | Right |
|---|---|---|---|---|---|---|
{table}
"""
    return section, rows
