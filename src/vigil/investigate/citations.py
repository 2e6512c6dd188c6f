"""Citations: what an investigation points at, in a form Vigil can show again later.

A citation's id is `<kind>:<key>`:

- `record:<id>`: a recent record a tool returned (kept, redacted, in the citations table: the
  window forgets it within the hour);
- `query:<id>`: a tool's call, its arguments and its bounded result (external queries included);
- `template:<template id>`: a log template of the project, with its count;
- `signal:<fingerprint>`: a detector signal, as the incidents that hold it show it;
- `incident:<id>`, `replay:<id>`, `evidence:<fingerprint>`: Vigil's own rows and archive.

`resolve` answers any of them for a project, or raises NotFound.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel
from sqlalchemy import JSON, DateTime, String, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from vigil.detect.archive import EvidenceArchive
from vigil.errors import NotFound
from vigil.pipeline.template_store import TemplateStore
from vigil.pipeline.templates import TemplateMiner
from vigil.store.db import session_factory
from vigil.store.models import Base, IncidentReplay
from vigil.store.repo import Store

CitationKind = Literal["record", "query", "template", "signal", "incident", "replay", "evidence"]
STORED_KINDS = frozenset({"record", "query"})


class Citation(BaseModel):
    id: str
    """`<kind>:<key>`, resolved by `GET /api/v1/projects/{project_id}/citations/{id}`."""
    kind: CitationKind
    project_id: str
    label: str
    """A short line saying what it is, for people and prompts."""

    @classmethod
    def of(cls, kind: CitationKind, project_id: str, key: str, label: str) -> Citation:
        return cls(id=f"{kind}:{key}", kind=kind, project_id=project_id, label=label[:200])


def content_key(*parts: Any) -> str:
    """A stable key of some JSON-able content."""
    return hashlib.blake2b(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()


class CitationRow(Base):
    __tablename__ = "citations"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


@functools.cache
def _insert_new(dialect: str) -> Any:
    """An INSERT that skips citations saved already: ids are content hashes."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert(CitationRow).on_conflict_do_nothing(index_elements=["id"])


class CitationStore:
    """The record and query citations, kept in the database; ids are content hashes, so saving
    the same thing twice keeps one row."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._sessions = session_factory(store.engine)

    async def put(self, citation: Citation, body: dict[str, Any]) -> None:
        await self.put_many([(citation, body)])

    async def put_many(self, items: list[tuple[Citation, dict[str, Any]]]) -> None:
        """Saved in one transaction; those saved already (by anyone) are left as they are."""
        if not items:
            return
        now = datetime.now(UTC)
        rows = {
            _row_id(c): {
                "id": _row_id(c),
                "project_id": c.project_id,
                "kind": c.kind,
                "created_at": now,
                "body": {"citation": c.model_dump(), **b},
            }
            for c, b in items
        }
        statement = _insert_new(self._store.engine.dialect.name)
        await self._store.transaction(lambda conn: conn.execute(statement, list(rows.values())))

    async def delete_older_than(self, cutoff: datetime) -> int:
        """Forget the citations saved before `cutoff`; how many."""
        statement = delete(CitationRow).where(CitationRow.created_at < cutoff)
        deleted: int = await self._store.transaction(lambda conn: conn.execute(statement).rowcount)
        return deleted

    async def get_many(self, project_id: str, citation_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored bodies of those of `citation_ids` the project has, by citation id, in one read."""
        if not citation_ids:
            return {}
        rows = {_row_id_of(project_id, c): c for c in citation_ids}
        async with self._sessions() as s:
            found = (await s.execute(select(CitationRow).where(CitationRow.id.in_(list(rows))))).scalars()
            return {rows[r.id]: dict(r.body) for r in found if r.project_id == project_id}

    async def get(self, project_id: str, citation_id: str) -> dict[str, Any] | None:
        async with self._sessions() as s:
            row = await s.get(CitationRow, _row_id_of(project_id, citation_id))
            return None if row is None or row.project_id != project_id else dict(row.body)


def _row_id(citation: Citation) -> str:
    return _row_id_of(citation.project_id, citation.id)


def _row_id_of(project_id: str, citation_id: str) -> str:
    # ids are content hashes within a project; the row id keeps projects apart
    return f"{citation_id}@{hashlib.blake2b(project_id.encode(), digest_size=6).hexdigest()}"


async def project_miner(
    store: Store, templates: TemplateStore | None, project_id: str
) -> TemplateMiner | None:
    """The project's template miner: the live one where the router runs, else its saved state."""
    if templates is not None:
        return await templates.miner(project_id)
    state = await store.load_template_state(project_id)
    return TemplateMiner.from_state(state.encode()) if state else None


async def resolve(
    citation_id: str,
    project_id: str,
    *,
    store: Store,
    citations: CitationStore,
    templates: TemplateStore | None = None,
    evidence: EvidenceArchive | None = None,
) -> dict[str, Any]:
    """What a citation points at, shown again; NotFound when it names nothing of the project."""
    kind, _, key = citation_id.partition(":")
    missing = NotFound(f"citation {citation_id!r} names nothing in project {project_id}")
    if not key:
        raise missing
    if kind in STORED_KINDS:
        body = await citations.get(project_id, citation_id)
        if body is None:
            raise missing
        return body
    if kind == "template":
        miner = await project_miner(store, templates, project_id)
        template = miner.template(key) if miner is not None else None
        if miner is not None and template is not None:
            size = next(
                (t.cluster_size for t in miner.templates() if t.template_id == miner.resolve(key)), None
            )
            return {"kind": kind, "id": citation_id, "template_id": key, "template": template, "count": size}
        stored = await citations.get(project_id, citation_id)  # a template seen in recent records only
        if stored is None:
            raise missing
        return stored
    if kind == "incident":
        row = await store.get_incident(project_id, key)
        return {"kind": kind, "id": citation_id, "incident": row.body}
    if kind == "signal":
        return await _signal(store, evidence, project_id, key, citation_id, missing)
    if kind == "evidence":
        documents = await evidence.get(project_id, key, 5) if evidence is not None else []
        if not documents:
            raise missing
        return {"kind": kind, "id": citation_id, "fingerprint": key, "documents": documents}
    if kind == "replay":
        async with store.session() as session:
            replay = await session.get(IncidentReplay, key)
        if replay is not None and replay.project_id == project_id:
            return {
                "kind": kind,
                "id": citation_id,
                "incident_id": replay.incident_id,
                "replay": {
                    "target": replay.target,
                    "reproduced": replay.reproduced,
                    "attempted": replay.attempted,
                    "failed": replay.failed,
                    "at": replay.at.isoformat(),
                },
            }
    raise missing


async def _signal(
    store: Store,
    evidence: EvidenceArchive | None,
    project_id: str,
    fingerprint: str,
    citation_id: str,
    missing: NotFound,
) -> dict[str, Any]:
    for incident in await store.list_incidents(project_id, status=None, limit=1000):
        for signal in incident.body.get("signals") or []:
            if signal.get("fingerprint") == fingerprint:
                documents = await evidence.get(project_id, fingerprint, 3) if evidence is not None else []
                return {
                    "kind": "signal",
                    "id": citation_id,
                    "incident_id": incident.id,
                    "signal": signal,
                    "evidence": documents,
                }
    raise missing
