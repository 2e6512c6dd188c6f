"""The alert intake's routes are matched first (alerts come in bursts) and no other route of the
API answers their paths, whatever the method: their place among the routes changes no answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.routing import Match

from vigil.api.app import ApiContext, create_api_app
from vigil.api.auth import AdminAuth
from vigil.api.replay import Replayer
from vigil.store.db import create_engine, upgrade
from vigil.store.repo import Store
from vigil.store.sealing import SecretBox, generate_key

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
    await upgrade(url)
    store = Store(create_engine(url), SecretBox([generate_key()]))

    async def changed(project_id: str) -> None:
        return None

    async def ready() -> bool:
        return True

    replayer = Replayer(None, store, None)  # type: ignore[arg-type]  # replays nothing here
    context = ApiContext(store=store, auth=AdminAuth("t" * 32), replayer=replayer, changed=changed, ready=ready)
    try:
        yield create_api_app(context)
    finally:
        await store.close()


def matching(app: FastAPI, path: str, method: str) -> list[tuple[int, Match]]:
    scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": [], "app": app}
    found = []
    for position, route in enumerate(app.router.routes):
        match, _ = route.matches(dict(scope))
        if match != Match.NONE:
            found.append((position, match))
    return found


@pytest.mark.parametrize("source", ["alertmanager", "grafana"])
async def test_an_alert_path_is_answered_by_its_route_alone_and_first(app: FastAPI, source: str) -> None:
    path = f"/api/v1/projects/p-1/alerts/{source}"
    [(first, full)] = matching(app, path, "POST")
    assert full == Match.FULL
    assert all(p == first and m == Match.PARTIAL for method in METHODS[:1] + METHODS[2:] for p, m in matching(app, path, method))
    admin = matching(app, "/api/v1/projects/p-1/runbooks/r-1", "PUT")
    assert admin and admin[0][0] > first  # before the admin routes
