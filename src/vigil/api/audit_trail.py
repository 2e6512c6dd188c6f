"""Configuration changes made through the API, into the audit log: every successful change to a
project's keys, pipelines, sinks and dead letters, and a project's deletion; test batches sent to
a pipeline's agent or through a sink as `test.pipeline` and `test.sink`. (Runbooks, workflow
policies and approvals write their own, richer entries.)"""

from __future__ import annotations

import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.store.workflow_repo import WorkflowRepo

log = logging.getLogger(__name__)

_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_AUDITED = re.compile(
    r"^/api/v1/projects/(?P<project>[^/]+)(?:/(?P<resource>api-keys|pipelines|sinks|dead-letters)(?:/(?P<subject>.*))?)?$"
)


class AuditTrail:
    def __init__(self, app: ASGIApp, *, repo: WorkflowRepo) -> None:
        self._app = app
        self._repo = repo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = _AUDITED.match(scope["path"]) if scope["type"] == "http" else None
        if found is None or scope["method"] not in _CHANGES:
            await self._app(scope, receive, send)
            return
        if found["resource"] is None and scope["method"] != "DELETE":
            await self._app(scope, receive, send)
            return
        status = 0

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self._app(scope, receive, watching)
        if 200 <= status < 300:
            resource = (found["resource"] or "project").rstrip("s").replace("-", "_")
            subject = found["subject"] or found["project"]
            # a test batch changes nothing: it is recorded as what it is
            kind = f"test.{resource}" if subject.endswith("/test") else f"config.{resource}"
            try:
                await self._repo.audit(
                    found["project"],
                    "admin",
                    kind,
                    subject.removesuffix("/test")[:200],
                    {"method": scope["method"], "path": scope["path"], "status": status},
                )
            except Exception:  # the change is made: its audit entry must not turn it into an error
                log.exception("audit entry not written", extra={"path": scope["path"]})
