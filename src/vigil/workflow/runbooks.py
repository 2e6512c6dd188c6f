"""Runbooks: what people configured Vigil may do about a problem. A model never writes a command;
it can only choose among these runbooks' steps.

A runbook says what it matches (alert labels, services, error types, template ids, signal
kinds), its steps (an action, its parameters, whether the runbook fails without it, and its
inverse where one exists), the tier it needs, and how to verify that the problem cleared.

    id: restart-checkout
    title: Restart checkout when its error rate spikes
    match:
      alert_labels: {alertname: CheckoutErrors}
      services: [checkout]
      signal_kinds: [error_rate_spike]
    tier: supervised
    steps:
      - action: kubernetes.rollout_restart
        params: {namespace: shop, deployment: checkout}
    verify:
      after_s: 120
      promql: sum(rate(http_requests_total{service="checkout",code=~"5.."}[2m])) < 1
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vigil.actions.base import ActionName, ActionStep
from vigil.alerts.models import Tier
from vigil.errors import ValidationFailed
from vigil.pipeline.user_regex import UserRegex, check_pattern

RUNBOOK_ID = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
TIER_RANK = {"autonomous": 0, "supervised": 1, "human_only": 2}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelMatch(_Strict):
    regex: str = Field(max_length=1000)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        check_pattern(value)
        return value


class RunbookMatch(_Strict):
    """Every criterion given must hold (any listed value will do); a runbook that names more of
    them ranks above one that names fewer."""

    alert_labels: dict[str, str | LabelMatch] = Field(default_factory=dict, max_length=50)
    services: list[str] = Field(default_factory=list, max_length=100)
    error_types: list[str] = Field(default_factory=list, max_length=100)
    template_ids: list[str] = Field(default_factory=list, max_length=1000)
    signal_kinds: list[str] = Field(default_factory=list, max_length=20)


class RunbookStep(_Strict):
    action: ActionName = Field(description="e.g. kubernetes.rollout_restart; see the actions reference")
    params: dict[str, Any] = Field(default_factory=dict)
    required: bool = Field(default=True, description="A failed required step fails the runbook.")
    inverse: Literal["auto", "none"] | RunbookStep = Field(
        default="auto", description="auto: the action's own inverse (scale back, rollout undo)."
    )
    name: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _params_fit_the_action(self) -> RunbookStep:
        self.action_step()  # the action's own params model checks them
        return self

    def action_step(self) -> ActionStep:
        return ActionStep(action=self.action, params=self.params, required=self.required)


class VerifySpec(_Strict):
    after_s: float = Field(default=60.0, ge=0, le=86_400, description="Wait before checking.")
    alert_resolved: bool = Field(default=True, description="For alerts: the alert must have resolved.")
    signal_gone: bool = Field(default=True, description="For detected incidents: no new signal.")
    promql: str | None = Field(default=None, max_length=4000, description="Must return a non-empty result.")
    timeout_s: float = Field(default=300.0, gt=0, le=86_400, description="How long to wait for it to hold.")


class RunbookSpec(_Strict):
    title: str = Field(default="", max_length=300)
    description: str = Field(default="", max_length=10_000)
    match: RunbookMatch = Field(default_factory=RunbookMatch)
    tier: Tier = Field(default="supervised", description="The least supervision this runbook runs with.")
    steps: list[RunbookStep] = Field(min_length=1, max_length=20)
    verify: VerifySpec = Field(default_factory=VerifySpec)

    @model_validator(mode="after")
    def _one_of_each(self) -> RunbookSpec:
        names = [step.name for step in self.steps if step.name]
        if len(names) != len(set(names)):
            raise ValueError("step names must differ")
        return self


class Runbook(_Strict):
    id: str = Field(pattern=RUNBOOK_ID)
    spec: RunbookSpec


class MatchContext(BaseModel):
    """What is known of a problem when runbooks are matched."""

    alert_labels: dict[str, str] = {}
    services: list[str] = []
    error_types: list[str] = []
    template_ids: list[str] = []
    signal_kinds: list[str] = []


def score(match: RunbookMatch, context: MatchContext) -> int | None:
    """How many criteria the runbook names and the context meets; None when one is not met."""
    met = 0
    for name, wanted in match.alert_labels.items():
        value = context.alert_labels.get(name)
        if value is None:
            return None
        if isinstance(wanted, LabelMatch):
            if not UserRegex(wanted.regex).search(value):
                return None
        elif value != wanted:
            return None
        met += 1
    for field in ("services", "error_types", "template_ids", "signal_kinds"):
        wanted_values: list[str] = getattr(match, field)
        if not wanted_values:
            continue
        if not set(wanted_values) & set(getattr(context, field)):
            return None
        met += 1
    return met


def ranked(runbooks: list[Runbook], context: MatchContext) -> list[tuple[Runbook, int]]:
    """The runbooks that match, the most specific first (then by id)."""
    found = [(runbook, s) for runbook in runbooks if (s := score(runbook.spec.match, context)) is not None]
    return sorted(found, key=lambda pair: (-pair[1], pair[0].id))


def parse_runbook(text: str, source: str, runbook_id: str | None = None) -> Runbook:
    """A runbook from YAML; its id from the document or, failing that, `runbook_id`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValidationFailed(f"{source}: a runbook is a mapping with id, match, steps, ...")
    ident = data.pop("id", None) or runbook_id
    try:
        return Runbook(id=ident, spec=RunbookSpec.model_validate(data))
    except ValidationError as exc:
        raise invalid(exc, f"{source}: ") from exc


def invalid(exc: ValidationError, prefix: str = "") -> ValidationFailed:
    """A validation error as the API words it; of a union's alternatives, the deepest error
    (the one that got furthest) is the one named."""
    errors = exc.errors()
    first = max(errors, key=lambda e: len(e["loc"]))
    where = ".".join(str(p) for p in first["loc"])
    problems = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in errors]
    return ValidationFailed(f"{prefix}{where}: {first['msg']}", details={"errors": problems})


def load_folder(folder: Path) -> dict[str, list[Runbook]]:
    """Runbooks from `<folder>/<project name or id>/<runbook id>.yaml`, by project."""
    found: dict[str, list[Runbook]] = {}
    for path in sorted(folder.glob("*/*.y*ml")):
        runbook = parse_runbook(path.read_text(), str(path), path.stem)
        found.setdefault(path.parent.name, []).append(runbook)
    return found


RunbookStep.model_rebuild()
