"""One template miner per project, loaded on first use and saved in the background, so a
record's `template_id` is the same before and after a restart."""

from __future__ import annotations

import asyncio
import logging

from vigil.pipeline.template_cache import ShapeCachedMiner
from vigil.pipeline.templates import TemplateMatch, TemplateMiner
from vigil.store.repo import Store
from vigil.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class TemplateStore:
    def __init__(self, store: Store, save_every_s: float = 10.0) -> None:
        self._store = store
        self._save_every = save_every_s
        self._miners: dict[str, TemplateMiner] = {}
        self._dirty: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._saver(), name="template-saver")

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self.save()

    async def miner(self, project_id: str) -> TemplateMiner:
        miner = self._miners.get(project_id)
        if miner is None:
            state = await self._store.load_template_state(project_id)
            miner = ShapeCachedMiner.from_state(state.encode()) if state else ShapeCachedMiner()
            self._miners[project_id] = self._miners.get(project_id) or miner
        return self._miners[project_id]

    def mine(self, project_id: str, miner: TemplateMiner, message: str) -> TemplateMatch:
        self._dirty.add(project_id)
        return miner.mine(message)

    async def save(self) -> None:
        dirty, self._dirty = self._dirty, set()
        if dirty:
            await self._store.save_template_states(
                {project_id: self._miners[project_id].state().decode() for project_id in dirty}
            )

    async def _saver(self) -> None:
        while True:
            await asyncio.sleep(self._save_every)
            try:
                await self.save()
            except Exception:
                log.exception("saving template miners failed; will retry")
