"""Databases' queries: deadlocks, schema mismatches, read-only replicas, slow queries, N+1."""

from __future__ import annotations

from vigil.agents.builtin.knowledge.pattern import FailurePattern

PATTERNS: tuple[FailurePattern, ...] = (
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
        error_type="SlowQuery",
        title="slow queries",
        phrases=(
            "canceling statement due to statement timeout",
            "QueryTimeoutException",
            "maximum statement execution time exceeded",
            "slowlog",
            "slow query",
            "slow sql",
            "Execution Timeout Expired",
            "long running query",
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
        specificity=0.86,
        quiet=True,
        explains=("UpstreamTimeout", "ConnectionPoolExhausted", "HealthCheckFailing"),
    ),
    FailurePattern(
        error_type="NPlusOneQueries",
        title="N+1 queries",
        phrases=(
            "eager loading detected",
            "n+1 query",
            "n+1 queries",
            "nplusone",
        ),
        severity="warning",
        root_cause="A request runs the same single-row query once per item of a list (an N+1 "
        "query pattern): a lazy-loaded association or a lookup in a loop, so the request's time and "
        "the database's load grow with the list.",
        remediation=(
            "Find the code path from the trace: the repeated statement and the endpoint that runs it.",
            "Load the association with the list (JOIN FETCH / select_related / prefetch_related / "
            "includes / eager loading) or batch the lookups into one `WHERE id IN (...)` query.",
            "Add a test that counts the queries of the endpoint so the pattern does not come back.",
        ),
        notify=False,
        confidence=0.85,
        specificity=0.9,
        quiet=True,
        explains=("SlowQuery", "UpstreamTimeout", "ConnectionPoolExhausted"),
    ),
)
