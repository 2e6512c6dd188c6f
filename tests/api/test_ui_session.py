"""The web UI's session: the admin token opens it; its cookie reads and (with the CSRF token, from
the same origin) changes; a wrong, tampered, missing or ended session reads and changes nothing."""

from __future__ import annotations

import httpx

from tests.conftest import ADMIN_TOKEN, VigilHandle


def client(vigil: VigilHandle) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=vigil.api_url, timeout=30)


async def sign_in(browser: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    answer = await browser.post("/ui/session", json={"token": ADMIN_TOKEN})
    assert answer.status_code == 200, answer.text
    return answer.json()["csrf"], answer


async def test_the_page_and_its_assets_are_served_with_strict_headers(vigil: VigilHandle) -> None:
    async with client(vigil) as browser:
        page = await browser.get("/")
        assert page.status_code == 200 and 'src="/ui/static/js/app.js"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        script = await browser.get("/ui/static/js/app.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert (await browser.get("/ui/static/../../settings.py")).status_code == 404


async def test_the_cookie_is_httponly_strict_and_opens_reads(vigil: VigilHandle) -> None:
    async with client(vigil) as browser:
        _, answer = await sign_in(browser)
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # plain HTTP here; Secure is set when the request is HTTPS
        assert ADMIN_TOKEN not in answer.headers["set-cookie"]
        assert (await browser.get("/api/v1/projects")).status_code == 200
        assert (await browser.get("/ui/session")).json()["csrf"] == answer.json()["csrf"]


async def test_wrong_or_missing_credentials_read_and_change_nothing(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    async with client(vigil) as stranger:
        wrong = await stranger.post("/ui/session", json={"token": "not-the-token"})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        for cookie in (None, "v1.9999999999.abc.forged", "garbage"):
            stranger.cookies.clear()
            if cookie:
                stranger.cookies.set("vigil_session", cookie)
            assert (await stranger.get("/api/v1/projects")).status_code == 401
            assert (await stranger.get(f"/api/v1/projects/{project_id}/incidents")).status_code == 401
            assert (await stranger.get("/ui/session")).status_code == 401
            made = await stranger.post(
                "/api/v1/projects", json={"name": "intruder"}, headers={"X-CSRF-Token": "x"}
            )
            assert made.status_code == 401
            gone = await stranger.delete(f"/api/v1/projects/{project_id}", headers={"X-CSRF-Token": "x"})
            assert gone.status_code == 401
    names = [p["name"] for p in (await vigil.api.get("/api/v1/projects")).json()]
    assert names == ["payments"]


async def test_a_tampered_cookie_is_refused(vigil: VigilHandle) -> None:
    async with client(vigil) as browser:
        await sign_in(browser)
        value = browser.cookies["vigil_session"]
        fmt, expires, nonce, signature = value.split(".")
        browser.cookies.clear()
        browser.cookies.set("vigil_session", f"{fmt}.{int(expires) + 3600}.{nonce}.{signature}")
        assert (await browser.get("/api/v1/projects")).status_code == 401


async def test_changes_with_the_cookie_need_the_csrf_token_and_the_same_origin(vigil: VigilHandle) -> None:
    async with client(vigil) as browser:
        csrf, _ = await sign_in(browser)
        missing = await browser.post("/api/v1/projects", json={"name": "no-csrf"})
        assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["message"]
        wrong = await browser.post(
            "/api/v1/projects", json={"name": "bad-csrf"}, headers={"X-CSRF-Token": "nope"}
        )
        assert wrong.status_code == 403
        # a form on another site posting to Vigil: refused even were the browser to send the cookie
        cross_site = await browser.post(
            "/api/v1/projects",
            content=b"name=evil",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"},
        )
        assert cross_site.status_code == 403
        with_token_elsewhere = await browser.post(
            "/api/v1/projects",
            json={"name": "elsewhere"},
            headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
        )
        assert with_token_elsewhere.status_code == 403
        # a large body without the token is refused before it is read
        huge = await browser.post(
            "/api/v1/projects", content=b"x" * 100_000, headers={"Content-Type": "application/json"}
        )
        assert huge.status_code == 403
        null_origin = await browser.post(
            "/api/v1/projects", json={"name": "framed"}, headers={"X-CSRF-Token": csrf, "Origin": "null"}
        )
        assert null_origin.status_code == 403
        # behind a proxy that ends TLS the page's origin is https, the request Vigil sees is http
        proxied = vigil.api_url.replace("http://", "https://")
        made = await browser.post(
            "/api/v1/projects", json={"name": "shop"}, headers={"X-CSRF-Token": csrf, "Origin": proxied}
        )
        assert made.status_code == 201, made.text
        renamed = await browser.patch(
            f"/api/v1/projects/{made.json()['id']}", json={"name": "shop-eu"}, headers={"X-CSRF-Token": csrf}
        )
        assert renamed.status_code == 200 and renamed.json()["name"] == "shop-eu"
    names = sorted(p["name"] for p in (await vigil.api.get("/api/v1/projects")).json())
    assert names == ["shop-eu"]


async def test_the_cookie_is_secure_when_the_page_is_https(vigil: VigilHandle) -> None:
    async with client(vigil) as browser:
        origin = vigil.api_url.replace("http://", "https://")  # TLS ended by a proxy in front
        answer = await browser.post("/ui/session", json={"token": ADMIN_TOKEN}, headers={"Origin": origin})
        assert answer.status_code == 200 and "secure" in answer.headers["set-cookie"].lower()


async def test_a_cross_site_sign_in_is_refused(vigil: VigilHandle) -> None:
    async with client(vigil) as browser:
        answer = await browser.post(
            "/ui/session", json={"token": ADMIN_TOKEN}, headers={"Origin": "http://evil.example"}
        )
        assert answer.status_code == 403 and "set-cookie" not in answer.headers


async def test_signing_out_ends_the_session(vigil: VigilHandle) -> None:
    async with client(vigil) as browser:
        csrf, _ = await sign_in(browser)
        value = browser.cookies["vigil_session"]
        assert (await browser.delete("/ui/session")).status_code == 403  # a change: it needs the token
        ended = await browser.delete("/ui/session", headers={"X-CSRF-Token": csrf})
        assert ended.status_code == 204 and 'vigil_session=""' in ended.headers["set-cookie"]
        browser.cookies.clear()
        browser.cookies.set("vigil_session", value)  # kept by someone who copied it
        assert (await browser.get("/api/v1/projects")).status_code == 401


async def test_the_bearer_token_still_works_without_csrf(vigil: VigilHandle) -> None:
    made = await vigil.api.post(
        "/api/v1/projects", json={"name": "cli"}, headers={"Origin": "http://elsewhere.example"}
    )
    assert made.status_code == 201
    wrong = await vigil.api.get("/api/v1/projects", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
