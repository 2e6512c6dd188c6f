"""A property-based run of Vigil's HTTP APIs from their own OpenAPI documents (schemathesis):
against `vigil up` as a process with its managed NATS, no answer is a 5xx and every answer
matches what the document declares (status, content type, body schema).

Bounded to fit `make test`: a few dozen examples per operation, no shrinking.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN_TOKEN
from tests.process import VigilProcess

pytestmark = pytest.mark.slow

EXAMPLES = 30
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Live:
    vigil: VigilProcess
    project_id: str
    key: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    vigil = VigilProcess(Path(tmp_path_factory.mktemp("openapi")) / "vigil")
    vigil.start()
    try:
        with httpx.Client(base_url=vigil.api_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as api:
            project = api.post("/api/v1/projects", json={"name": "fuzzed"}).json()
            key = api.post(f"/api/v1/projects/{project['id']}/api-keys", json={"name": "fuzz"}).json()["key"]
            pipeline = {"agent": {"endpoint": "builtin:error-summary"}}
            assert (
                api.put(f"/api/v1/projects/{project['id']}/pipelines/errors", json=pipeline).status_code
                == 200
            )
        yield Live(vigil, project["id"], key)
    finally:
        vigil.stop()


def run_operations(schema: Any, prepare: Callable[[Any, bool], dict[str, str]]) -> list[str]:
    """Every operation, positive and negative cases; what failed, one line per operation and mode.

    (Driven here rather than with schemathesis' pytest plugin, whose lazy schemas need a private
    attribute pytest 9 no longer has.)"""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if list(operation.body) or list(operation.query):
            # Free-form path ids and header strings cannot be made invalid: only these can.
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode), known=st.booleans())
            @BOUNDED
            def check(case: Any, known: bool) -> None:
                headers = prepare(case, known)
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

            try:
                check()
            except Unsatisfiable:
                continue  # nothing of the operation can be made invalid (free-form path ids)
            except (Exception, BaseExceptionGroup) as exc:  # collected: one run reports them all
                failures.append(f"{operation.label} [{mode.value}]: {type(exc).__name__}: {exc}"[:3000])
    return failures


def test_management_api_answers_as_documented(live: Live) -> None:
    schema = schemathesis.openapi.from_url(f"{live.vigil.api_url}/openapi.json")

    def prepare(case: Any, known: bool) -> dict[str, str]:
        # Half the cases address the project that exists, so routes get past their 404; it is
        # never deleted, so the other operations keep finding it.
        deletes_project = case.method == "DELETE" and case.path == "/api/v1/projects/{project_id}"
        if known and not deletes_project and "project_id" in (case.path_parameters or {}):
            case.path_parameters["project_id"] = live.project_id
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    failures = run_operations(schema, prepare)
    assert not failures, "\n\n".join(failures)


def test_receiver_api_answers_as_documented(live: Live) -> None:
    schema = schemathesis.openapi.from_url(f"{live.vigil.receiver_url}/openapi.json")
    failures = run_operations(schema, lambda case, known: {"X-API-Key": live.key} if known else {})
    assert not failures, "\n\n".join(failures)
