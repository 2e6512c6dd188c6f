"""Credentials never shown: URLs masked, error texts scrubbed and capped."""

from __future__ import annotations

import pytest

from vigil.errors import DeliveryError
from vigil.masking import ERROR_TEXT_MAX, mask_url, mask_urls_in_text, scrub


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://user:pa55@agent.example.com:8443/hook", "https://***:***@agent.example.com:8443/hook"),
        ("https://ghp_tokenasuser@git.example.com/x", "https://***@git.example.com/x"),
        (
            "http://h/p?token=abc&page=2&api_key=k&X-Amz-Signature=f&sig=s&access_token=t",
            "http://h/p?token=***&page=2&api_key=***&X-Amz-Signature=***&sig=***&access_token=***",
        ),
        (
            "http://h/p?client_secret=x&password=y&auth=z#frag",
            "http://h/p?client_secret=***&password=***&auth=***#frag",
        ),
        ("http://h/?access%5Ftoken=x", "http://h/?access%5Ftoken=***"),
        ("nats://a:b@h1:4222,nats://c:d@h2:4222", "nats://***:***@h1:4222,nats://***:***@h2:4222"),
        ("http://agent:8080/process?batch=1", "http://agent:8080/process?batch=1"),
        ("builtin:error-summary", "builtin:error-summary"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_urls_in_free_text_are_masked() -> None:
    text = "connect to http://u:secretpw@10.0.0.1:9000/x?token=tok1 failed; retry http://ok/"
    assert mask_urls_in_text(text) == (
        "connect to http://***:***@10.0.0.1:9000/x?token=*** failed; retry http://ok/"
    )


def test_scrub_redacts_secret_looking_text_and_caps_length() -> None:
    body = '{"password": "hunter2", "auth": "Bearer abcdefghijklmnopqrstuvwxyz0123"} ' + "x" * 5000
    scrubbed = scrub(f"agent http://u:pw@h/?token=t: HTTP 400: {body}\x00\r\n")
    assert "hunter2" not in scrubbed and "abcdefghijklmnopqrstuvwxyz0123" not in scrubbed
    assert ":pw@" not in scrubbed and "token=t" not in scrubbed
    assert len(scrubbed) == ERROR_TEXT_MAX and scrubbed.endswith("…")
    assert "\x00" not in scrubbed and "\n" not in scrubbed


def test_delivery_errors_are_scrubbed_wherever_they_come_from() -> None:
    error = DeliveryError("POST http://admin:letmein@agent/x?api_key=k1 -> token=abc123", retryable=True)
    assert "letmein" not in str(error) and "k1" not in str(error) and "abc123" not in str(error)
