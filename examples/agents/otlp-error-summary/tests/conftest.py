"""Make the agent importable as it is when run from its own folder (`uvicorn main:app`), and the
repository's test doubles too."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).parent
AGENT = TESTS.parent
REPO_ROOT = AGENT.parents[2]

# The root config imports tests with --import-mode=importlib, which puts neither folder on sys.path.
for folder in (AGENT, TESTS):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

# The repository's model-server doubles (`tests.doubles`), importable when these tests run alone.
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))
