"""The recent records of routers in other processes, asked over the bus.

The window lives where the pipeline router runs. With pipeline workers, or the API and the
pipeline as separate services, every router process answers queries on `vigil.recent.query`
(`RecentRecords` subscribes when given the bus; core NATS, one reply per router: each holds the
messages it routed), and the process that
asks merges the answers: counts added up, the newest records kept, the windows' sizes added.
What travels is already redacted by the router that answers.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import orjson
from nats.aio.msg import Msg

from vigil.bus.client import Bus
from vigil.bus.topology import RECENT_QUERY_SUBJECT
from vigil.investigate.records import Counts, RecordQuery, RecordsAnswer, WindowState, top
from vigil.investigate.window import RecentRecords
from vigil.pipeline.config import ConfigCache
from vigil.pipeline.redact import Redactor
from vigil.pipeline.template_store import TemplateStore
from vigil.settings import InvestigateSettings

FIRST_ANSWER_S = 5.0
"""How long the first router has to answer (a query scans up to its bound of records)."""
MORE_ANSWERS_S = 0.5
"""After an answer, how long to wait for another router's."""


class RemoteRecentRecords:
    """The same queries as `RecentRecords`, answered by the routers of other processes."""

    def __init__(self, bus: Bus, settings: InvestigateSettings, config: ConfigCache | None = None) -> None:
        self._bus = bus
        self._settings = settings
        # the redactor of the same rules, for what tools gather elsewhere
        self._rules = RecentRecords(settings, config)

    @property
    def settings(self) -> InvestigateSettings:
        return self._settings

    @property
    def templates(self) -> TemplateStore | None:
        return None

    def redactor(self, project_id: str) -> Redactor:
        return self._rules.redactor(project_id)

    async def query(self, project_id: str, query: RecordQuery) -> RecordsAnswer:
        nc = self._bus.nc
        inbox = f"_INBOX.recent.{uuid.uuid4().hex}"
        answers: asyncio.Queue[bytes] = asyncio.Queue()

        async def collect(msg: Msg) -> None:
            await answers.put(msg.data)

        subscription = await nc.subscribe(inbox, cb=collect)
        try:
            request = {"project_id": project_id, "query": query.model_dump(mode="json")}
            await nc.publish(RECENT_QUERY_SUBJECT, orjson.dumps(request), reply=inbox)
            found: list[RecordsAnswer] = []
            wait = FIRST_ANSWER_S
            while True:
                try:
                    data = await asyncio.wait_for(answers.get(), wait)
                except TimeoutError:
                    break
                found.append(RecordsAnswer.model_validate_json(data))
                wait = MORE_ANSWERS_S
        finally:
            await subscription.unsubscribe()
        return merge(found, query.limit, self._settings.recent_window_s)


def merge(answers: list[RecordsAnswer], limit: int, window_s: float) -> RecordsAnswer:
    """Answers of routers that each hold a part of the project's records, as one."""

    def added(name: str) -> dict[str, int]:
        total: dict[str, int] = {}
        for answer in answers:
            for key, value in getattr(answer.counts, name).items():
                total[key] = total.get(key, 0) + value
        return top(total)

    by_template = added("by_template")
    texts = {k: v for a in answers for k, v in a.counts.templates.items()}
    records = sorted(
        (r for a in answers for r in a.records), key=lambda r: r.get("timestamp") or "", reverse=True
    )
    oldest = [a.window.oldest for a in answers if a.window.oldest is not None]
    newest = [a.window.newest for a in answers if a.window.newest is not None]
    return RecordsAnswer(
        counts=Counts(
            matched=sum(a.counts.matched for a in answers),
            by_service=added("by_service"),
            by_severity=added("by_severity"),
            by_template=by_template,
            templates={t: texts[t] for t in by_template if t in texts},
        ),
        scanned=sum(a.scanned for a in answers),
        truncated=any(a.truncated for a in answers),
        records=records[:limit],
        window=WindowState(
            messages=sum(a.window.messages for a in answers),
            records=sum(a.window.records for a in answers),
            bytes=sum(a.window.bytes for a in answers),
            oldest=min(oldest, default=None),
            newest=_latest(newest),
            evicted_records=sum(a.window.evicted_records for a in answers),
            window_s=window_s,
        ),
    )


RecordsWindow = RecentRecords | RemoteRecentRecords
"""The window of this process's router, or the routers' windows asked over the bus."""


def _latest(times: list[datetime]) -> datetime | None:
    return max(times, default=None)
