"""The `rules` engine's knowledge base: common failure patterns as data.

A pattern matches a problem when one of its `phrases` occurs in the problem's template, samples or
attributes (ignoring case), or one of its `signals` (regular expressions, also case-insensitive)
does. Phrases are cheap substring checks; signals are kept for what needs word boundaries or
wildcards. Templates have their variables masked as `<*>` (numbers, ids, hosts, "x509" and "429"
included), so every pattern also carries wording that survives masking; numeric signals such as
status codes match in samples only.

Signals are bounded (`.{0,N}`, no nested repetition) because they run on untrusted log text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vigil.agents.builtin.models import Severity

__all__ = ["KNOWLEDGE_BASE", "FailurePattern", "anchor"]

_CAMEL_CASE = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*")
# A status code is only a signal next to words that make it one ("status 429", not "order 429").
# The leading \b keeps attributes such as `http.response.status_code=503` (this service's own
# answer, not a dependency's) out.
_STATUS_WORDS = (
    r"\bstatus(?: code)?",
    r"\bcode",
    r"\bHTTP(?:/[\d.]{1,3})?",
    r"\breturned",
    r"\bresponded with",
    r"\bresponse",
    r"\bgot",
    r"\breceived",
)


def _status(code: str) -> tuple[str, ...]:
    return tuple(rf"{word}[=:]? ?\"?{code}\b" for word in _STATUS_WORDS)


def anchor(signal: str) -> str:
    """The longest run of literal text (lower case) that every match of `signal` contains.

    Only the top level of the expression counts: groups, classes, escapes and optional characters
    end a run. A signal with a top-level `|` has no such run; write its branches as two signals.
    """
    runs: list[str] = []
    run, depth, i, literal_before = "", 0, 0, False
    while i < len(signal):
        char, i = signal[i], i + 1
        if char in "?*+{" and literal_before:
            end = signal.index("}", i) + 1 if char == "{" else i
            optional = char in "?*" or signal[i:end].startswith("0")
            runs.append(run[:-1] if optional else run)
            run, i, literal_before = "", end, False
            continue
        if char in "?*+{":  # quantifies a group, class or escape, which are no runs anyway
            i = signal.index("}", i) + 1 if char == "{" else i
            continue
        literal = ""
        if char == "\\":
            escaped, i = signal[i : i + 1], i + 1
            literal = escaped if escaped and not escaped.isalnum() else ""
        elif char == "[":
            i = signal.index("]", i + 1 if signal[i : i + 1] in ("]", "^") else i) + 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            raise ValueError(f"top-level alternation in signal {signal!r}")
        elif char not in ".^$|":
            literal = char
        literal_before = bool(literal) and depth == 0
        if literal_before:
            run += literal
        elif run:
            runs.append(run)
            run = ""
    runs.append(run)
    return max(runs, key=len).lower()


@dataclass(frozen=True, slots=True)
class FailurePattern:
    error_type: str
    """CamelCase class, the `error_type` of an analysis this pattern explains."""
    title: str
    """Phrase for summaries, read after a service name: "<service>: <title> (<n> records)"."""
    severity: Severity
    """Severity when it occurs at ordinary volume; the engine escalates with volume and breadth."""
    root_cause: str
    remediation: tuple[str, ...]
    notify: bool
    confidence: float
    """How often a match means what `root_cause` says."""
    specificity: float
    """How unambiguous the phrases and signals are; the most specific matching pattern classifies a
    problem."""
    phrases: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()
    probes: tuple[tuple[str, re.Pattern[str] | None], ...] = field(init=False, repr=False, compare=False)
    """What the engine checks, in order: a lower-case text that must occur in the lower-cased
    haystack, and the signal's regex to confirm (None for a phrase, which is its own proof)."""

    def __post_init__(self) -> None:
        if not _CAMEL_CASE.fullmatch(self.error_type):
            raise ValueError(f"error_type must be CamelCase: {self.error_type!r}")
        if not (0.0 < self.confidence <= 1.0 and 0.0 < self.specificity <= 1.0):
            raise ValueError(f"{self.error_type}: confidence and specificity must be in (0, 1]")
        if not (self.phrases or self.signals) or not self.remediation:
            raise ValueError(f"{self.error_type}: needs phrases or signals, and remediation")
        probes: list[tuple[str, re.Pattern[str] | None]] = [(p.lower(), None) for p in self.phrases]
        for signal in self.signals:
            key = anchor(signal)
            if len(key) < 3:
                raise ValueError(f"{self.error_type}: signal {signal!r} needs a literal of 3+ characters")
            # ASCII case folding, so that a match implies the anchor in `str.lower()` text.
            probes.append((key, re.compile(signal, re.IGNORECASE | re.ASCII)))
        object.__setattr__(self, "probes", tuple(probes))


KNOWLEDGE_BASE: tuple[FailurePattern, ...] = (
    FailurePattern(
        error_type="CertificateExpired",
        title="TLS certificate expired",
        phrases=(
            "certificate has expired",
            "certificate expired",
            "CERT_HAS_EXPIRED",
            "CertificateExpiredException",
            "certificate is not yet valid",
        ),
        severity="critical",
        root_cause="A TLS certificate in the call path is past its validity period (or the clock is "
        "wrong), so every handshake with that peer fails.",
        remediation=(
            "Identify the endpoint from the samples and check its certificate dates "
            "(`openssl s_client -connect host:port | openssl x509 -noout -dates`).",
            "Renew or rotate the certificate (cert-manager: check the Certificate and CertificateRequest "
            "status) and reload the server or restart the pods that cache it.",
            "Verify the clocks (NTP) of the failing hosts if the certificate dates look right.",
            "Add an expiry alert (for example 21 days ahead) for every certificate in the path.",
        ),
        notify=True,
        confidence=0.95,
        specificity=0.98,
    ),
    FailurePattern(
        error_type="CacheMemoryFull",
        title="cache out of memory (maxmemory reached)",
        phrases=(
            "OOM command not allowed when used memory",
            "used memory > 'maxmemory'",
        ),
        severity="critical",
        root_cause="Redis reached `maxmemory` with a `noeviction` policy (or keys that cannot be "
        "evicted), so it rejects writes.",
        remediation=(
            "Check `INFO memory` and `CONFIG GET maxmemory-policy` on the Redis instance.",
            "Set TTLs on cache keys or switch to an evicting policy such as `allkeys-lru` for a cache.",
            "Raise `maxmemory` (and the container limit) or scale out the cluster.",
            "Look for a recent change that writes large or unbounded keys.",
        ),
        notify=True,
        confidence=0.9,
        specificity=0.98,
    ),
    FailurePattern(
        error_type="OutOfMemoryKilled",
        title="out of memory",
        phrases=(
            "OOMKilled",
            "OOMKilling",
            "Memory cgroup out of memory",
            "Out of memory: Kill",
            "oom-kill",
            "oom_kill",
            "OutOfMemoryError",
            "JavaScript heap out of memory",
            "Reached heap limit",
            "runtime: out of memory",
            "Cannot allocate memory",
        ),
        signals=(
            r"\bMemoryError\b",
            r"exit code:? 137\b",
        ),
        severity="critical",
        root_cause="The process exceeded its memory limit (container limit, JVM/V8 heap or host "
        "memory) and was killed or failed to allocate: a leak, a load spike or a limit set too low.",
        remediation=(
            "Compare the container's memory usage with its limit just before the kills "
            "(`kubectl describe pod`, container_memory_working_set_bytes).",
            "If usage grows steadily until the kill, capture a heap profile and look for a leak "
            "(unbounded caches, large result sets loaded in memory).",
            "Align runtime heap settings with the container limit (-XX:MaxRAMPercentage, "
            "--max-old-space-size, GOMEMLIMIT).",
            "Raise the memory limit or add replicas only once the growth is understood.",
        ),
        notify=True,
        confidence=0.9,
        specificity=0.97,
    ),
    FailurePattern(
        error_type="CrashLoopBackOff",
        title="container crash loop",
        phrases=(
            "CrashLoopBackOff",
            "Back-off restarting failed container",
        ),
        severity="critical",
        root_cause="A container exits shortly after each start and Kubernetes keeps restarting it "
        "with growing back-off; the service runs with fewer or no ready replicas.",
        remediation=(
            "Read the previous run's logs: `kubectl logs <pod> --previous`.",
            "Check the exit code and reason: `kubectl describe pod <pod>` (137: killed, often OOM; "
            "1: application error; 127: missing binary).",
            "Check what changed: the latest rollout, ConfigMaps, Secrets and dependencies it needs at "
            "start-up.",
            "Roll back the deployment (`kubectl rollout undo`) if the loop started with a release.",
        ),
        notify=True,
        confidence=0.9,
        specificity=0.97,
    ),
    FailurePattern(
        error_type="ImagePullFailure",
        title="container image pull failing",
        phrases=(
            "ErrImagePull",
            "ImagePullBackOff",
            "Failed to pull image",
            "Back-off pulling image",
            "InvalidImageName",
            "pull access denied",
            "manifest unknown",
            "reached your pull rate limit",
        ),
        severity="warning",
        root_cause="Kubernetes cannot pull the container image: wrong tag or name, missing registry "
        "credentials, or a registry that is unreachable or rate-limiting; new pods cannot start.",
        remediation=(
            "Check the exact error in `kubectl describe pod <pod>` (Events).",
            "Verify that the image and tag exist in the registry (`crane manifest` or `docker manifest "
            "inspect`).",
            "Verify the imagePullSecrets of the pod's service account and that they are not expired.",
            "For Docker Hub rate limits, authenticate pulls or mirror the image to your own registry.",
        ),
        notify=True,
        confidence=0.9,
        specificity=0.97,
    ),
    FailurePattern(
        error_type="DatabaseConnectionLimit",
        title="database connection limit reached",
        phrases=(
            "remaining connection slots are reserved",
            "too many clients already",
            "too many connections for role",
            "too many connections for database",
            "max number of clients reached",
            "ER_CON_COUNT_ERROR",
        ),
        signals=(r"\bToo many connections\b",),
        severity="critical",
        root_cause="The database server refuses new connections because max_connections is used "
        "up: client pools across all replicas open more connections than the server allows, or "
        "connections leak.",
        remediation=(
            "List the connections per client on the server (Postgres: pg_stat_activity grouped by "
            "application_name, client_addr; MySQL: SHOW PROCESSLIST).",
            "Make sum(pool size * replicas) of every client stay below the server's max_connections.",
            "Put a connection pooler (PgBouncer, ProxySQL, RDS Proxy) in front of the database.",
            "Look for idle-in-transaction sessions or leaked connections and set idle timeouts.",
        ),
        notify=True,
        confidence=0.9,
        specificity=0.96,
    ),
    FailurePattern(
        error_type="ConnectionPoolExhausted",
        title="connection pool exhausted",
        phrases=(
            "Connection is not available, request timed out",
            "QueuePool limit of size",
            "pool exhausted",
            "pool is exhausted",
            "pool is probably full",
            "Timeout acquiring a connection",
            "timeout exceeded when trying to connect",
            "Timeout waiting for idle object",
            "Could not get a resource from the pool",
            "prior to obtaining a connection from the pool",
        ),
        signals=(
            r"Timeout after \S{1,20} of waiting for a connection",
            r"time(?:d ?)?out waiting for (?:a )?(?:free |available )?(?:DB |database )?connection",
            r"(?:could not|unable to|failed to) (?:obtain|get) (?:a )?connection from (?:the )?pool",
            r"(?:could not|unable to|failed to) acquire (?:a |JDBC )?(?:db |database )?connection",
        ),
        severity="critical",
        root_cause="All connections of the client-side pool are in use, so requests wait and time "
        "out: slow queries or a slow database hold connections longer, load grew, or connections "
        "leak (not returned to the pool).",
        remediation=(
            "Check pool metrics (active, idle, pending) and the database's query latency at the time "
            "of the errors.",
            "Find slow or blocked queries holding connections (pg_stat_activity, slow query log) and "
            "fix or time them out (statement_timeout).",
            "Enable leak detection (HikariCP leakDetectionThreshold, SQLAlchemy pool events) and make "
            "sure every connection or session is closed on all code paths.",
            "Only then size the pool: raise it if the database has headroom, keeping "
            "pool size * replicas below max_connections.",
        ),
        notify=True,
        confidence=0.85,
        specificity=0.95,
    ),
    FailurePattern(
        error_type="DatabaseDeadlock",
        title="database deadlocks",
        phrases=(
            "Deadlock found when trying to get lock",
            "deadlock detected",
            "ER_LOCK_DEADLOCK",
            "chosen as the deadlock victim",
            "DeadlockLoserDataAccessException",
            "Lock wait timeout exceeded",
            "could not serialize access due to concurrent update",
            "CannotAcquireLockException",
        ),
        severity="warning",
        root_cause="Concurrent transactions lock the same rows in different orders (or hold locks "
        "too long), and the database aborts one of them.",
        remediation=(
            "Get the deadlock report (MySQL: SHOW ENGINE INNODB STATUS; Postgres: the server log "
            "around 'deadlock detected') to see the two statements and the rows involved.",
            "Make transactions touch rows in a consistent order and keep them short (no network calls "
            "inside a transaction).",
            "Add indexes so that updates lock only the rows they need.",
            "Retry aborted transactions with back-off, since deadlock victims are safe to retry.",
        ),
        notify=False,
        confidence=0.9,
        specificity=0.95,
    ),
    FailurePattern(
        error_type="DiskFull",
        title="disk full",
        phrases=(
            "No space left on device",
            "ENOSPC",
            "disk full",
            "disk is full",
            "DiskPressure",
            "low on resource: ephemeral-storage",
            "flood stage disk watermark",
            "flood-stage disk watermark",
            "Disk quota exceeded",
            "could not extend file",
        ),
        signals=(r"Errno 28\b",),
        severity="critical",
        root_cause="A volume or node disk has no free space left (logs, temporary files, database "
        "growth or an unbounded local cache), so writes fail.",
        remediation=(
            "Find the full filesystem and what grew (`df -h`, `du -xh --max-depth=1`; on Kubernetes "
            "the PVC usage or node ephemeral storage).",
            "Free space safely: rotate or ship logs, clear temporary files, drop old data.",
            "Expand the volume (PVC resize) or add storage if the growth is legitimate.",
            "Add a disk usage alert (for example at 80%) and retention limits for whatever filled it.",
        ),
        notify=True,
        confidence=0.95,
        specificity=0.95,
    ),
    FailurePattern(
        error_type="FileDescriptorsExhausted",
        title="too many open files",
        phrases=("too many open files",),
        signals=(r"\bEMFILE\b",),
        severity="critical",
        root_cause="The process reached its open file descriptor limit: leaked sockets or files, or "
        "a limit (ulimit -n) too low for its connection count.",
        remediation=(
            "Count the process's descriptors and their kind (`ls -l /proc/<pid>/fd | wc -l`, `lsof -p "
            "<pid>`).",
            "If they grow without bound, find the leak: response bodies or files not closed, clients "
            "created per request.",
            "Raise the limit (LimitNOFILE, container ulimits) if the usage is legitimate.",
        ),
        notify=True,
        confidence=0.9,
        specificity=0.95,
    ),
    FailurePattern(
        error_type="SchemaMismatch",
        title="database schema mismatch",
        phrases=(
            "no such table",
            "no such column",
            "Invalid column name",
            "Invalid object name",
            "UndefinedColumn",
            "UndefinedTable",
            "PendingMigrationError",
            "Migrations are pending",
            "migration checksum mismatch",
            "Can't locate revision",
        ),
        signals=(
            r"column \S{1,100} does not exist",
            r"relation \S{1,100} does not exist",
            r"Unknown column \S{1,100} in",
            r"Table \S{1,100} doesn't exist",
        ),
        severity="critical",
        root_cause="The code expects a database schema that is not there: a migration did not run, "
        "ran in the wrong order, or the release went out before (or without) its migration.",
        remediation=(
            "Compare the schema version the release expects with the one applied (flyway info, "
            "alembic current, rails db:migrate:status).",
            "Run the missing migration, or roll the release back to the version matching the schema.",
            "Make deploys run migrations before the new code starts, and keep schema changes "
            "backward compatible (expand, then contract).",
        ),
        notify=True,
        confidence=0.85,
        specificity=0.93,
    ),
    FailurePattern(
        error_type="UpstreamUnavailable",
        title="no healthy upstream",
        phrases=(
            "upstream connect error or disconnect/reset before headers",
            "no healthy upstream",
            "no live upstreams",
            "while connecting to upstream",
            "code = Unavailable",
            "StatusRuntimeException: UNAVAILABLE",
        ),
        severity="critical",
        root_cause="The proxy or client found no reachable, healthy instance of the upstream service: "
        "its pods are down, not ready or failing health checks, or its endpoints changed.",
        remediation=(
            "Check the upstream service's endpoints and pod readiness (`kubectl get endpoints`, "
            "`kubectl get pods`).",
            "Check the upstream's own logs and recent rollouts for crashes at the same time.",
            "Review the proxy's cluster and outlier-detection settings (Envoy: "
            "`/clusters` admin endpoint; nginx: upstream block and max_fails).",
        ),
        notify=True,
        confidence=0.85,
        specificity=0.92,
    ),
    FailurePattern(
        error_type="CircuitBreakerOpen",
        title="circuit breaker open",
        phrases=(
            "CallNotPermittedException",
            "short-circuited and is OPEN",
            "breaker is open",
            "circuit breaker open",
            "circuit is open",
            "circuit open",
        ),
        signals=(
            r"CircuitBreaker \S{1,100} is OPEN",
            r"CircuitBreaker .{0,100}to OPEN",
        ),
        severity="warning",
        root_cause="A circuit breaker opened because calls to a dependency kept failing or timing out; "
        "calls are now rejected fast without reaching it.",
        remediation=(
            "Find the dependency behind the breaker (its name is in the message) and its error rate "
            "and latency when the breaker opened.",
            "Fix the dependency first; the breaker closes by itself after its wait duration.",
            "Check the fallback path so that rejected calls degrade gracefully.",
            "Revisit the breaker's thresholds if it opens on normal latency.",
        ),
        notify=False,
        confidence=0.85,
        specificity=0.92,
    ),
    FailurePattern(
        error_type="AuthenticationFailure",
        title="authentication failures",
        phrases=(
            "password authentication failed for user",
            "SaslAuthenticationException",
            "SASL authentication failed",
            "authentication failed",
            "invalid credentials",
            "ExpiredJwtException",
            "ExpiredToken",
            "invalid_grant",
            "invalid_client",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "security token included in the request is",
        ),
        signals=(
            r"Access denied for user \S{1,200} \(using password",
            r"\bNOAUTH\b",
            r"\bWRONGPASS\b",
            r"invalid (?:api[ _-]?key|token)",
            r"\bUnauthorized\b",
            r"\bUNAUTHENTICATED\b",
            r"(?:token|jwt|credentials?) (?:is |has )?expired",
        ),
        severity="warning",
        root_cause="Credentials were rejected: a password, key or token was rotated, expired or is "
        "missing in this environment, or a client is misconfigured (or someone is guessing).",
        remediation=(
            "Identify the principal (user, service account, key id) and the target from the samples.",
            "Check whether the secret was rotated recently and whether every consumer got the new "
            "value (Secret, vault lease, CI variable); restart pods that cache it.",
            "For expired tokens, check the refresh logic and clock skew.",
            "If the sources are unknown clients, treat it as a possible credential-stuffing attempt "
            "and rate-limit or block them.",
        ),
        notify=True,
        confidence=0.85,
        specificity=0.9,
    ),
    FailurePattern(
        error_type="DnsResolutionFailure",
        title="DNS resolution failures",
        phrases=(
            "no such host",
            "Name or service not known",
            "Temporary failure in name resolution",
            "UnknownHostException",
            "could not translate host name",
            "nodename nor servname provided",
            "server misbehaving",
            "Could not resolve host",
        ),
        signals=(r"\bENOTFOUND\b", r"\bEAI_AGAIN\b", r"\bNXDOMAIN\b"),
        severity="critical",
        root_cause="A host name could not be resolved: a wrong or deleted service name, a missing DNS "
        "record, or the cluster DNS (CoreDNS, kube-dns) is failing or overloaded.",
        remediation=(
            "Check the exact name in the samples and whether it exists "
            "(`kubectl get svc -A`, `dig`/`nslookup` from a pod in the same namespace).",
            "If all names fail, check CoreDNS pods, their logs and their load.",
            "If only one name fails, check recent config changes that introduced it.",
            "Consider NodeLocal DNSCache and lowering ndots to cut lookups.",
        ),
        notify=True,
        confidence=0.85,
        specificity=0.9,
    ),
    FailurePattern(
        error_type="ResourceQuotaExceeded",
        title="resource quota exceeded",
        phrases=(
            "exceeded quota",
            "QuotaExceeded",
            "quota exceeded",
            "must specify limits",
            "must specify requests",
        ),
        signals=(r"\bLimitExceeded", r"Quota \S{1,60} exceeded"),
        severity="warning",
        root_cause="A namespace ResourceQuota or a cloud account limit is used up, so new "
        "resources (pods, volumes, instances) are refused.",
        remediation=(
            "See the quota and its usage (`kubectl describe resourcequota -n <namespace>`, or the "
            "cloud console's quotas page).",
            "Find what consumes it: leftover jobs, replicas scaled up, requests set too high.",
            "Free resources or request a higher quota.",
        ),
        notify=True,
        confidence=0.85,
        specificity=0.9,
    ),
    FailurePattern(
        error_type="SchedulingFailure",
        title="pods cannot be scheduled",
        phrases=(
            "FailedScheduling",
            "nodes are available",
            "untolerated taint",
            "unbound immediate PersistentVolumeClaims",
        ),
        signals=(r"Insufficient (?:cpu|memory|ephemeral-storage|nvidia)",),
        severity="warning",
        root_cause="No node satisfies the pod's requests, affinity, taints or volume constraints, so "
        "pods stay Pending.",
        remediation=(
            "Read the scheduler's reasons: `kubectl describe pod <pod>` (Events).",
            "Compare the pod's requests with the nodes' allocatable capacity (`kubectl describe nodes`).",
            "Check the cluster autoscaler's status and node group limits.",
            "Relax affinity or add tolerations only if they are wrong, not to force placement.",
        ),
        notify=False,
        confidence=0.85,
        specificity=0.9,
    ),
    FailurePattern(
        error_type="WriteToReadOnlyReplica",
        title="writes sent to a read-only replica",
        phrases=(
            "read-only transaction",
            "You can't write against a read only replica",
            "running with the --read-only option",
            "NOT_LEADER_FOR_PARTITION",
            "NOT_LEADER_OR_FOLLOWER",
            "NotLeaderForPartitionException",
            "NotLeaderOrFollowerException",
        ),
        severity="warning",
        root_cause="Writes reached a node that is (now) a replica: a failover or leader change "
        "happened and the client still points at the old primary, or it uses the read endpoint "
        "for writes.",
        remediation=(
            "Check whether a failover or leader election happened at the first error.",
            "Make clients use the primary/writer endpoint and refresh DNS or topology after failover "
            "(short DNS TTL, Sentinel/cluster-aware clients).",
            "Restart the clients holding stale connections if they do not recover.",
        ),
        notify=True,
        confidence=0.85,
        specificity=0.9,
    ),
    FailurePattern(
        error_type="TlsHandshakeFailure",
        title="TLS handshake failures",
        phrases=(
            "handshake failure",
            "handshake_failure",
            "SSLHandshakeException",
            "SSLError",
            "certificate verify failed",
            "signed by unknown authority",
            "unable to verify the first certificate",
            "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
            "PKIX path building failed",
            "self signed certificate",
            "self-signed certificate",
            "WRONG_VERSION_NUMBER",
            "tls: bad certificate",
            "does not look like a TLS handshake",
        ),
        signals=(r"certificate is valid for \S{1,200}, not",),
        severity="critical",
        root_cause="The TLS handshake fails: an untrusted or self-signed CA, a host name that does "
        "not match the certificate, a protocol mismatch (plain HTTP to a TLS port or the reverse), "
        "or a missing client certificate.",
        remediation=(
            "Reproduce from the client's network with `openssl s_client -connect host:port "
            "-servername host` and read the verify result.",
            "Check that the client trusts the issuing CA (CA bundle, Java truststore) and that the "
            "certificate's SANs include the host name used.",
            "Check the scheme and port (https vs http) and mTLS settings of the mesh or proxy.",
        ),
        notify=True,
        confidence=0.8,
        specificity=0.88,
    ),
    FailurePattern(
        error_type="HealthCheckFailing",
        title="health checks failing",
        phrases=(
            "Readiness probe failed",
            "Liveness probe failed",
            "Startup probe failed",
            "failed liveness probe",
            "failed readiness probe",
            "failed startup probe",
            "health check failed",
            "healthcheck failed",
        ),
        severity="warning",
        root_cause="The service does not answer its health checks in time: it is overloaded, "
        "blocked on a dependency the check includes, or the probe is too strict; failed liveness "
        "probes restart it.",
        remediation=(
            "Check the probe's error in the samples (timeout, connection refused, HTTP status).",
            "Compare the probe's timeoutSeconds and failureThreshold with the endpoint's latency under load.",
            "Keep liveness checks free of dependency calls so that a slow dependency does not restart "
            "every pod.",
        ),
        notify=False,
        confidence=0.8,
        specificity=0.88,
    ),
    FailurePattern(
        error_type="RateLimited",
        title="rate limited",
        phrases=(
            "Too Many Requests",
            "rate limit",
            "rate-limit",
            "ratelimit",
            "ThrottlingException",
            "Rate exceeded",
            "RESOURCE_EXHAUSTED",
            "code = ResourceExhausted",
            "limiting requests, excess",
        ),
        signals=(
            *_status(r"429"),
            r"\bThrottl(?:ed|ing)\b",
            r"\bSlowDown\b",
        ),
        severity="warning",
        root_cause="A dependency or API is rejecting requests over its rate limit: traffic grew, a "
        "retry loop amplifies load, or the limit or quota is too low.",
        remediation=(
            "Identify the limited API and limit (the samples usually name it; check Retry-After and "
            "X-RateLimit headers).",
            "Retry with exponential back-off and jitter honoring Retry-After; cap retries.",
            "Reduce call volume: batch, cache, or deduplicate requests.",
            "Request a higher limit if the traffic is legitimate.",
        ),
        notify=False,
        confidence=0.85,
        specificity=0.85,
    ),
    FailurePattern(
        error_type="AuthorizationDenied",
        title="authorization denied",
        phrases=(
            "permission denied for table",
            "permission denied for relation",
            "permission denied for schema",
            "permission denied for database",
            "permission denied for sequence",
            "permission denied for function",
            "access denied",
            "access is denied",
            "(AccessDeniedException)",
            "AccessDeniedException: User",
            "is not authorized to perform",
            "not authorized to access",
            "PERMISSION_DENIED",
            "code = PermissionDenied",
            "insufficient scope",
            "insufficient permissions",
            "insufficient privileges",
            "TopicAuthorizationException",
            "GroupAuthorizationException",
            "ClusterAuthorizationException",
            "command denied to user",
        ),
        signals=(
            r"\bForbidden\b",
            r"\bAccessDenied\b",
            r"cannot (?:get|list|watch|create|update|patch|delete) resource",
            r"\bNOPERM\b",
        ),
        severity="warning",
        root_cause="The caller is authenticated but lacks permission for the operation: a missing "
        "grant, IAM policy or RBAC role, or a new code path that needs one.",
        remediation=(
            "Identify the principal, the action and the resource from the samples.",
            "Compare with the grants (database GRANTs, IAM policy simulator, `kubectl auth can-i --as`).",
            "Grant the least privilege needed, or revert the change that introduced the new call.",
        ),
        notify=False,
        confidence=0.8,
        specificity=0.85,
    ),
    FailurePattern(
        error_type="ConfigurationError",
        title="configuration error",
        phrases=(
            "CreateContainerConfigError",
            "Could not resolve placeholder",
            "ImproperlyConfigured",
            "APPLICATION FAILED TO START",
            "invalid configuration",
            "configuration error",
            "configuration invalid",
            "ConfigurationException",
        ),
        signals=(
            r"couldn't find key \S{1,100} in (?:ConfigMap|Secret)",
            r"(?:secret|configmap) \S{1,100} not found",
            r"missing required (?:environment variable|env(?:ironment)? var|config(?:uration)?|setting)",
            r"environment variable \S{1,100} (?:is )?not set",
            r"KeyError: '(?-i:[A-Z][A-Z0-9_]{2,})'",
            r"failed to (?:load|parse|read) config",
        ),
        severity="warning",
        root_cause="The service started with missing or invalid configuration (an environment "
        "variable, ConfigMap or Secret key, or a malformed config file), usually after a deploy or "
        "config change.",
        remediation=(
            "Find the missing or invalid key in the samples.",
            "Diff the deployed configuration against the last working release (ConfigMaps, Secrets, "
            "environment).",
            "Restore the value or roll back, then validate configuration at start-up so the next "
            "mistake fails the rollout, not the traffic.",
        ),
        notify=True,
        confidence=0.8,
        specificity=0.85,
    ),
    FailurePattern(
        error_type="QueueBacklog",
        title="queue backlog / consumer lag",
        phrases=(
            "consumer lag",
            "CommitFailedException",
            "Offset commit failed",
            "max.poll.interval.ms",
            "message backlog",
            "queue backlog",
            "consumer backlog",
        ),
        signals=(
            r"\blag\b.{0,40}(?:exceed|threshold|behind)",
            r"(?:queue|buffer|channel) (?:is )?full",
            r"backlog (?:of|is|grow|exceed)",
            r"dropp(?:ed|ing) \S{0,20} ?(?:messages|events|spans|logs|records)",
        ),
        severity="warning",
        root_cause="Consumers fall behind producers: consumption is slower than the inflow (slow "
        "processing, too few consumers, rebalances), so messages queue up or are dropped.",
        remediation=(
            "Check lag per partition or queue and the consumers' processing time.",
            "Look for rebalances caused by processing longer than max.poll.interval.ms; lower the "
            "batch size or raise the interval.",
            "Scale consumers (up to the partition count) or speed up processing.",
            "Check for a poison message that a consumer retries forever.",
        ),
        notify=False,
        confidence=0.75,
        specificity=0.85,
    ),
    FailurePattern(
        error_type="NullReference",
        title="null reference errors",
        phrases=(
            "NullPointerException",
            "nil pointer dereference",
            "'NoneType' object",
            "NullReferenceException",
            "Object reference not set to an instance",
        ),
        signals=(
            r"Cannot read propert(?:y|ies) of (?:undefined|null)",
            r"undefined is not (?:a function|an object)",
        ),
        severity="warning",
        root_cause="Code dereferenced a null/None/nil value: an unexpected missing field in input "
        "or a dependency's response, or a recent code change.",
        remediation=(
            "Locate the failing line from the stack trace in the samples.",
            "Find which input lacks the value (the trace ids lead to the request) and whether it "
            "started with a release.",
            "Handle the missing value explicitly and add a regression test; roll back if it is new.",
        ),
        notify=False,
        confidence=0.85,
        specificity=0.85,
    ),
    FailurePattern(
        error_type="SegmentationFault",
        title="native crash (segmentation fault)",
        phrases=(
            "segmentation fault",
            "core dumped",
        ),
        signals=(
            r"\bSIGSEGV\b",
            r"exit code:? 139\b",
        ),
        severity="warning",
        root_cause="The process crashed in native code (invalid memory access): a bug in a native "
        "extension or library, incompatible binaries, or corrupted memory.",
        remediation=(
            "Get the native stack (core dump, faulthandler for Python, hs_err file for the JVM).",
            "Check recent upgrades of native dependencies and the base image.",
            "Pin the previous versions if the crash started with an upgrade.",
        ),
        notify=True,
        confidence=0.8,
        specificity=0.85,
    ),
    FailurePattern(
        error_type="ConnectionRefused",
        title="connection refused",
        phrases=(
            "connection refused",
            "ECONNREFUSED",
            "actively refused it",
            "Can't connect to MySQL server",
            "Can't connect to local MySQL server",
            "Is the server running on host",
            "Error 111 connecting",
        ),
        severity="critical",
        root_cause="Nothing accepts connections at the target address: the dependency is down, "
        "restarting or not yet listening, or the client uses a wrong host or port.",
        remediation=(
            "Identify the target host:port from the samples and check that the dependency is up and "
            "listening there (pods ready, service endpoints, port).",
            "Check the dependency's own logs and restarts at the first error.",
            "Check the client's configured address against the dependency's actual service and port.",
            "Make clients retry connections with back-off so that restarts do not fail requests.",
        ),
        notify=True,
        confidence=0.85,
        specificity=0.8,
    ),
    FailurePattern(
        error_type="PayloadDecodeError",
        title="malformed payloads",
        phrases=(
            "JSONDecodeError",
            "JsonParseException",
            "JsonMappingException",
            "MismatchedInputException",
            "is not valid JSON",
            "cannot unmarshal",
        ),
        signals=(
            r"Unexpected token .{1,5} in JSON",
            r"invalid character .{1,5} looking for beginning of value",
            r"Expecting value: line \S+ column",
        ),
        severity="warning",
        root_cause="A payload could not be decoded: a producer or dependency changed its format, "
        "or an error page (HTML from a proxy) came back instead of JSON.",
        remediation=(
            "Capture one raw payload (status code, content type, first bytes) for a failing request.",
            "If it is an HTML error page, investigate the proxy or dependency returning it.",
            "If the format changed, align the contract (schema registry, API version) and add a "
            "contract test.",
        ),
        notify=False,
        confidence=0.75,
        specificity=0.8,
    ),
    FailurePattern(
        error_type="DependencyServerError",
        title="5xx errors from dependencies",
        phrases=(
            "Bad Gateway",
            "Service Unavailable",
            "HttpServerErrorException",
            "upstream prematurely closed connection",
        ),
        signals=(
            r"\b50[0-35-9] Internal Server Error",
            *_status(r"5(?:0[0-35-9]|[1-9]\d)"),
            r"\bcode = Internal\b",
        ),
        severity="warning",
        root_cause="A dependency answers with 5xx server errors: it is failing, overloaded or "
        "restarting; this service is (also) a victim.",
        remediation=(
            "Identify the dependency and endpoint from the samples and check its own logs, error rate "
            "and recent deploys.",
            "Check whether the errors line up with its restarts or saturation (CPU, memory, pools).",
            "Protect this service meanwhile: timeouts, bounded retries with back-off, a circuit "
            "breaker, a fallback.",
        ),
        notify=False,
        confidence=0.75,
        specificity=0.75,
    ),
    FailurePattern(
        error_type="UpstreamTimeout",
        title="timeouts calling dependencies",
        phrases=(
            "context deadline exceeded",
            "DEADLINE_EXCEEDED",
            "code = DeadlineExceeded",
            "timed out",
            "i/o timeout",
            "Client.Timeout exceeded",
            "SocketTimeoutException",
            "TimeoutException",
            "TimeoutError",
            "ReadTimeout",
            "ConnectTimeout",
            "ETIMEDOUT",
            "ESOCKETTIMEDOUT",
            "upstream request timeout",
            "Gateway Timeout",
            "statement timeout",
        ),
        signals=(
            *_status(r"504"),
            r"timeout (?:exceeded|expired|elapsed|while|waiting)",
        ),
        severity="warning",
        root_cause="Calls to a dependency take longer than the client's timeout: the dependency is "
        "slow or overloaded, the network drops packets, or the timeout is too tight for the call.",
        remediation=(
            "Identify the slow dependency and operation from the samples and traces.",
            "Check its latency percentiles and saturation at the time of the errors.",
            "Check that timeouts are layered (client < proxy < caller) and retries bounded, so that "
            "retries do not amplify the overload.",
            "Tune the timeout only if the call's normal latency legitimately exceeds it.",
        ),
        notify=False,
        confidence=0.7,
        specificity=0.7,
    ),
    FailurePattern(
        error_type="ConnectionReset",
        title="connections reset",
        phrases=(
            "connection reset",
            "ECONNRESET",
            "socket hang up",
            "broken pipe",
            "RemoteDisconnected",
            "Remote end closed connection",
            "server closed the connection unexpectedly",
            "unexpected EOF",
        ),
        signals=(r"\bEPIPE\b",),
        severity="warning",
        root_cause="Established connections were closed by the peer or a middlebox: the peer "
        "restarted, or an idle timeout (load balancer, NAT, proxy) closed a pooled keep-alive "
        "connection the client reused.",
        remediation=(
            "Check whether the resets line up with restarts or deploys of the peer.",
            "Keep client idle timeouts shorter than the server's and the load balancer's, and "
            "validate pooled connections before use.",
            "Retry idempotent requests once on reset.",
        ),
        notify=False,
        confidence=0.65,
        specificity=0.65,
    ),
    FailurePattern(
        error_type="FileNotFound",
        title="files not found",
        phrases=(
            "No such file or directory",
            "FileNotFoundError",
            "FileNotFoundException",
            "cannot find the file specified",
            "cannot find the path specified",
        ),
        signals=(r"\bENOENT\b",),
        severity="warning",
        root_cause="The service reads a file or directory that does not exist: a missing volume "
        "mount, a wrong path in configuration, or a file the image no longer contains.",
        remediation=(
            "Take the path from the samples and check the pod's volume mounts and the image contents.",
            "Check configuration that builds the path (environment, ConfigMaps) against the last "
            "working release.",
        ),
        notify=False,
        confidence=0.75,
        specificity=0.6,
    ),
    FailurePattern(
        error_type="FilePermissionDenied",
        title="file permission denied",
        phrases=(
            "permission denied",
            "Read-only file system",
            "java.nio.file.AccessDeniedException",
            "AccessDeniedException: /",
        ),
        signals=(
            r"\bEACCES\b",
            r"\bEPERM\b",
            r"\bEROFS\b",
            r"Errno 13\b",
        ),
        severity="warning",
        root_cause="The process lacks permission on a file, directory or socket: it runs as a "
        "different user than expected, the volume's ownership is wrong, or the filesystem is "
        "read-only.",
        remediation=(
            "Take the path from the samples and compare its owner and mode with the process's "
            "user (`id`, `ls -ld`).",
            "Set the pod's securityContext (runAsUser, fsGroup) or the volume's permissions to match.",
            "Write to a writable volume (emptyDir) if the root filesystem is read-only on purpose.",
        ),
        notify=False,
        confidence=0.75,
        specificity=0.6,
    ),
    FailurePattern(
        error_type="SlowQuery",
        title="slow queries",
        phrases=(
            "slow query",
            "Query_time:",
        ),
        signals=(r"duration: \S+(?: ms)? +(?:statement|execute)",),
        severity="informational",
        root_cause="Database statements exceed the slow-query threshold: missing indexes, large "
        "scans, lock waits or an overloaded database.",
        remediation=(
            "Run EXPLAIN (ANALYZE) on the slowest statements from the samples.",
            "Add the missing indexes or rewrite the queries; check lock waits if plans look fine.",
        ),
        notify=False,
        confidence=0.8,
        specificity=0.6,
    ),
    FailurePattern(
        error_type="ClientDisconnected",
        title="clients disconnected early",
        phrases=(
            "context canceled",
            "client closed request",
            "ClientAbortException",
            "request aborted",
            "client disconnected",
            "client prematurely closed connection",
        ),
        severity="informational",
        root_cause="Callers gave up before the response was ready (their own timeout, navigation "
        "away, or a cancelled upstream request); usually a symptom of latency elsewhere rather than "
        "an error in this service.",
        remediation=(
            "Compare the callers' timeouts with this service's latency for the affected routes.",
            "Investigate latency if the rate of cancellations grows.",
        ),
        notify=False,
        confidence=0.7,
        specificity=0.68,
    ),
    FailurePattern(
        error_type="UnhandledException",
        title="unhandled exceptions",
        phrases=(
            "Traceback (most recent call last)",
            "UnhandledPromiseRejection",
            "Unhandled exception",
            "Unhandled error",
            "uncaught exception",
            "uncaught error",
            "Exception in thread",
        ),
        signals=(
            r"(?:^|\n)panic: ",
            r"\.java:\d+\)",
            r"\.kt:\d+\)",
            r"\.scala:\d+\)",
        ),
        severity="warning",
        root_cause="The application raised an exception that no handler caught; the rules engine "
        "recognizes the crash but not its specific cause.",
        remediation=(
            "Read the exception type and the top application frame in the samples.",
            "Check whether it started with a release and roll back if it did.",
            "Add handling for the failing case and a regression test.",
        ),
        notify=False,
        confidence=0.4,
        specificity=0.3,
    ),
)
