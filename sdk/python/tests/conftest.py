"""Fixtures for the SDK tests; the fake server module lives beside this file."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The root config imports tests with --import-mode=importlib, which does not put this folder on sys.path.
sys.path.insert(0, str(Path(__file__).parent))

from fake_vigil_server import FakeVigil

# The engines tests use the repository's model-server doubles (tests/doubles); the root on the path
# makes `tests.doubles` importable when these tests run on their own.
_REPO_ROOT = Path(__file__).parents[3]
if str(_REPO_ROOT) not in sys.path:
    sys.path.append(str(_REPO_ROOT))


@pytest.fixture
def vigil_server() -> Iterator[FakeVigil]:
    with FakeVigil() as server:
        yield server


@pytest.fixture
def closed_port_url() -> str:
    """A URL on which nothing listens, so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
