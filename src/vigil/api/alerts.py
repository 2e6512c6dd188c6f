"""Alert intake (contract): `POST /api/v1/projects/{project_id}/alerts/alertmanager` and
`.../alerts/grafana`, authenticated by a key of that project (`X-API-Key`, or
`Authorization: Bearer` as Alertmanager's `http_config` sends it) or the admin token; answered
`202` with the incidents they touched, once stored."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header

from vigil.alerts.intake import AlertIntake
from vigil.alerts.models import Source, WebhookNotification
from vigil.api.auth import AdminAuth
from vigil.api.errors import API_ERRORS
from vigil.errors import Forbidden, Unauthorized
from vigil.receivers.keys import KeyResolver, key_from_headers
from vigil.store.repo import Store

log = logging.getLogger(__name__)

ALERT_PATH = re.compile(r"^/api/v1/projects/(?P<project>[^/]+)/alerts/[a-z]+/?$")


class AlertCallers:
    """Who may post a project's alerts: a key of that project, or the admin."""

    def __init__(self, keys: KeyResolver, admin: AdminAuth) -> None:
        self._keys = keys
        self._admin = admin

    async def check(self, project_id: str, x_api_key: str | None, authorization: str | None) -> None:
        if x_api_key is None and authorization is not None:
            try:
                self._admin.check(authorization)
                return
            except Unauthorized:
                pass  # a project key sent as a bearer token
        owner = await self._keys.project_for(key_from_headers(x_api_key, authorization))
        if owner != project_id:
            raise Forbidden("this API key belongs to another project", details={"project_id": project_id})


OnIncidents = Callable[[str, list[dict[str, Any]]], Awaitable[None]]
"""(project, incidents as stored) that a notification opened or reopened: the workflow starts them."""


def alerts_router(store: Store, callers: AlertCallers, on_opened: OnIncidents | None = None) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["alerts"], responses=API_ERRORS)
    intake = AlertIntake(store)

    async def accept(
        project_id: str,
        source: Source,
        body: WebhookNotification,
        x_api_key: str | None,
        authorization: str | None,
    ) -> dict[str, Any]:
        await callers.check(project_id, x_api_key, authorization)
        touched = await intake.accept(project_id, source, body)
        opened = [t.incident for t in touched if t.change in ("opened", "reopened")]
        if opened and on_opened is not None:
            try:
                await on_opened(project_id, opened)
            except Exception:  # stored already: the workflow's sweep starts them
                log.exception("workflow start deferred to the sweep", extra={"project": project_id})
        return {
            "accepted": len(body.alerts),
            "incidents": [t.out() for t in touched],
        }

    @router.post("/projects/{project_id}/alerts/alertmanager", status_code=202)
    async def alertmanager(
        project_id: str,
        body: WebhookNotification,
        x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """Alertmanager's webhook (version 4): firing alerts open or join an incident, resolved
        ones resolve it."""
        return await accept(project_id, "alertmanager", body, x_api_key, authorization)

    @router.post("/projects/{project_id}/alerts/grafana", status_code=202)
    async def grafana(
        project_id: str,
        body: WebhookNotification,
        x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """Grafana unified alerting's webhook contact point."""
        return await accept(project_id, "grafana", body, x_api_key, authorization)

    return router
