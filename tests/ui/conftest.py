"""The web UI's end-to-end fixtures: Debian's chromium driven by Playwright (installed with apt
where missing), axe-core from the npm registry (into a cache directory, never the repository),
and a running Vigil to sign in to."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import ADMIN_TOKEN, VigilHandle

CHROMIUM = Path(os.environ.get("VIGIL_TEST_CHROMIUM", "/usr/bin/chromium"))
AXE_VERSION = "4.10"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vigil-tests"


@contextmanager
def _installing(what: str) -> Iterator[None]:
    """One installer at a time across the test workers (each is its own session): a second apt-get
    would find dpkg locked, a second npm would write into the same directory."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{what}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _install_chromium() -> str | None:
    """None when chromium is there (installed now if need be), else why it cannot be."""
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install Debian's chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            return f"`{' '.join(command)}` failed: {done.stderr.strip()[-500:]}"
    return None if CHROMIUM.exists() else f"apt-get installed chromium, yet {CHROMIUM} is missing"


@pytest.fixture(scope="session")
def chromium() -> str:
    with _installing("chromium"):
        problem = _install_chromium()
    if problem is not None:
        pytest.skip(f"the web UI's browser tests need Debian's chromium: {problem}")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's script, installed from the npm registry into a cache directory on first use."""
    target = CACHE / "axe"
    script = target / "node_modules" / "axe-core" / "axe.min.js"
    with _installing("axe"):
        _install_axe(target, script)
    return script.read_text()


def _install_axe(target: Path, script: Path) -> None:
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("the accessibility check needs npm to install axe-core")
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--prefix", str(target), "--no-audit", "--no-fund", f"axe-core@{AXE_VERSION}"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0 or not script.exists():
            pytest.skip(f"axe-core could not be installed from the npm registry: {done.stderr[-500:]}")


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def new_page(browser: Browser, width: int = 1280, height: int = 900) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    page.set_default_timeout(20_000)
    return page


async def sign_in(page: Page, vigil: VigilHandle, token: str = ADMIN_TOKEN) -> None:
    await page.goto(f"{vigil.api_url}/")
    await page.get_by_label("Admin token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    if token == ADMIN_TOKEN:
        await page.get_by_role("heading", name="Overview").wait_for()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    opened = await new_page(browser)
    yield opened
    await opened.context.close()
