"""Drafts, refs and idempotency tokens: what every system shares."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from vigil.errors import DeliveryError, TicketError
from vigil.tickets.base import TEXT_MAX, TicketDraft, TicketRef, idempotency_token, merge_labels


def test_a_draft_takes_a_title_a_markdown_body_and_portable_labels() -> None:
    draft = TicketDraft(title="Checkout errors", body="**12%** 5xx", labels=["sev1", "team::payments"])
    assert draft.labels == ["sev1", "team::payments"]
    assert TicketDraft(title="t").body == ""


@pytest.mark.parametrize(
    "fields",
    [
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 256},
        {"title": "two\nlines"},
        {"title": "t", "body": "x" * (TEXT_MAX + 1)},
        {"title": "t", "labels": ["two words"]},
        {"title": "t", "labels": ["a,b"]},
        {"title": "t", "labels": ["x" * 51]},
        {"title": "t", "labels": [""]},
        {"title": "t", "assignee": "someone"},
    ],
)
def test_a_draft_no_system_would_take_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TicketDraft.model_validate(fields)


def test_a_ref_survives_a_trip_through_json() -> None:
    ref = TicketRef(
        system="jira", project="OPS", id="10100", key="OPS-1", url="https://acme.atlassian.net/browse/OPS-1"
    )
    assert TicketRef.model_validate_json(ref.model_dump_json()) == ref
    with pytest.raises(ValidationError):
        TicketRef.model_validate(ref.model_dump() | {"system": "trello"})


def test_the_idempotency_token_is_stable_distinct_and_safe_everywhere() -> None:
    token = idempotency_token("workflow 42: open ticket")
    assert token == idempotency_token("workflow 42: open ticket")
    assert token != idempotency_token("workflow 43: open ticket")
    assert re.fullmatch(r"vigil-[0-9a-f]{32}", token)
    for bad in ("", "x" * 1001):
        with pytest.raises(ValueError, match="idempotency key"):
            idempotency_token(bad)


def test_labels_merge_once_each_in_order() -> None:
    assert merge_labels(["vigil", "incident"], ["sev1", "incident"], []) == ["vigil", "incident", "sev1"]


def test_a_ticket_error_is_a_delivery_error_saying_whether_to_retry() -> None:
    error = TicketError("github open: HTTP 503", retryable=True, status=503, system="github", retry_after=2.0)
    assert isinstance(error, DeliveryError)
    assert (error.retryable, error.status, error.system, error.retry_after) == (True, 503, "github", 2.0)
