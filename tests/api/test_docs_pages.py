"""/docs and /redoc work without internet: every script, style sheet, icon and the OpenAPI document
they load come from Vigil's own API server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import VigilHandle

URL_IN_PAGE = re.compile(
    r"""(?:src|href)\s*=\s*["']([^"']+)["']|(?:url|spec-url)\s*:?\s*=?\s*["']([^"']+)["']"""
)
EXPECTED_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


def urls_in(page: str) -> list[str]:
    return [a or b for a, b in URL_IN_PAGE.findall(page)]


@pytest.mark.parametrize(
    ("page", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]
)
async def test_docs_pages_load_everything_from_the_api_server(
    vigil: VigilHandle, page: str, script: str
) -> None:
    response = await vigil.api.get(page, headers={"Authorization": ""})
    assert response.status_code == 200, response.text
    html = response.text
    assert "cdn." not in html and "fonts.googleapis" not in html, html
    assert not re.search(r"""(?:src|href|url)\s*[:=]\s*["']?(?:https?:)?//""", html), html
    urls = urls_in(html)
    assert any(url.endswith(script) for url in urls), urls
    assert any(url.endswith("/openapi.json") for url in urls), urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = await vigil.api.get(url, headers={"Authorization": ""})
        assert asset.status_code == 200, url
        suffix = url[url.rfind(".") :]
        if suffix in EXPECTED_TYPES:
            assert EXPECTED_TYPES[suffix] in asset.headers["content-type"], (url, asset.headers)
            assert len(asset.content) > 1000 or suffix == ".json", url


async def test_swagger_ui_bundle_reads_openapi_3_1(vigil: VigilHandle) -> None:
    """FastAPI writes OpenAPI 3.1, which Swagger UI renders from version 5 on."""
    spec = (await vigil.api.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    bundle = (await vigil.api.get("/docs/assets/swagger-ui-bundle.js")).text
    assert re.search(r'"5\.\d+\.\d+"', bundle)


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


async def test_every_reference_in_the_openapi_document_resolves_from_its_root(vigil: VigilHandle) -> None:
    """ReDoc reads `#/...` against the document's root: nested `$defs` (a runbook's schema, given
    whole) are moved to the components."""
    spec = (await vigil.api.get("/openapi.json")).json()
    refs = set(refs_in(spec))
    assert "#/components/schemas/RunbookStep" in refs
    for ref in refs:
        node: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict) and part in node, ref
            node = node[part]
    assert "$defs" not in str(spec)
