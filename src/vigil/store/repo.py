"""Reads and writes of Vigil's state. Callers get plain rows and our own errors, never SQL errors."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import sys
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any, TypeVar, cast

import sqlalchemy
from pydantic import AnyUrl, BaseModel, SecretStr
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from vigil.errors import Conflict, NotFound
from vigil.specs import PipelineSpec
from vigil.store.batch_sqlite import SqliteBatchWriter
from vigil.store.db import create_inline_sqlite_engine, create_sync_sqlite_engine, session_factory
from vigil.store.grouped import GroupedTransactions
from vigil.store.models import (
    ApiKey,
    Batch,
    DeadLetter,
    DetectorState,
    IncidentReplay,
    IncidentRow,
    Output,
    Pipeline,
    Project,
    ProjectPolicy,
    Sink,
    TemplateState,
)
from vigil.store.sealing import SecretBox, SecretKeyError, Table, needs_sealing, open_spec, seal_spec

KEY_PREFIX = "vgl_"

RowT = TypeVar("RowT", Pipeline, Sink)
T = TypeVar("T")
_SWITCH_INTERVAL_S = 0.0005
"""The interpreter's switch interval in a process with a blocking SQLite thread."""


def _describe(row: Pipeline | Sink | ProjectPolicy) -> str:
    if isinstance(row, Pipeline):
        return f"pipeline {row.name!r} of project {row.project_id}"
    if isinstance(row, ProjectPolicy):
        return f"workflow policy of project {row.project_id}"
    return f"sink {row.id} of project {row.project_id}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def reveal(value: Any) -> Any:
    """A spec as plain data: secrets in clear (the store seals them), URLs as strings."""
    if isinstance(value, BaseModel):
        return reveal(value.model_dump(mode="python", by_alias=True, exclude_none=True))
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, AnyUrl | PurePath):
        return str(value)
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reveal(v) for v in value]
    return value


@dataclass(frozen=True)
class SealReport:
    """What a pass over the stored secrets did (`Store.seal_secrets`)."""

    sealed: int = 0
    """Specs whose secrets were (re-)encrypted."""
    unreadable: list[str] = field(default_factory=list)
    """Specs with a secret none of the keys opens."""


def page_back(
    at: InstrumentedAttribute[datetime],
    key: InstrumentedAttribute[str],
    before: datetime,
    before_id: str | None,
) -> ColumnElement[bool]:
    """Rows older than the last one seen: a keyset on (time, id), so rows sharing the page
    boundary's time are neither skipped nor repeated."""
    if before_id is None:
        return at < before
    return or_(at < before, and_(at == before, key < before_id))


class Store:
    """`secret_box` seals the secrets of pipeline and sink specs on write and opens them on read:
    callers see plain specs, the database holds ciphertext."""

    def __init__(self, engine: AsyncEngine, secret_box: SecretBox) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)
        self._box = secret_box
        self._ledger: tuple[Engine, ThreadPoolExecutor] | None = None
        """On SQLite: the batch ledger's blocking engine and its one thread (`write_batches`)."""
        self._grouped: GroupedTransactions | None = None
        self._batch_writer: SqliteBatchWriter | None = None

    def session(self) -> AsyncSession:
        session: AsyncSession = self._sessions()
        return session

    def _one_hop(self) -> bool:
        return self.engine.dialect.name == "sqlite" and self.engine.url.database not in (None, "", ":memory:")

    def _blocking_sqlite(self) -> tuple[Engine, ThreadPoolExecutor]:
        if self._ledger is None:
            # The thread takes the GIL back after each statement; while the event loop works, that
            # waits for the interpreter's switch interval (5 ms by default), several times per
            # transaction, all the while holding SQLite's write lock that other processes' writers
            # wait for (and SQLite's busy wait sleeps in steps of up to 100 ms). A shorter
            # interval costs nothing while no other thread wants the GIL.
            sys.setswitchinterval(min(sys.getswitchinterval(), _SWITCH_INTERVAL_S))
            thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-ledger")
            self._ledger = create_sync_sqlite_engine(self.engine), thread
        return self._ledger

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """`work` in one transaction. On SQLite, on a blocking connection in the store's own
        thread, in one hop: through aiosqlite every statement is a round trip to its thread, each
        waiting for the event loop while the write lock is held; and the writes queue in order
        there, rather than in SQLite's busy wait; those waiting together commit together
        (`vigil.store.grouped`). Elsewhere, on the async engine. `work` may run more than once."""
        if self._one_hop():
            if self._grouped is None:
                self._grouped = GroupedTransactions(*self._blocking_sqlite())
            return await self._grouped.run(work)
        async with self.engine.begin() as connection:
            return await connection.run_sync(work)

    async def close(self) -> None:
        ledger, self._ledger = self._ledger, None
        writer, self._batch_writer = self._batch_writer, None
        if writer is not None:
            await writer.close()
        self._grouped = None
        if ledger is not None:
            engine, thread = ledger
            await asyncio.get_running_loop().run_in_executor(thread, engine.dispose)
            thread.shutdown()
        await self.engine.dispose()

    # projects

    async def create_project(self, name: str, project_id: str | None = None) -> Project:
        project = Project(id=project_id or new_id(), name=name, created_at=utcnow())
        async with self.session() as s:
            s.add(project)
            try:
                await s.commit()
            except IntegrityError as exc:
                raise Conflict(f"a project named {name!r} exists", details={"name": name}) from exc
        return project

    async def list_projects(self) -> Sequence[Project]:
        async with self.session() as s:
            return (await s.scalars(select(Project).order_by(Project.created_at))).all()

    async def get_project(self, project_id: str) -> Project:
        async with self.session() as s:
            project = await s.get(Project, project_id)
        if project is None:
            raise NotFound(f"no project {project_id!r}", details={"project_id": project_id})
        return project

    async def rename_project(self, project_id: str, name: str) -> Project:
        async with self.session() as s:
            project = await s.get(Project, project_id)
            if project is None:
                raise NotFound(f"no project {project_id!r}", details={"project_id": project_id})
            project.name = name
            try:
                await s.commit()
            except IntegrityError as exc:
                raise Conflict(f"a project named {name!r} exists", details={"name": name}) from exc
            await s.refresh(project)
        return project

    async def find_project(self, name: str) -> Project | None:
        async with self.session() as s:
            return (await s.scalars(select(Project).where(Project.name == name))).first()

    async def delete_project(self, project_id: str) -> None:
        await self.get_project(project_id)
        async with self.session() as s:
            for table in (ApiKey, Pipeline, Sink):
                await s.execute(delete(table).where(table.project_id == project_id))
            await s.execute(delete(Project).where(Project.id == project_id))
            await s.commit()

    # API keys

    async def create_key(self, project_id: str, name: str, key: str | None = None) -> tuple[ApiKey, str]:
        await self.get_project(project_id)
        plaintext = key or generate_key()
        row = ApiKey(
            id=new_id(),
            project_id=project_id,
            name=name,
            prefix=plaintext[:12],
            key_hash=hash_key(plaintext),
            created_at=utcnow(),
            revoked_at=None,
        )
        async with self.session() as s:
            s.add(row)
            try:
                await s.commit()
            except IntegrityError as exc:
                raise Conflict("that key is already registered") from exc
        return row, plaintext

    async def list_keys(self, project_id: str) -> Sequence[ApiKey]:
        await self.get_project(project_id)
        async with self.session() as s:
            query = select(ApiKey).where(ApiKey.project_id == project_id).order_by(ApiKey.created_at)
            return (await s.scalars(query)).all()

    async def revoke_key(self, project_id: str, key_id: str) -> ApiKey:
        async with self.session() as s:
            row = await s.get(ApiKey, key_id)
            if row is None or row.project_id != project_id:
                raise NotFound(f"no key {key_id!r} in project {project_id!r}")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                await s.commit()
            return row

    async def project_for_key(self, plaintext: str) -> str | None:
        async with self.session() as s:
            query = select(ApiKey.project_id).where(
                ApiKey.key_hash == hash_key(plaintext), ApiKey.revoked_at.is_(None)
            )
            return (await s.scalars(query)).first()

    # pipelines

    async def put_pipeline(self, project_id: str, name: str, spec: PipelineSpec) -> tuple[Pipeline, bool]:
        await self.get_project(project_id)
        plain = reveal(spec)
        stored = seal_spec(self._box, "pipelines", plain)
        now = utcnow()
        async with self.session() as s:
            row = await s.get(Pipeline, (project_id, name))
            created = row is None
            if row is None:
                row = Pipeline(project_id=project_id, name=name, spec=stored, created_at=now, updated_at=now)
                s.add(row)
            else:
                row.spec, row.updated_at = stored, now
            await s.commit()
        row.spec = plain  # detached: what callers see, never flushed
        return row, created

    async def get_pipeline(self, project_id: str, name: str) -> Pipeline:
        async with self.session() as s:
            row = await s.get(Pipeline, (project_id, name))
        if row is None:
            raise NotFound(f"no pipeline {name!r} in project {project_id!r}")
        return self._opened("pipelines", row)

    async def list_pipelines(self, project_id: str | None = None) -> Sequence[Pipeline]:
        async with self.session() as s:
            query = select(Pipeline).order_by(Pipeline.project_id, Pipeline.name)
            if project_id is not None:
                query = query.where(Pipeline.project_id == project_id)
            rows = (await s.scalars(query)).all()
        return [self._opened("pipelines", row) for row in rows]

    async def delete_pipeline(self, project_id: str, name: str) -> None:
        await self.get_pipeline(project_id, name)
        async with self.session() as s:
            await s.execute(delete(Pipeline).where(Pipeline.project_id == project_id, Pipeline.name == name))
            await s.commit()

    # sinks

    async def add_sink(self, project_id: str, spec: BaseModel) -> Sink:
        await self.get_project(project_id)
        plain = reveal(spec)
        row = Sink(
            id=new_id(),
            project_id=project_id,
            type=plain["type"],
            name=plain.get("name"),
            spec=seal_spec(self._box, "sinks", plain),
            created_at=utcnow(),
        )
        async with self.session() as s:
            s.add(row)
            await s.commit()
        row.spec = plain
        return row

    async def list_sinks(self, project_id: str | None = None) -> Sequence[Sink]:
        async with self.session() as s:
            query = select(Sink).order_by(Sink.created_at)
            if project_id is not None:
                query = query.where(Sink.project_id == project_id)
            rows = (await s.scalars(query)).all()
        return [self._opened("sinks", row) for row in rows]

    async def get_sink(self, project_id: str, sink_id: str) -> Sink:
        async with self.session() as s:
            row = await s.get(Sink, sink_id)
        if row is None or row.project_id != project_id:
            raise NotFound(f"no sink {sink_id!r} in project {project_id!r}")
        return self._opened("sinks", row)

    async def delete_sink(self, project_id: str, sink_id: str) -> None:
        await self.get_sink(project_id, sink_id)
        async with self.session() as s:
            await s.execute(delete(Sink).where(Sink.id == sink_id))
            await s.commit()

    # secrets of pipelines, sinks and workflow policies

    def seal(self, table: Table, plain: dict[str, Any]) -> dict[str, Any]:
        return seal_spec(self._box, table, plain)

    def open(self, table: Table, stored: dict[str, Any], where: str) -> dict[str, Any]:
        return open_spec(self._box, table, stored, where=where)

    def _opened(self, table: Table, row: RowT) -> RowT:
        """The row, detached from its session, with its spec's secrets in clear."""
        row.spec = open_spec(self._box, table, row.spec, where=_describe(row))
        return row

    async def seal_secrets(self, *, rotate: bool = False) -> SealReport:
        """Encrypt every secret still stored in plain text (written before encryption); with
        `rotate`, also re-encrypt those sealed with another key than the first. Reports the specs
        none of the keys opens. Each spec is read again, locked, when it is sealed, so a change
        made meanwhile through the API is kept."""
        sealed, unreadable = 0, []
        async with self.session() as s:
            pipelines = (await s.scalars(select(Pipeline))).all()
            sinks = (await s.scalars(select(Sink))).all()
            policies = (await s.scalars(select(ProjectPolicy))).all()
        stored: list[tuple[Table, Pipeline | Sink | ProjectPolicy]] = [
            ("pipelines", row) for row in pipelines
        ]
        stored += [("sinks", row) for row in sinks]
        stored += [("policies", row) for row in policies]
        for table, row in stored:
            where = _describe(row)
            try:
                open_spec(self._box, table, row.spec, where=where)
            except SecretKeyError:
                unreadable.append(where)
                continue
            if needs_sealing(self._box, table, row.spec, rotate=rotate):
                sealed += await self._reseal(table, row, rotate=rotate)
        if sealed:
            await self._scrub_free_pages()
        return SealReport(sealed, unreadable)

    async def _reseal(self, table: Table, row: Pipeline | Sink | ProjectPolicy, *, rotate: bool) -> int:
        """Seal one spec as it is now (locked where the database can), on one connection."""
        if isinstance(row, Pipeline):
            model: type[Pipeline | Sink | ProjectPolicy] = Pipeline
            where = [Pipeline.project_id == row.project_id, Pipeline.name == row.name]
        elif isinstance(row, ProjectPolicy):
            model, where = ProjectPolicy, [ProjectPolicy.project_id == row.project_id]
        else:
            model, where = Sink, [Sink.id == row.id]
        sqlite = self.engine.dialect.name == "sqlite"
        async with self.engine.connect() as connection:
            if sqlite:  # zero the cells that held plain text rather than leave them as free space
                await connection.execute(text("PRAGMA secure_delete=ON"))
            query = select(model.spec).where(*where).with_for_update()
            spec: dict[str, Any] | None = (await connection.execute(query)).scalar_one_or_none()
            changed = spec is not None and needs_sealing(self._box, table, spec, rotate=rotate)
            if spec is not None and changed:
                opened = open_spec(self._box, table, spec, where=_describe(row))
                sealed = seal_spec(self._box, table, opened)
                await connection.execute(update(model).where(*where).values(spec=sealed))
            await connection.commit()
            if sqlite:
                await connection.execute(text("PRAGMA secure_delete=OFF"))
                await connection.commit()
        return int(changed)

    async def _scrub_free_pages(self) -> None:
        """Copy the rewritten pages from SQLite's WAL into the database file and empty the WAL,
        which still held the plain text's pages."""
        if self.engine.dialect.name == "sqlite":
            async with self.engine.connect() as connection:
                await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))

    # batches

    async def add_batches(self, rows: Sequence[Batch]) -> dict[str, int]:
        """Insert batches, ignoring ones already recorded (a redelivered batch keeps its row);
        return the attempts recorded for those, by request id."""
        return await self.write_batches([_column_values(row) for row in rows], [])

    async def set_batch_statuses(self, updates: Sequence[tuple[str, str, int, str | None]]) -> None:
        """Apply (request_id, status, attempts, error) updates in one executemany."""
        await self.write_batches([], updates)

    async def write_batches(
        self, rows: Sequence[dict[str, Any]], updates: Sequence[tuple[str, str, int, str | None]]
    ) -> dict[str, int]:
        """One transaction of the batch ledger: insert `rows` (column values of new batches; ones
        already recorded keep their row), then apply (request_id, status, attempts, error) updates,
        each as one executemany statement. Returns the attempts recorded for the rows that were
        there already, by request id."""
        if not rows and not updates:
            return {}
        if self._one_hop():
            # the whole transaction at once, on the event loop's thread unless it would wait
            if self._batch_writer is None:
                self._batch_writer = SqliteBatchWriter(
                    create_inline_sqlite_engine(self.engine), self._blocking_sqlite
                )
            return await self._batch_writer.write(rows, updates, utcnow())
        known: dict[str, int] = {}
        dialect = self.engine.dialect.name
        statuses = _status_parameters(updates)
        async with self.engine.begin() as connection:
            if rows:
                found = await connection.execute(_recorded([row["request_id"] for row in rows]))
                known = {request_id: attempts for request_id, attempts in found}
                await connection.execute(_insert_new(dialect, _BATCHES, "request_id"), list(rows))
            if statuses:
                await connection.execute(_STATUS_UPDATE, statuses)
        return known

    async def get_batch(self, request_id: str) -> Batch | None:
        async with self.session() as s:
            return await s.get(Batch, request_id)

    async def list_batches(self, project_id: str, *, status: str | None, limit: int) -> Sequence[Batch]:
        async with self.session() as s:
            query = select(Batch).where(Batch.project_id == project_id)
            if status is not None:
                query = query.where(Batch.status == status)
            return (await s.scalars(query.order_by(Batch.created_at.desc()).limit(limit))).all()

    async def batch_counts(self, project_id: str) -> dict[str, dict[str, int]]:
        async with self.session() as s:
            query = (
                select(Batch.status, func.count(), func.sum(Batch.record_count))
                .where(Batch.project_id == project_id)
                .group_by(Batch.status)
            )
            return {
                row[0]: {"batches": row[1], "records": int(row[2] or 0)} for row in await s.execute(query)
            }

    # outputs

    async def add_output(self, output: Output) -> tuple[Output, bool]:
        """Store an output once; with an idempotency key, a repeat returns the first one."""
        async with self.session() as s:
            if output.idempotency_key is not None:
                query = select(Output).where(
                    Output.project_id == output.project_id, Output.idempotency_key == output.idempotency_key
                )
                existing = (await s.scalars(query)).first()
                if existing is not None:
                    return existing, False
            existing = await s.get(Output, output.id)
            if existing is not None:
                return existing, False
            s.add(output)
            try:
                await s.commit()
            except IntegrityError:
                await s.rollback()
                return await self.add_output(output)
        return output, True

    async def list_outputs(
        self,
        project_id: str,
        *,
        limit: int,
        request_id: str | None = None,
        before: datetime | None = None,
        before_id: str | None = None,
        after: datetime | None = None,
    ) -> Sequence[Output]:
        """Newest first; `before` (with `before_id`, the last one seen, for outputs received at
        the same moment) pages back, `after` (oldest first then) follows what is new."""
        async with self.session() as s:
            query = select(Output).where(Output.project_id == project_id)
            if request_id is not None:
                query = query.where(Output.request_id == request_id)
            if before is not None:
                query = query.where(page_back(Output.received_at, Output.id, before, before_id))
            if after is not None:
                query = query.where(Output.received_at > after)
                return (await s.scalars(query.order_by(Output.received_at).limit(limit))).all()
            newest = query.order_by(Output.received_at.desc(), Output.id.desc())
            return (await s.scalars(newest.limit(limit))).all()

    # template miners

    async def load_template_state(self, project_id: str) -> str | None:
        async with self.session() as s:
            row = await s.get(TemplateState, project_id)
            return row.state if row is not None else None

    async def save_template_states(self, states: dict[str, str]) -> None:
        async with self.session() as s:
            for project_id, state in states.items():
                row = await s.get(TemplateState, project_id)
                if row is None:
                    s.add(TemplateState(project_id=project_id, state=state, updated_at=utcnow()))
                else:
                    row.state, row.updated_at = state, utcnow()
            await s.commit()

    # detection

    async def load_detector_state(self) -> dict[str, Any] | None:
        async with self.session() as s:
            row = await s.get(DetectorState, "detector")
            return row.state if row is not None else None

    async def save_detector_state(self, state: dict[str, Any]) -> None:
        async with self.session() as s:
            row = await s.get(DetectorState, "detector")
            if row is None:
                s.add(DetectorState(key="detector", state=state, updated_at=utcnow()))
            else:
                row.state, row.updated_at = state, utcnow()
            await s.commit()

    async def save_incidents(self, incidents: Sequence[Any]) -> None:
        """Upsert incidents (`vigil.detect.incidents.Incident`), newest snapshot wins."""
        async with self.session() as s:
            for incident in incidents:
                body = incident.model_dump(mode="json")
                values = {
                    "project_id": incident.project,
                    "status": incident.status,
                    "severity": str(incident.severity),
                    "title": incident.title,
                    "opened_at": datetime.fromtimestamp(incident.opened_at, UTC),
                    "updated_at": datetime.fromtimestamp(incident.updated_at, UTC),
                    "body": body,
                }
                row = await s.get(IncidentRow, incident.id)
                if row is None:
                    s.add(IncidentRow(id=incident.id, **values))
                else:
                    for key, value in values.items():
                        setattr(row, key, value)
            await s.commit()

    async def list_incidents(
        self,
        project_id: str,
        *,
        status: str | None,
        limit: int,
        before: datetime | None = None,
        before_id: str | None = None,
    ) -> Sequence[IncidentRow]:
        """Most recently updated first; `before` (an `updated_at`, with `before_id` for incidents
        updated at the same moment) pages back."""
        async with self.session() as s:
            query = select(IncidentRow).where(IncidentRow.project_id == project_id)
            if status is not None:
                query = query.where(IncidentRow.status == status)
            if before is not None:
                query = query.where(page_back(IncidentRow.updated_at, IncidentRow.id, before, before_id))
            newest = query.order_by(IncidentRow.updated_at.desc(), IncidentRow.id.desc())
            return (await s.scalars(newest.limit(limit))).all()

    async def get_incident(self, project_id: str, incident_id: str) -> IncidentRow:
        async with self.session() as s:
            row = await s.get(IncidentRow, incident_id)
        if row is None or row.project_id != project_id:
            raise NotFound(f"no incident {incident_id!r} in project {project_id!r}")
        return row

    async def add_incident_replay(
        self,
        project_id: str,
        incident_id: str,
        *,
        target: str,
        reproduced: bool,
        attempted: int,
        failed: int,
        results: list[Any],
    ) -> IncidentReplay:
        """Record a replay of an incident's requests (NotFound for an unknown incident)."""
        await self.get_incident(project_id, incident_id)
        row = IncidentReplay(
            id=new_id(),
            project_id=project_id,
            incident_id=incident_id,
            at=utcnow(),
            target=target,
            reproduced=reproduced,
            attempted=attempted,
            failed=failed,
            results=results,
        )
        async with self.session() as s:
            s.add(row)
            await s.commit()
        return row

    async def list_incident_replays(
        self, project_id: str, incident_id: str, *, limit: int
    ) -> Sequence[IncidentReplay]:
        """An incident's replays, newest first."""
        async with self.session() as s:
            query = (
                select(IncidentReplay)
                .where(IncidentReplay.project_id == project_id, IncidentReplay.incident_id == incident_id)
                .order_by(IncidentReplay.at.desc())
                .limit(limit)
            )
            return (await s.scalars(query)).all()

    async def latest_incident_replays(
        self, project_id: str, incident_ids: Sequence[str]
    ) -> dict[str, IncidentReplay]:
        """The newest replay of each of these incidents that has one."""
        if not incident_ids:
            return {}
        async with self.session() as s:
            newest = (
                select(IncidentReplay.incident_id, func.max(IncidentReplay.at).label("at"))
                .where(
                    IncidentReplay.project_id == project_id,
                    IncidentReplay.incident_id.in_(list(incident_ids)),
                )
                .group_by(IncidentReplay.incident_id)
                .subquery()
            )
            query = (
                select(IncidentReplay)
                .join(
                    newest,
                    (IncidentReplay.incident_id == newest.c.incident_id) & (IncidentReplay.at == newest.c.at),
                )
                .where(IncidentReplay.project_id == project_id)
            )
            return {row.incident_id: row for row in (await s.scalars(query)).all()}

    # dead letters

    async def add_dead_letter(self, row: DeadLetter) -> None:
        async with self.session() as s:
            s.add(row)
            await s.commit()

    async def list_dead_letters(
        self, project_id: str, *, kind: str | None, include_replayed: bool, limit: int
    ) -> Sequence[DeadLetter]:
        async with self.session() as s:
            query = select(DeadLetter).where(DeadLetter.project_id == project_id)
            if kind is not None:
                query = query.where(DeadLetter.kind == kind)
            if not include_replayed:
                query = query.where(DeadLetter.replayed_at.is_(None))
            return (await s.scalars(query.order_by(DeadLetter.created_at).limit(limit))).all()

    async def get_dead_letter(self, project_id: str, dead_letter_id: str) -> DeadLetter:
        async with self.session() as s:
            row = await s.get(DeadLetter, dead_letter_id)
        if row is None or row.project_id != project_id:
            raise NotFound(f"no dead letter {dead_letter_id!r} in project {project_id!r}")
        return row

    async def mark_replayed(self, dead_letter_id: str) -> None:
        async with self.session() as s:
            await s.execute(
                update(DeadLetter).where(DeadLetter.id == dead_letter_id).values(replayed_at=utcnow())
            )
            await s.commit()

    async def counts(self, project_id: str) -> dict[str, Any]:
        async with self.session() as s:
            outputs = await s.scalar(
                select(func.count()).select_from(Output).where(Output.project_id == project_id)
            )
            dead = await s.scalar(
                select(func.count())
                .select_from(DeadLetter)
                .where(DeadLetter.project_id == project_id, DeadLetter.replayed_at.is_(None))
            )
        return {
            "batches": await self.batch_counts(project_id),
            "outputs": outputs or 0,
            "dead_letters": dead or 0,
        }


_BATCHES = cast(sqlalchemy.Table, Batch.__table__)
_STATUS_UPDATE = (
    update(_BATCHES)
    .where(_BATCHES.c.request_id == bindparam("b_request_id"))
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        last_error=bindparam("b_last_error"),
        updated_at=bindparam("b_updated_at"),
    )
)
"""A Core UPDATE by primary key: executemany without the ORM's bulk machinery."""


def _status_parameters(updates: Sequence[tuple[str, str, int, str | None]]) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "b_request_id": rid,
            "b_status": status,
            "b_attempts": attempts,
            "b_last_error": error,
            "b_updated_at": now,
        }
        for rid, status, attempts, error in updates
    ]


def _recorded(request_ids: list[str]) -> Any:
    """(request_id, attempts) of the batches among `request_ids` that have a row."""
    return select(_BATCHES.c.request_id, _BATCHES.c.attempts).where(_BATCHES.c.request_id.in_(request_ids))


def _column_values(row: Batch) -> dict[str, Any]:
    """A `Batch` built in Python as the column values of its row, column defaults filled in."""
    values: dict[str, Any] = {}
    for column in _BATCHES.columns:
        value = getattr(row, column.key)
        if value is None and column.default is not None and getattr(column.default, "is_scalar", False):
            value = column.default.arg  # type: ignore[attr-defined]
        values[column.key] = value
    return values


@functools.cache
def _insert_new(dialect: str, table: Any, key: str) -> Any:
    """An INSERT that skips rows whose `key` exists (a race between two writers included); one
    statement object per dialect, so SQLAlchemy finds its compiled form without re-walking it."""
    if dialect == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing(index_elements=[key])
    if dialect == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing(index_elements=[key])
    raise NotImplementedError(f"the batch ledger does not support {dialect}")
