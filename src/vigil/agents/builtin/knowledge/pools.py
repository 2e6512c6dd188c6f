"""Connection pools and connection limits (client side and database server side), descriptors."""

from __future__ import annotations

from vigil.agents.builtin.knowledge.pattern import FailurePattern

PATTERNS: tuple[FailurePattern, ...] = (
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
            "connection pool timeout",
            "Timed out fetching a new connection from the connection pool",
            "PoolTimeout",
            "Connection is not available, request timed out",
            "QueuePool limit of size",
            "pool exhausted",
            "pool is exhausted",
            "pool has been exhausted",
            "checking out a connection from connection pool",
            "checkout a Connection has timed out",
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
        explains=("UpstreamTimeout", "HealthCheckFailing"),
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
)
