"""Credentials out of everything Vigil shows: URLs masked, error texts scrubbed and capped.

`mask_url` is the one place that decides what of a URL is a secret (its userinfo, and query
parameters named like credentials); logs, errors, dead letters and API answers all go through it.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

if TYPE_CHECKING:
    from vigil.pipeline.redact import Redactor

MASK = "***"

ERROR_TEXT_MAX = 1024
"""The longest error text stored (dead letters, batch errors) or logged for one delivery."""

_SECRET_PARAMS = frozenset({"key", "sig", "pwd", "pass", "code", "jwt"})
"""Short names that are credentials only as whole names (`sig` of an Azure SAS, `key` of Google APIs)."""

_SECRET_PARTS = (
    "token",
    "secret",
    "passw",
    "signature",
    "credential",
    "apikey",
    "api_key",
    "auth",
    "session",
    "private",
)
"""A query parameter whose name holds one of these is a credential (access_token, X-Amz-Signature)."""

_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*://"
_URL_IN_TEXT = re.compile(_SCHEME + r"[^\s\"'<>`]+")
_URL_LIST_SPLIT = re.compile(r",(?=" + _SCHEME + ")")


def is_secret_param(name: str) -> bool:
    lowered = name.strip().lower().replace("-", "_")
    if lowered in _SECRET_PARAMS or lowered.endswith(("_key", "_sig", "key")):
        return True
    return any(part in lowered for part in _SECRET_PARTS)


def mask_url(url: str) -> str:
    """`url` with its userinfo and credential-like query values replaced by `***`.

    A comma-separated list of URLs (NATS server lists) is masked URL by URL. Parsing is by hand,
    not `urlsplit`, so that a URL too broken to parse (or already redacted) is masked all the same.
    """
    if "," in url and _URL_LIST_SPLIT.search(url):
        return ",".join(mask_url(part) for part in _URL_LIST_SPLIT.split(url))
    match = _PARTS.match(url)
    if match is None:  # no `//`: no authority, only a query may hold a secret
        scheme, authority, rest = "", "", url
    else:
        scheme, authority, rest = match.group("scheme"), match.group("authority"), match.group("rest")
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        authority = f"{MASK}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    path, hash_, fragment = rest.partition("#")
    path, question, query = path.partition("?")
    if query:
        query = _mask_query(query)
    return f"{scheme}{authority}{path}{question}{query}{hash_}{fragment}"


_PARTS = re.compile(
    r"(?P<scheme>(?:[A-Za-z][A-Za-z0-9+.-]*:)?//)(?P<authority>[^/?#]*)(?P<rest>.*)", re.DOTALL
)


def _mask_query(query: str) -> str:
    pairs = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        if eq and value and is_secret_param(unquote_plus(name)):
            pairs.append(f"{name}={MASK}")
        else:
            pairs.append(pair)
    return "&".join(pairs)


def mask_urls_in_text(text: str) -> str:
    """Every URL found in free text (an error message, a log line) masked with `mask_url`."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group()), text)


@lru_cache(maxsize=1)
def _redactor() -> Redactor:
    from vigil.pipeline.redact import RedactionSpec, Redactor

    # Personal data is not the concern here, and an address in an error ("no such user x@y") helps.
    rules = [name for name in _builtin_rule_names() if name not in ("email", "card_number")]
    return Redactor(RedactionSpec(rules=rules))


def _builtin_rule_names() -> list[str]:
    from vigil.pipeline.redact import RULES_BY_NAME

    return list(RULES_BY_NAME)


def scrub(text: str, limit: int = ERROR_TEXT_MAX) -> str:
    """An error text fit to log, store and show: URLs masked, anything secret-looking (tokens,
    passwords, keys: the pipeline redaction engine's built-in rules) redacted, control characters
    flattened, and cut to `limit` characters."""
    text, _ = _redactor().redact_text(text)
    # After redaction, which also labels what it finds inside URLs: the URL masks are the same
    # whether a URL came in masked already or not.
    text = mask_urls_in_text(text)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


class UrlMaskingFilter(logging.Filter):
    """Masks URLs in the records of a logger that logs them (httpx logs every request's URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_urls_in_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def mask_urls_logged_by(logger: logging.Logger) -> None:
    if not any(isinstance(f, UrlMaskingFilter) for f in logger.filters):
        logger.addFilter(UrlMaskingFilter())
