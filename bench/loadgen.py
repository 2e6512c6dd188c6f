"""OTLP/HTTP load generator: unique 1,000-record protobuf exports from concurrent keep-alive clients.

Usage::

    .venv/bin/python bench/loadgen.py --url http://127.0.0.1:4318/v1/logs --key KEY \\
        --clients 8 --duration 15 [--warmup 3] [--watch vigil=PID ...] [--json]

`--url` may be repeated (several receivers): client i sends to the i-th URL modulo their number.

Request bodies. A pool of `--templates` distinct exports is built up front, each with 20
resources (services svc-0 .. svc-19) of 50 records: realistic records of about 250 bytes with a
severity mix (5% ERROR, 10% WARN, 15% DEBUG, 70% INFO), bodies with variables, typed attributes,
trace and span ids and timestamps. Every request is made unique (Vigil deduplicates by content
hash) by splicing a fixed-width request number into a resource attribute of a template; the
splice is one memory copy, so building a body costs the generator almost nothing.

Clients. Each client is an asyncio task holding one HTTP/1.1 keep-alive connection and sending
its next request as soon as the previous one is answered. The HTTP client is a minimal one on
asyncio streams (uvloop), so that the generator takes as little of the two cores as it can; it
reports its own CPU use beside that of the processes given with `--watch`.

Counting. Only answers that arrive inside the measurement window (after `--warmup`) count:
records/s of 200 answers, and 429 answers separately.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvloop
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import contextlib

from output import print_json
from procstat import CpuWindow, rss_bytes

SERVICES = 20
RECORDS_PER_SERVICE = 50
REQUEST_ID_KEY = "bench.request_id"
REQUEST_ID_WIDTH = 16
PLACEHOLDER = "#" * REQUEST_ID_WIDTH

ERROR, WARN, INFO, DEBUG = 17, 13, 9, 5
SEVERITY_TEXT = {ERROR: "ERROR", WARN: "WARN", INFO: "INFO", DEBUG: "DEBUG"}

ROUTES = ["/api/orders/{id}", "/api/cart", "/api/users/{id}", "/api/payments", "/api/search", "/healthz"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]


def severity_for(index: int) -> int:
    """5% ERROR, 10% WARN, 15% DEBUG, 70% INFO, spread evenly over the request."""
    slot = index % 20
    if slot == 7:
        return ERROR
    if slot in (3, 13):
        return WARN
    if slot in (1, 9, 17):
        return DEBUG
    return INFO


def _kv(key: str, value: str | int | float | bool) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    else:
        kv.value.string_value = value
    return kv


def _body_and_attributes(rng: random.Random, severity: int) -> tuple[str, list[KeyValue]]:
    route_index = rng.randrange(len(ROUTES))
    route, method = ROUTES[route_index], METHODS[route_index]
    entity = rng.randrange(10_000, 99_999)
    elapsed = round(rng.lognormvariate(3.0, 0.8), 1)
    user = f"u-{rng.randrange(1, 50_000)}"
    if severity == ERROR:
        body = rng.choice(
            [
                f"payment {entity} failed: card declined (code {rng.randrange(1000, 9999)})",
                f"connection pool exhausted after {elapsed}ms waiting for db-{rng.randrange(1, 4)}",
                f"upstream inventory returned 503 for order {entity}",
            ]
        )
        status = rng.choice([500, 502, 503])
    elif severity == WARN:
        body = f"slow query on orders took {elapsed * 10:.0f}ms (rows={rng.randrange(1, 5000)})"
        status = 200
    elif severity == DEBUG:
        body = f"cache miss for key product:{entity}"
        status = 200
    else:
        status = rng.choice([200, 200, 200, 201, 204, 404])
        body = f"{method} {route.replace('{id}', str(entity))} returned {status} in {elapsed}ms"
    attrs = [
        _kv("http.method", method),
        _kv("http.route", route),
        _kv("http.status_code", status),
        _kv("user.id", user),
        _kv("duration_ms", elapsed),
    ]
    return body, attrs


def build_export(
    seed: int,
    *,
    services: int = SERVICES,
    per_service: int = RECORDS_PER_SERVICE,
    with_placeholder: bool = True,
    extra_attributes: dict[str, str] | None = None,
) -> ExportLogsServiceRequest:
    """One export of `services * per_service` records; different seeds give different content."""
    rng = random.Random(seed)
    now = time.time_ns() - rng.randrange(0, 60_000_000_000)
    request = ExportLogsServiceRequest()
    index = 0
    for s in range(services):
        rl: ResourceLogs = request.resource_logs.add()
        rl.resource.attributes.extend(
            [
                _kv("service.name", f"svc-{s}"),
                _kv("service.version", f"1.{s % 7}.{seed % 13}"),
                _kv("deployment.environment", "production"),
                _kv("host.name", f"node-{(s * 7 + seed) % 12}"),
                _kv("k8s.pod.name", f"svc-{s}-{rng.getrandbits(32):08x}"),
            ]
        )
        if with_placeholder and s == 0:
            rl.resource.attributes.append(_kv(REQUEST_ID_KEY, PLACEHOLDER))
        sl = rl.scope_logs.add()
        sl.scope.name = "app.logging"
        sl.scope.version = "2.3.1"
        for _ in range(per_service):
            severity = severity_for(index)
            body, attrs = _body_and_attributes(rng, severity)
            record: LogRecord = sl.log_records.add()
            record.time_unix_nano = now + index * 1_000_000 + rng.randrange(1_000_000)
            record.observed_time_unix_nano = record.time_unix_nano + rng.randrange(1_000_000, 50_000_000)
            record.severity_number = severity  # type: ignore[assignment]
            record.severity_text = SEVERITY_TEXT[severity]
            record.body.string_value = body
            record.attributes.extend(attrs)
            if extra_attributes:
                record.attributes.extend(_kv(k, v) for k, v in extra_attributes.items())
            record.trace_id = rng.randbytes(16)
            record.span_id = rng.randbytes(8)
            record.flags = 1
            index += 1
    return request


@dataclass(frozen=True)
class Template:
    head: bytes
    tail: bytes
    records: int


class BodySource:
    """Unique request bodies: a template with a fixed-width request number spliced in."""

    def __init__(self, templates: int = 8, *, prefix: int = 0) -> None:
        self.templates = [self._template(seed) for seed in range(templates)]
        self.record_bytes = sum(len(t.head) + len(t.tail) for t in self.templates) / sum(
            t.records for t in self.templates
        )
        self._prefix = prefix
        self._next = 0

    @staticmethod
    def _template(seed: int) -> Template:
        request = build_export(seed)
        raw = request.SerializeToString()
        marker = PLACEHOLDER.encode()
        if raw.count(marker) != 1:
            raise RuntimeError("the request-number placeholder must occur exactly once")
        head, tail = raw.split(marker)
        return Template(
            head, tail, sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
        )

    def next(self) -> tuple[bytes, int]:
        number = self._next
        self._next += 1
        template = self.templates[number % len(self.templates)]
        unique = f"{self._prefix:03d}{number:0{REQUEST_ID_WIDTH - 3}d}".encode()
        return template.head + unique + template.tail, template.records


class HttpConnection:
    """One HTTP/1.1 keep-alive connection that POSTs and reads the status (content-length bodies)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self._head = ("\r\n".join(lines) + "\r\n").encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            sock = self._writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self._reader is not None
        try:
            self._writer.write(self._head + b"Content-Length: %d\r\n\r\n" % len(body))
            self._writer.write(body)
            head = await self._reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
                elif name == b"transfer-encoding":
                    raise RuntimeError("chunked answers are not supported by this client")
            if length:
                await self._reader.readexactly(length)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


@dataclass
class LoadResult:
    clients: int
    duration_s: float
    record_bytes: float
    requests_ok: int = 0
    records_ok: int = 0
    all_requests_ok: int = 0
    """200 answers over the whole run, warm-up included (to compare with what reached the bus)."""
    rejected_429: int = 0
    other_status: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    first_error: str = ""
    request_ms_p50: float = 0.0
    request_ms_p99: float = 0.0
    """Time to a 200 answer."""
    answer_ms_p99: float = 0.0
    """Time to any answer (200, 429 or other)."""
    records_per_s: float = 0.0
    requests_per_s: float = 0.0
    mb_per_s: float = 0.0
    cores_used: dict[str, float] = field(default_factory=dict)
    machine_cores_busy: float = 0.0
    rss_samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    timeline: list[tuple[int, int, int]] = field(default_factory=list)
    """(second since start, 200 answers, 429 answers) per second of the whole run."""
    answer_times: list[tuple[float, float]] = field(default_factory=list)
    """(seconds since start, ms to the answer) of every 200 and 429 answer of the whole run."""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_load(
    url: str | list[str],
    api_key: str,
    *,
    clients: int,
    duration_s: float,
    warmup_s: float,
    source: BodySource,
    watch: dict[str, int] | None = None,
    sample_every_s: float = 1.0,
    backoff_429_s: float = 0.0,
) -> LoadResult:
    """Closed-loop load: each client sends its next request as soon as it has an answer.

    With several URLs (receivers), client i sends to URL i modulo their number."""
    urls = [url] if isinstance(url, str) else url
    headers = {"Content-Type": "application/x-protobuf", "X-API-Key": api_key}
    result = LoadResult(clients, duration_s, source.record_bytes)
    statuses: Counter[int] = Counter()
    per_second: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0])
    latencies: list[float] = []
    answer_latencies: list[float] = []
    pids = {**(watch or {}), "load generator": os.getpid()}
    cpu = CpuWindow(pids)
    loop = asyncio.get_running_loop()
    start = loop.time()
    window_start = start + warmup_s
    window_end = window_start + duration_s
    stop = asyncio.Event()

    async def client(number: int) -> None:
        connection = HttpConnection(urls[number % len(urls)], headers)
        while not stop.is_set():
            body, records = source.next()
            sent = loop.time()
            try:
                status = await connection.post(body)
            except (OSError, asyncio.IncompleteReadError, ValueError, RuntimeError) as exc:
                if window_start <= loop.time() <= window_end:
                    result.errors += 1
                    result.first_error = result.first_error or repr(exc)
                await asyncio.sleep(0.05)
                continue
            done = loop.time()
            if status in (200, 429):
                per_second[int(done - start)][0 if status == 200 else 1] += 1
                result.answer_times.append((round(done - start, 3), round((done - sent) * 1000, 2)))
            if status == 200:
                result.all_requests_ok += 1
            if window_start <= done <= window_end:
                statuses[status] += 1
                answer_latencies.append((done - sent) * 1000)
                if status == 200:
                    result.records_ok += records
                    latencies.append((done - sent) * 1000)
            if status == 429 and backoff_429_s > 0:
                # as OTLP exporters do: wait (with jitter) before the retry
                await asyncio.sleep(backoff_429_s * random.uniform(0.5, 1.5))
        connection.close()

    async def sampler() -> None:
        while not stop.is_set():
            now = loop.time() - start
            for name, pid in (watch or {}).items():
                with contextlib.suppress(OSError):
                    result.rss_samples.setdefault(name, []).append((round(now, 2), rss_bytes(pid)))
            await asyncio.sleep(sample_every_s)

    async def window() -> None:
        await asyncio.sleep(max(0.0, window_start - loop.time()))
        cpu.start()
        await asyncio.sleep(max(0.0, window_end - loop.time()))
        cpu.stop()
        stop.set()

    tasks = [asyncio.create_task(client(n)) for n in range(clients)]
    sampling = asyncio.create_task(sampler())
    await window()
    await asyncio.wait(tasks, timeout=30)
    for task in tasks:
        task.cancel()
    sampling.cancel()

    result.timeline = [(second, ok, rejected) for second, (ok, rejected) in sorted(per_second.items())]
    result.requests_ok = statuses.pop(200, 0)
    result.rejected_429 = statuses.pop(429, 0)
    result.other_status = dict(statuses)
    result.records_per_s = result.records_ok / duration_s
    result.requests_per_s = result.requests_ok / duration_s
    result.mb_per_s = result.records_per_s * source.record_bytes / 1e6
    result.request_ms_p50 = percentile(latencies, 0.50)
    result.request_ms_p99 = percentile(latencies, 0.99)
    result.answer_ms_p99 = percentile(answer_latencies, 0.99)
    result.cores_used = cpu.cores_used
    result.machine_cores_busy = cpu.machine_cores_busy
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url",
        action="append",
        required=True,
        help="http://host:port/v1/logs; repeat it to spread the clients over several receivers",
    )
    parser.add_argument("--key", default="none", help="X-API-Key")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=15.0, help="measurement window, seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the window opens")
    parser.add_argument("--templates", type=int, default=8)
    parser.add_argument("--watch", action="append", default=[], help="NAME=PID to report CPU and RSS of")
    parser.add_argument("--sample-every", type=float, default=1.0, help="RSS sampling period, seconds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--backoff-429", type=float, default=0.0, help="seconds a client waits after a 429 (0: none)"
    )
    args = parser.parse_args()

    source = BodySource(args.templates)
    watch = {name: int(pid) for name, _, pid in (w.partition("=") for w in args.watch)}
    result = uvloop.run(
        run_load(
            args.url,
            args.key,
            clients=args.clients,
            duration_s=args.duration,
            warmup_s=args.warmup,
            source=source,
            watch=watch,
            sample_every_s=args.sample_every,
            backoff_429_s=args.backoff_429,
        )
    )
    if args.json:
        print_json(asdict(result))
        return
    out: dict[str, Any] = asdict(result)
    out.pop("rss_samples")
    for key, value in out.items():
        print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
