"""Secrets at rest: the agents' headers, webhook secrets and headers, and Slack webhook URLs are
stored encrypted (Fernet: AES-128-CBC with HMAC-SHA256) with a key kept apart from the database.

A sealed value is stored as `{"$sealed": "<Fernet token>"}` in place of the string, so a plain
string left by an older version is told apart without guessing, and a reader that forgot to open
the spec fails validation instead of sending ciphertext as a header.

Several keys may be given (comma-separated): the first encrypts, every one decrypts, which is how a
key is rotated (see docs/security.md).
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from vigil.errors import VigilError

log = logging.getLogger(__name__)

SEALED = "$sealed"
_OPENED_MAX = 100_000
KEY_FILE = "secret.key"
Table = Literal["pipelines", "sinks", "policies"]


class SecretKeyError(VigilError):
    """The secret key is missing or malformed, or cannot open a stored secret."""

    status = 500
    code = "secret_key"


def generate_key() -> str:
    return Fernet.generate_key().decode()


def _fernet(key: str) -> Fernet:
    """A 32-byte key in base64, standard or URL-safe alphabet (`openssl rand -base64 32` works)."""
    text = key.strip()
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError) as exc:
        raise SecretKeyError(
            "a secret key is not base64; make one with `vigil secrets generate-key`"
        ) from exc
    if len(raw) != 32:
        raise SecretKeyError(
            f"a secret key must be 32 bytes in base64 (this one is {len(raw)}); "
            "make one with `vigil secrets generate-key`"
        )
    return Fernet(base64.urlsafe_b64encode(raw))


def parse_keys(text: str) -> list[str]:
    keys = [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
    if not keys:
        raise SecretKeyError("the secret key is empty")
    return keys


class SecretBox:
    """Seals and opens single string values with the first of `keys`; any of them opens."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretKeyError("no secret key given")
        fernets = [_fernet(key) for key in keys]
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)
        self._opened: dict[str, str] = {}
        """Tokens already decrypted: every config reload reads every spec again."""

    @classmethod
    def generate(cls) -> SecretBox:
        """A box with a fresh random key, for state that lives only as long as the process."""
        return cls([generate_key()])

    def seal(self, value: str) -> dict[str, str]:
        return {SEALED: self._primary.encrypt(value.encode()).decode()}

    def open(self, value: Any, *, where: str = "") -> Any:
        """The plain value of a sealed one; a plain string (stored before encryption) as is."""
        if not is_sealed(value):
            return value
        token: str = value[SEALED]
        known = self._opened.get(token)
        if known is not None:
            return known
        try:
            plain = self._all.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyError(
                f"a stored secret{' of ' + where if where else ''} cannot be decrypted with the "
                "configured secret keys (VIGIL_SECRET_KEY / the key file): was the key replaced "
                "instead of rotated?"
            ) from exc
        if len(self._opened) >= _OPENED_MAX:
            self._opened.clear()
        self._opened[token] = plain
        return plain

    def is_current(self, value: Any) -> bool:
        """Sealed with the first key (nothing to rotate)."""
        if not is_sealed(value):
            return False
        try:
            self._primary.decrypt(value[SEALED].encode())
        except InvalidToken:
            return False
        return True


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {SEALED} and isinstance(value[SEALED], str)


def _slots(table: Table, spec: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Where the secrets of a stored spec are: (the dict holding one, its key)."""
    if table == "policies":
        yield from _policy_slots(spec)
        return
    if table == "pipelines":
        agent = spec.get("agent")
        headers = agent.get("headers") if isinstance(agent, dict) else None
        if isinstance(headers, dict):
            yield from ((headers, name) for name in headers)
        return
    kind = spec.get("type")
    if kind == "webhook":
        if spec.get("secret") is not None:
            yield spec, "secret"
        headers = spec.get("headers")
        if isinstance(headers, dict):
            yield from ((headers, name) for name in headers)
    elif kind == "slack" and "webhook_url" in spec:
        yield spec, "webhook_url"


def _policy_slots(spec: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """A workflow policy's secrets: the cluster's token, the ticket system's token or API key."""
    actions = spec.get("actions")
    kubernetes = actions.get("kubernetes") if isinstance(actions, dict) else None
    connection = kubernetes.get("connection") if isinstance(kubernetes, dict) else None
    if isinstance(connection, dict) and connection.get("token") is not None:
        yield connection, "token"
    tickets = spec.get("tickets")
    if isinstance(tickets, dict):
        for key in ("token", "api_key"):
            if tickets.get(key) is not None:
                yield tickets, key


def _copy_holders(table: Table, spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of `spec` whose dicts holding secrets are new (the rest is shared, and read only):
    a deep copy would cost more than the decryption on every config reload."""
    if table == "policies":
        return copy.deepcopy(spec)  # small, and read only when a workflow step needs it
    out = dict(spec)
    if table == "pipelines":
        agent = out.get("agent")
        if isinstance(agent, dict):
            agent = out["agent"] = dict(agent)
            if isinstance(agent.get("headers"), dict):
                agent["headers"] = dict(agent["headers"])
    elif isinstance(out.get("headers"), dict):
        out["headers"] = dict(out["headers"])
    return out


def seal_spec(box: SecretBox, table: Table, spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of `spec` (plain, as `reveal` gives it) with its secrets sealed."""
    sealed = _copy_holders(table, spec)
    for holder, key in _slots(table, sealed):
        if isinstance(holder[key], str):
            holder[key] = box.seal(holder[key])
    return sealed


def open_spec(box: SecretBox, table: Table, spec: dict[str, Any], *, where: str = "") -> dict[str, Any]:
    opened = _copy_holders(table, spec)
    for holder, key in _slots(table, opened):
        holder[key] = box.open(holder[key], where=where)
    return opened


def needs_sealing(box: SecretBox, table: Table, spec: dict[str, Any], *, rotate: bool) -> bool:
    """Some secret of `spec` is in plain text (or, with `rotate`, not sealed with the first key)."""
    for holder, key in _slots(table, spec):
        value = holder[key]
        if isinstance(value, str) or (rotate and not box.is_current(value)):
            return True
    return False


def load_secret_box(
    configured: str | None, key_file: Path | None, data_dir: Path, *, create: bool
) -> tuple[SecretBox, Path | None]:
    """The box from `configured` keys, else from `key_file`, else from `<data_dir>/secret.key`
    (generated there, readable by its owner only, when `create`). Returns the file it came from."""
    if configured:
        return SecretBox(parse_keys(configured)), None
    path = key_file if key_file is not None else data_dir / KEY_FILE
    if not path.exists():
        if key_file is not None or not create:
            raise SecretKeyError(
                f"no secret key: set VIGIL_SECRET_KEY (the same on every service sharing the "
                f"database) or VIGIL_SECRET_KEY_FILE; {path} does not exist. "
                "Make a key with `vigil secrets generate-key`."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        if _create_key_file(path):
            log.warning(
                "generated the secret key that encrypts stored secrets; back it up apart from "
                "the database (without it, agents' headers and sink secrets cannot be read)",
                extra={"path": str(path)},
            )
    if path.stat().st_mode & 0o077:
        log.warning(
            "the secret key file is readable by others: chmod 600 it (a Kubernetes Secret "
            "volume: defaultMode 0400)",
            extra={"path": str(path)},
        )
    return SecretBox(parse_keys(path.read_text())), path


def _create_key_file(path: Path) -> bool:
    """Write a new key to `path` whole or not at all (a crash leaves no empty key file), unless
    another process made one meanwhile. True if this call made it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(generate_key() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    return True
