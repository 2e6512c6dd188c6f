"""`vigil up`: every part in one process, started in dependency order and stopped in reverse."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from vigil.agents.builtin.budget import BudgetLimits, SqlUsageStore, TokenBudget
from vigil.agents.builtin.rules import RulesEngine
from vigil.agents.registry import AgentContext
from vigil.api.app import ApiContext, create_api_app, create_ops_app
from vigil.api.auth import AdminAuth, load_or_create_admin_token
from vigil.api.replay import Replayer
from vigil.bus.client import Bus, NatsCredentials
from vigil.bus.server import ManagedNatsServer
from vigil.config_apply import apply_config
from vigil.config_file import load_config_file
from vigil.detect.archive import EvidenceArchive, archive_from_settings
from vigil.detect.service import Detector
from vigil.http_server import HttpServer
from vigil.investigate.remote import RecordsWindow, RemoteRecentRecords
from vigil.investigate.retention import CitationRetention
from vigil.investigate.tools import ToolContext
from vigil.investigate.window import RecentRecords
from vigil.masking import mask_url
from vigil.mcp_server.http import McpEndpoint
from vigil.mcp_server.records import from_window, no_window
from vigil.mcp_server.tools import VigilTools
from vigil.outbound import Outbound
from vigil.outbound_policy import OutboundPolicy, outbound_client
from vigil.pipeline.agent_workers import AgentWorkers
from vigil.pipeline.config import ConfigCache
from vigil.pipeline.ledger import BatchLedger
from vigil.pipeline.router import Router
from vigil.pipeline.template_store import TemplateStore
from vigil.private_files import private_dir
from vigil.receivers.admission import Pressure
from vigil.receivers.agent_output import OutputIntake
from vigil.receivers.ingest import Ingestor
from vigil.receivers.keys import KeyResolver
from vigil.receivers.otlp_grpc import OtlpGrpcReceiver
from vigil.receivers.otlp_http import create_receiver_app
from vigil.settings import Settings
from vigil.sinks.dispatch import SinkRouter, SinkWorkers
from vigil.store.db import create_engine, upgrade
from vigil.store.repo import Store
from vigil.store.sealing import SecretBox, load_secret_box
from vigil.store.workflow_repo import WorkflowRepo
from vigil.workers import PipelineWorkers
from vigil.workflow.analysis import Analyst, llm_config
from vigil.workflow.engine import WorkflowEngine, WorkflowWaker, dbos_url
from vigil.workflow.loading import load_runbooks
from vigil.workflow.trigger import WorkflowTrigger

log = logging.getLogger(__name__)


class Component(Protocol):
    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...


ROLES = frozenset({"receiver", "pipeline", "sink", "api"})


@dataclass
class Runtime:
    settings: Settings
    roles: frozenset[str] = ROLES
    admin_token: str = ""
    token_generated: bool = False
    bus: Bus | None = None
    store: Store | None = None
    receiver_http: HttpServer | None = None
    receiver_grpc: OtlpGrpcReceiver | None = None
    api_http: HttpServer | None = None
    ops_http: HttpServer | None = None
    budget: TokenBudget | None = None
    evidence: EvidenceArchive | None = None
    workers: PipelineWorkers | None = None
    recent: RecentRecords | None = None
    """Recent records kept for investigation, where the router runs in this process."""
    records_window: RecordsWindow | None = None
    """What the API and investigations here query: `recent`, else the routers' over the bus."""
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    _started: list[Component] = field(default_factory=list)
    _stopped: bool = False
    workflow_engine: WorkflowEngine | None = None
    workflow_trigger: WorkflowTrigger | None = None
    _pressure: Pressure = field(default_factory=Pressure)
    """Shared by the receivers and the router when they run in one process."""

    async def start(self) -> None:
        s = self.settings
        roles = self.roles
        unknown = roles - ROLES
        if unknown or not roles:
            raise RuntimeError(f"unknown roles {sorted(unknown)}; choose from {sorted(ROLES)}")
        if s.nats_url is None and roles != ROLES:
            raise RuntimeError(
                "separate services share one bus: set VIGIL_NATS_URL (only `vigil up` starts its own nats-server)"
            )
        private_dir(s.data_dir)
        secret_box = self._secret_box()
        if "api" in roles:
            configured = s.admin_token.get_secret_value() if s.admin_token else None
            self.admin_token, self.token_generated = load_or_create_admin_token(s.data_dir, configured)

        self.outbound = OutboundPolicy(s.outbound)
        self.outbound.add_own_ports(_listening_ports(s, roles))  # bound ports are added once known
        self.outbound.add_own_hosts([s.host])
        if s.nats_url is None:
            server = ManagedNatsServer(s.data_dir, s.bus)
            await self._start(server)
            url, credentials = server.url, NatsCredentials()
        else:
            url, credentials = s.nats_url.get_secret_value(), self._nats_credentials()
        self.outbound.add_own_urls(url)
        self.bus = bus = Bus(url, s.bus, name=f"vigil-{'+'.join(sorted(roles))}", credentials=credentials)
        await self._start(bus)

        db_url = s.sqlalchemy_url()
        await upgrade(db_url)
        self.store = store = Store(create_engine(db_url), secret_box)
        self._started.append(_Closing(store.close))
        await self._seal_stored_secrets(store)
        if roles & {"pipeline", "api"}:
            # the detector writes the evidence of its signals, the API reads it back
            self.evidence = archive_from_settings(s)
            await self._start(self.evidence)
        if s.config_file is not None and "api" in roles:
            await apply_config(store, load_config_file(s.config_file), self.outbound)
        if s.runbooks_dir is not None and "api" in roles:
            await load_runbooks(store, s.runbooks_dir)

        config = ConfigCache(store)
        keys = KeyResolver(store, s.key_cache_ttl_s)
        await self._start(config)

        async def on_notice(project_id: str) -> None:
            keys.invalidate()
            await config.reload()

        await bus.on_config_change(on_notice)

        async def ready() -> bool:
            return bus.connected

        intake = OutputIntake(bus, store)
        if "pipeline" in roles and roles == ROLES and s.pipeline_workers > 0:
            self.workers = PipelineWorkers(s, url, s.pipeline_workers)
            await self._start(self.workers)
            await self._start_workflow(config)
        elif "pipeline" in roles:
            await self._start_pipeline(config, intake)
        if "sink" in roles:
            await self._start(SinkWorkers(bus, store, config, self.outbound))
            await self._start(SinkRouter(bus, store, config))
        self.records_window = (
            self.records_window or self.recent or RemoteRecentRecords(bus, s.investigate, config)
        )
        if "api" in roles:

            async def changed(project_id: str) -> None:
                keys.invalidate()
                await config.reload()
                await bus.announce_config_change(project_id)

            mcp = McpEndpoint(
                VigilTools(
                    store,
                    evidence=self.evidence,
                    start_proposal=self.workflow_trigger.start_proposal if self.workflow_trigger else None,
                    records=from_window(self.records_window) if self.records_window else no_window,
                ),
                keys,
            )
            await self._start(mcp)
            api_app = create_api_app(
                ApiContext(
                    store=store,
                    auth=AdminAuth(self.admin_token),
                    replayer=Replayer(bus, store, config),
                    changed=changed,
                    ready=ready,
                    budget=self.budget,
                    evidence=self.evidence,
                    max_body_bytes=s.max_api_body_bytes,
                    keys=keys,
                    outbound=self.outbound,
                    workflow_waker=self._waker(),
                    workflow_trigger=self.workflow_trigger,
                    workflow_engine=self.workflow_engine,
                    bus=bus,
                    mcp=mcp,
                    recent=self.records_window,
                )
            )
            self.api_http = HttpServer(api_app, host=s.host, port=s.api_port, name="api")
            await self._start(self.api_http)
        if "receiver" in roles:
            ingestor = Ingestor(
                bus,
                max_request_bytes=s.max_request_bytes,
                max_inflight_bytes=s.max_inflight_ingest_bytes,
                admission=s.admission,
                pressure=self._pressure,
            )
            await self._start(ingestor)  # keeps the records partitions' leaders apart on a cluster
            receiver_app = create_receiver_app(
                ingestor, intake, keys, max_body_bytes=s.max_request_bytes, ready=ready
            )
            self.receiver_http = HttpServer(
                receiver_app, host=s.host, port=s.otlp_http_port, name="otlp-http", limit_concurrency=1024
            )
            self.receiver_grpc = OtlpGrpcReceiver(
                ingestor, keys, host=s.host, port=s.otlp_grpc_port, max_message_bytes=s.max_request_bytes
            )
            await self._start(self.receiver_grpc)
            await self._start(self.receiver_http)
        if not roles & {"api", "receiver"}:
            # Workers without a port of their own still answer probes and scrapes.
            self.ops_http = HttpServer(create_ops_app(ready), host=s.host, port=s.ops_port, name="ops")
            await self._start(self.ops_http)
        self.outbound.add_own_ports(self.ports().values())
        log.info("vigil is up", extra={"roles": sorted(roles), "ports": self.ports(), "nats": mask_url(url)})

    def _secret_box(self) -> SecretBox:
        """Only `vigil up` makes a key of its own: separate services share one database, so they
        must be given the same key."""
        s = self.settings
        configured = s.secret_key.get_secret_value() if s.secret_key is not None else None
        box, _ = load_secret_box(configured, s.secret_key_file, s.data_dir, create=self.roles == ROLES)
        return box

    def _nats_credentials(self) -> NatsCredentials:
        s = self.settings
        for name, path in (
            ("VIGIL_NATS_CREDS_FILE", s.nats_creds_file),
            ("VIGIL_NATS_NKEY_SEED_FILE", s.nats_nkey_seed_file),
        ):
            if path is not None and not path.is_file():
                raise RuntimeError(f"{name}: {path} is not a readable file")
        return NatsCredentials(creds_file=s.nats_creds_file, nkey_seed_file=s.nats_nkey_seed_file)

    async def _seal_stored_secrets(self, store: Store) -> None:
        """Encrypt what an earlier version stored in plain text, and refuse to run with keys that
        cannot open what is stored (every agent and sink would fail one by one otherwise)."""
        report = await store.seal_secrets()
        if report.sealed:
            log.info("encrypted stored secrets that were in plain text", extra={"specs": report.sealed})
        if report.unreadable:
            raise RuntimeError(
                f"the secret key cannot decrypt the secrets of {len(report.unreadable)} pipelines and sinks "
                f"({'; '.join(report.unreadable[:5])}): set VIGIL_SECRET_KEY to the key they were "
                "encrypted with (while rotating, the new key first and the old one after a comma)"
            )

    async def _start_pipeline(self, config: ConfigCache, intake: OutputIntake) -> None:
        assert self.bus is not None and self.store is not None
        ledger = BatchLedger(self.store)
        await self._start(ledger)
        templates = TemplateStore(self.store)
        await self._start(templates)
        agents = AgentContext(
            client=Outbound(self.outbound, max_connections=512),
            intake=intake,
            rules=RulesEngine(),
            llm=None,
            runbooks=WorkflowRepo(self.store).runbooks,
        )
        self._started.append(_Closing(agents.client.aclose))
        if self.settings.llm.configured:
            # pydantic-ai and the vendors' SDKs take seconds to import: only with a model configured.
            from vigil.agents.builtin.factory import build_llm_engine

            agents.llm = build_llm_engine(self.settings.llm, self.store, agents.rules)
            self.budget = agents.llm.budget
            self._started.append(_Closing(agents.llm.aclose))
        await self._start(AgentWorkers(self.bus, self.store, config, ledger, agents))
        detector = (
            Detector(self.bus, self.store, self.settings.detect, evidence=self.evidence)
            if self.settings.detect.enabled
            else None
        )
        if detector is not None:
            # before the router, which reports new error templates to it and stops first
            await self._start(detector)
        on_new_error_template = detector.new_error_template if detector is not None else None
        if self.settings.investigate.recent_enabled:
            self.recent = RecentRecords(self.settings.investigate, config, templates, bus=self.bus)
            await self._start(self.recent)
        await self._start_workflow(config)  # its investigations read the recent records
        await self._start(
            Router(
                self.bus,
                config,
                templates,
                on_new_error_template=on_new_error_template,
                pressure=self._pressure,
                recent=self.recent,
            )
        )

    async def _start_workflow(self, config: ConfigCache) -> None:
        """The remediation workflow, where the pipeline runs (or, with pipeline workers, in
        `vigil up` itself, beside the API that approves its steps)."""
        assert self.store is not None and self.bus is not None
        if self.settings.workflow.enabled and WorkflowEngine.available():
            http = outbound_client(self.outbound, httpx.Limits(max_connections=64))
            self._started.append(_Closing(http.aclose))
            actions_http = Outbound(self.outbound, max_connections=64)
            self._started.append(_Closing(actions_http.aclose))
            s = self.settings
            self.records_window = self.recent or RemoteRecentRecords(self.bus, s.investigate, config)
            budget = self.budget or self._analysis_budget()
            # without recent records anywhere, no router would answer: the tools then read none
            recent = self.records_window if s.investigate.recent_enabled else None
            analyst = Analyst(
                ToolContext.build(
                    self.store,
                    s.investigate,
                    recent=recent,
                    evidence=self.evidence,
                    budget=budget,
                ),
                engine=s.workflow.analysis_engine,
                llm=llm_config(s.llm) if s.llm.configured else None,
                budget=budget,
            )
            self._started.append(_Closing(analyst.aclose))
            self.workflow_engine = WorkflowEngine(
                self.store,
                http,
                actions_http,
                database_url=self.settings.sqlalchemy_url(),
                data_dir=self.settings.data_dir,
                executor_id=self.settings.workflow.executor_id,
                bus=self.bus,
                analyst=analyst,
            )
            await self._start(self.workflow_engine)
            self.workflow_trigger = WorkflowTrigger(
                self.store, self.workflow_engine, bus=self.bus, sweep_s=s.workflow.sweep_s
            )
            await self._start(self.workflow_trigger)
            await self._start(CitationRetention(self.store, s.investigate.citation_retention_s))

    def _analysis_budget(self) -> TokenBudget | None:
        """The token budget the workflow's investigations are charged to, when one is set."""
        llm = self.settings.llm
        if self.store is None or not (llm.configured or llm.tokens_per_day or llm.tokens_per_incident):
            return None
        limits = BudgetLimits(tokens_per_day=llm.tokens_per_day, tokens_per_incident=llm.tokens_per_incident)
        return TokenBudget(SqlUsageStore(self.store.engine), limits)

    def _waker(self) -> WorkflowWaker:
        s = self.settings
        waker = WorkflowWaker(self.workflow_engine, dbos_url(s.sqlalchemy_url(), s.data_dir))
        self._started.append(_Closing(lambda: asyncio.to_thread(waker.close)))
        return waker

    def ports(self) -> dict[str, int]:
        servers = {
            "otlp_http": self.receiver_http,
            "otlp_grpc": self.receiver_grpc,
            "api": self.api_http,
            "ops": self.ops_http,
        }
        return {name: server.port for name, server in servers.items() if server is not None and server.port}

    async def _start(self, component: Component) -> None:
        await component.start()
        self._started.append(component)

    async def shutdown(self) -> None:
        """Stop accepting first, then let in-flight work finish, then close the bus and state."""
        if self._stopped:
            return
        self._stopped = True
        for component in reversed(self._started):
            try:
                await asyncio.wait_for(component.shutdown(), timeout=30)
            except Exception:
                log.exception("shutdown of a component failed", extra={"component": type(component).__name__})
        self._started.clear()

    async def run_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down")


def _listening_ports(settings: Settings, roles: frozenset[str]) -> list[int]:
    """The ports this process will listen on: only its own, so that an agent beside a service (a
    sidecar on a port another Vigil service uses elsewhere) is not mistaken for Vigil."""
    ports = []
    if "api" in roles:
        ports.append(settings.api_port)
    if "receiver" in roles:
        ports += [settings.otlp_http_port, settings.otlp_grpc_port]
    if not roles & {"api", "receiver"}:
        ports.append(settings.ops_port)
    return ports


class _Closing:
    """Something that only needs closing, in its place in the shutdown order."""

    def __init__(self, close: Callable[[], Awaitable[None]]) -> None:
        self._close = close

    async def start(self) -> None:
        return None

    async def shutdown(self) -> None:
        await self._close()
