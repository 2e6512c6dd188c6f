"""Remediation actions behind one interface: Kubernetes, Docker, an HTTP call, and notify-only.

Each reads the system in `plan` (a dry run that changes nothing) and acts in `execute` at most once
per idempotency key; the project's `ActionPolicy` keeps every kind off and dry-run until enabled and
names what it may touch. A model never writes a command: runbooks are lists of `ActionStep`s.
"""

from __future__ import annotations

from vigil.actions.base import (
    Action,
    ActionError,
    ActionKind,
    ActionName,
    ActionRefused,
    ActionResult,
    ActionStep,
    DryRun,
    inverse,
)
from vigil.actions.context import ActionContext
from vigil.actions.http import check_outbound_url
from vigil.actions.ledger import ActionLedger, FileLedger, MemoryLedger
from vigil.actions.policy import (
    ActionPolicy,
    DockerConnection,
    DockerPolicy,
    HttpPolicy,
    KubernetesConnection,
    KubernetesPolicy,
)
from vigil.actions.registry import ACTIONS, execute, get_action, plan

__all__ = [
    "ACTIONS",
    "Action",
    "ActionContext",
    "ActionError",
    "ActionKind",
    "ActionLedger",
    "ActionName",
    "ActionPolicy",
    "ActionRefused",
    "ActionResult",
    "ActionStep",
    "DockerConnection",
    "DockerPolicy",
    "DryRun",
    "FileLedger",
    "HttpPolicy",
    "KubernetesConnection",
    "KubernetesPolicy",
    "MemoryLedger",
    "check_outbound_url",
    "execute",
    "get_action",
    "inverse",
    "plan",
]
