"""Who can use the UI: a wrong token opens nothing, a page of another site cannot make Vigil change
anything, and the keyboard alone reaches every page and form."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import VigilHandle
from tests.doubles._server import LocalServer, Reply
from tests.ui.conftest import new_page, sign_in

pytestmark = pytest.mark.slow


class CrossSitePage(LocalServer):
    """Another site's page whose form posts to Vigil as soon as it loads (text/plain shaped as JSON,
    the classic way round a JSON API's content type)."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, str | None]:
        page = f"""<!doctype html><html lang="en"><body>
<form id="f" method="post" action="{self.target}" enctype="text/plain">
<input type="hidden" name='{{"name":"evil","x":"' value='"}}'></form>
<script>document.getElementById("f").submit()</script></body></html>"""
        return (200, page.encode(), {"content-type": "text/html"}), None


async def test_a_wrong_token_opens_nothing(vigil: VigilHandle, page: Page) -> None:
    await vigil.project_with_key()
    await sign_in(page, vigil, token="not-the-admin-token")
    await expect(page.get_by_role("alert")).to_have_text("That token is not the admin token.")
    await expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    status = await page.evaluate("fetch('/api/v1/projects').then(r => r.status)")
    changed = await page.evaluate(
        """fetch('/api/v1/projects', {method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({name: 'intruder'})}).then(r => r.status)"""
    )
    assert (status, changed) == (401, 401)
    assert [p["name"] for p in (await vigil.api.get("/api/v1/projects")).json()] == ["payments"]


async def test_a_cross_site_form_post_is_refused(vigil: VigilHandle, page: Page) -> None:
    await sign_in(page, vigil)  # the browser holds a session cookie for Vigil
    with CrossSitePage(f"{vigil.api_url}/api/v1/projects") as evil:
        other_site = evil.base_url.replace("127.0.0.1", "localhost")
        async with page.expect_response(f"{vigil.api_url}/api/v1/projects") as posted:
            await page.goto(f"{other_site}/")
        answer = await posted.value
        assert answer.status in (401, 403), answer.status
    assert (await vigil.api.get("/api/v1/projects")).json() == []


async def test_the_keyboard_alone_signs_in_and_works_the_narrow_layout(
    vigil: VigilHandle, browser: Browser
) -> None:
    page = await new_page(browser, width=390, height=844)
    try:
        await page.goto(f"{vigil.api_url}/")
        await expect(page.get_by_label("Admin token")).to_be_focused()
        from tests.conftest import ADMIN_TOKEN

        await page.keyboard.type(ADMIN_TOKEN)
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        await expect(page.get_by_role("link", name="Projects")).to_be_hidden()  # folded behind Menu

        async def tab_to(name: str, limit: int = 60) -> None:
            for _ in range(limit):
                await page.keyboard.press("Tab")
                focused = await page.evaluate(
                    "(() => { const e = document.activeElement; return (e.labels && e.labels[0] ? e.labels[0].textContent : e.textContent || '').trim(); })()"
                )
                if focused == name:
                    return
            raise AssertionError(f"Tab never reached {name!r}")

        await tab_to("Menu")
        await page.keyboard.press("Enter")
        await tab_to("Projects")
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="Projects and API keys")).to_be_visible()
        await tab_to("New project's name")
        await page.keyboard.type("shop")
        await page.keyboard.press("Enter")
        await expect(page.get_by_text("shop (selected)")).to_be_visible()
        await tab_to("Create key")
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("button", name="Copy key")).to_be_focused()
        assert [p["name"] for p in (await vigil.api.get("/api/v1/projects")).json()] == ["shop"]
    finally:
        await page.context.close()
