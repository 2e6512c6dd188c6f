"""Scripted fault scenarios for the evaluation of the analysis, written apart from the knowledge
base: each line is what a real stack prints when it fails this way (Java, Python, Go, Node, nginx,
envoy, PostgreSQL/MySQL/Redis, systemd, Kubernetes events), with ordinary healthy traffic around it.

Each scenario names the failure family it shows (the error types an analysis may answer with) and
the runbook that fits, or none when it is built to be undecidable (healthy logs, vague errors,
ambiguous mixes): the right answer there is "don't know".

Never copy a line from here into the knowledge base: the evaluation measures how the analysis
generalizes to wording it was not written from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FAMILIES", "SCENARIOS", "Line", "Scenario"]


@dataclass(frozen=True)
class Line:
    service: str
    level: str
    """DEBUG, INFO, WARNING, ERROR or CRITICAL, as the service's logger says it."""
    text: str
    """May hold `{i}` (the line's number) and `{n}` (a number that varies), formatted per record."""
    count: int = 1
    per_trace: int = 0
    """When > 0, records are logged inside spans (one trace per this many records)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    stack: str
    family: str | None
    """The family the logs show (a key of FAMILIES), or None when they decide nothing."""
    lines: tuple[Line, ...]
    healthy: tuple[Line, ...] = field(default=())


FAMILIES: dict[str, tuple[frozenset[str], str]] = {
    # family: (error types that name it, the runbook that fits it)
    "pool_exhaustion": (frozenset({"ConnectionPoolExhausted", "DatabaseConnectionLimit"}), "db-pool"),
    "oom_kill": (frozenset({"OutOfMemoryKilled"}), "memory-limit"),
    "crash_loop": (frozenset({"CrashLoopBackOff"}), "crash-loop"),
    "bad_deploy": (frozenset({"BadDeploy"}), "rollback-deploy"),
    "dns_failure": (frozenset({"DnsResolutionFailure"}), "dns"),
    "tls_expiry": (frozenset({"CertificateExpired"}), "renew-certificate"),
    "slow_query": (frozenset({"SlowQuery"}), "slow-query"),
    "n_plus_one": (frozenset({"NPlusOneQueries"}), "n-plus-one"),
    "disk_full": (frozenset({"DiskFull"}), "free-disk"),
    "rate_limited": (frozenset({"RateLimited"}), "rate-limit"),
    "auth_failure": (frozenset({"AuthenticationFailure"}), "rotate-credentials"),
    "config_error": (frozenset({"ConfigurationError"}), "fix-config"),
}


def _web(service: str, count: int = 40) -> tuple[Line, ...]:
    return (
        Line(service, "INFO", 'GET /api/v1/orders/{n} HTTP/1.1" 200 {i} ms', count),
        Line(
            service,
            "INFO",
            "request completed method=POST path=/api/v1/cart status=200 duration_ms={n}",
            count,
        ),
        Line(service, "DEBUG", "cache hit for key user:{n}:profile", count // 2),
    )


_S: list[Scenario] = []


def _add(name: str, stack: str, family: str | None, *lines: Line, service: str = "api") -> None:
    _S.append(Scenario(name, stack, family, lines, _web(service)))


# -- pool exhaustion ------------------------------------------------------------------------------

# fmt: off
_add("pool-hikari", "java", "pool_exhaustion",
    Line("api", "ERROR", "HikariPool-1 - Connection is not available, request timed out after 30000ms.", 25),
    Line("api", "ERROR", "org.springframework.jdbc.CannotGetJdbcConnectionException: Failed to obtain JDBC Connection; nested exception is java.sql.SQLTransientConnectionException", 25),
)
_add("pool-sqlalchemy", "python", "pool_exhaustion",
    Line("api", "ERROR", "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00 (Background on this error at: https://sqlalche.me/e/20/3o7r)", 30),
)
_add("pool-go-redis", "go", "pool_exhaustion",
    Line("api", "ERROR", "handler failed: get session {n}: redis: connection pool timeout", 30),
)
_add("pool-knex", "node", "pool_exhaustion",
    Line("api", "ERROR", "KnexTimeoutError: Knex: Timeout acquiring a connection. The pool is probably full. Are you missing a .transacting(trx) call?", 20),
)
_add("pool-postgres-server", "postgresql", "pool_exhaustion",
    Line("postgres", "CRITICAL", "FATAL:  sorry, too many clients already", 20),
    Line("api", "ERROR", "psycopg2.OperationalError: connection to server at \"10.0.4.12\", port 5432 failed: FATAL:  sorry, too many clients already", 15),
)
_add("pool-mysql-server", "mysql", "pool_exhaustion",
    Line("api", "ERROR", "java.sql.SQLNonTransientConnectionException: Data source rejected establishment of connection,  message from server: \"Too many connections\"", 25),
)

# -- OOM kill -------------------------------------------------------------------------------------
_add("oom-k8s-event", "kubernetes", "oom_kill",
    Line("kubelet", "WARNING", "Container worker in pod worker-6c8d5-x2x9q was OOMKilled (exit code 137)", 4),
    Line("kubelet", "WARNING", "Back-off restarting failed container worker in pod worker-6c8d5-x2x9q", 2),
)
_add("oom-java-heap", "java", "oom_kill",
    Line("api", "ERROR", "Exception in thread \"http-nio-8080-exec-{i}\" java.lang.OutOfMemoryError: Java heap space", 8),
)
_add("oom-node-heap", "node", "oom_kill",
    Line("api", "CRITICAL", "FATAL ERROR: Ineffective mark-compacts near heap limit Allocation failed - JavaScript heap out of memory", 3),
)
_add("oom-kernel-systemd", "systemd", "oom_kill",
    Line("kernel", "ERROR", "Out of memory: Killed process {n} (python3) total-vm:8123456kB, anon-rss:3987654kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:8000kB oom_score_adj:0", 3),
    Line("systemd", "ERROR", "worker.service: A process of this unit has been killed by the OOM killer.", 3),
)
_add("oom-go-runtime", "go", "oom_kill",
    Line("api", "CRITICAL", "fatal error: runtime: out of memory", 3),
)

# -- crash loop -----------------------------------------------------------------------------------
_add("crashloop-k8s", "kubernetes", "crash_loop",
    Line("kubelet", "WARNING", "Back-off restarting failed container api in pod api-7f9c6d-{n}_default", 12),
    Line("api", "ERROR", "panic: runtime error: index out of range [3] with length 3", 6),
)
_add("crashloop-systemd", "systemd", "crash_loop",
    Line("systemd", "INFO", "billing.service: Scheduled restart job, restart counter is at {i}.", 6),
    Line("systemd", "ERROR", "billing.service: Main process exited, code=exited, status=1/FAILURE", 6),
    Line("systemd", "ERROR", "billing.service: Start request repeated too quickly.", 1),
    Line("systemd", "ERROR", "billing.service: Failed with result 'exit-code'.", 1),
)
_add("crashloop-supervisord", "python", "crash_loop",
    Line("supervisord", "INFO", "exited: worker (exit status 1; not expected)", 5),
    Line("supervisord", "CRITICAL", "gave up: worker entered FATAL state, too many start retries too quickly", 1),
)
_add("crashloop-pm2", "node", "crash_loop",
    Line("pm2", "ERROR", "App [api:0] exited with code [1] via signal [SIGINT]", 15),
    Line("pm2", "ERROR", "Script /app/dist/server.js had too many unstable restarts (16). Stopped. \"errored\"", 1),
)

# -- bad deploy -----------------------------------------------------------------------------------
_add("deploy-k8s-progress", "kubernetes", "bad_deploy",
    Line("deployment-controller", "INFO", "Scaled up replica set checkout-5d8f7c9b4 to 1", 1),
    Line("deployment-controller", "WARNING", "Deployment \"checkout\" exceeded its progress deadline", 2),
    Line("deployment-controller", "WARNING", "ReplicaSet \"checkout-5d8f7c9b4\" has timed out progressing.", 2),
)
_add("deploy-java-nosuchmethod", "java", "bad_deploy",
    Line("pricing", "ERROR", "java.lang.NoSuchMethodError: 'com.acme.pricing.Quote com.acme.pricing.PriceClient.quote(java.lang.String, int)'", 30),
)
_add("deploy-python-import", "python", "bad_deploy",
    Line("orders", "CRITICAL", "ImportError: cannot import name 'parse_order' from 'orders.codec' (/app/orders/codec.py)", 6),
)
_add("deploy-node-module", "node", "bad_deploy",
    Line("web", "ERROR", "Error: Cannot find module './routes/checkout-v2'", 8),
)
_add("deploy-argo-aborted", "kubernetes", "bad_deploy",
    Line("argo-rollouts", "WARNING", "Rollout aborted update to revision 7: Metric \"error-rate\" assessed Failed due to failed (3) > failureLimit (2)", 2),
)

# -- DNS failure ----------------------------------------------------------------------------------
_add("dns-java", "java", "dns_failure",
    Line("api", "ERROR", "java.net.UnknownHostException: payments.internal: Name or service not known", 25),
)
_add("dns-go", "go", "dns_failure",
    Line("api", "ERROR", "Get \"http://inventory.default.svc.cluster.local/stock\": dial tcp: lookup inventory.default.svc.cluster.local on 10.96.0.10:53: no such host", 25),
)
_add("dns-node", "node", "dns_failure",
    Line("api", "ERROR", "Error: getaddrinfo EAI_AGAIN api.partner-bank.com", 25),
)
_add("dns-python", "python", "dns_failure",
    Line("api", "ERROR", "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='geo.example.net', port=443): Max retries exceeded with url: /v1/lookup (Caused by NameResolutionError(\"<urllib3.connection.HTTPSConnection object>: Failed to resolve 'geo.example.net' ([Errno -3] Temporary failure in name resolution)\"))", 25),
)
_add("dns-nginx", "nginx", "dns_failure",
    Line("nginx", "ERROR", "[error] 31#31: *{n} backend.shop.svc could not be resolved (3: Host not found), client: 10.1.2.3, server: shop, request: \"GET /cart HTTP/1.1\"", 25),
)

# -- TLS expiry -----------------------------------------------------------------------------------
_add("tls-go", "go", "tls_expiry",
    Line("api", "ERROR", "Post \"https://ledger.internal:8443/v1/entries\": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2026-12-06T10:00:{i}Z is after 2026-12-01T00:00:00Z", 20),
)
_add("tls-java", "java", "tls_expiry",
    Line("api", "ERROR", "javax.net.ssl.SSLHandshakeException: PKIX path validation failed: java.security.cert.CertPathValidatorException: validity check failed", 20),
)
_add("tls-python", "python", "tls_expiry",
    Line("api", "ERROR", "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)", 20),
)
_add("tls-envoy", "envoy", "tls_expiry",
    Line("envoy", "WARNING", "[C{n}] TLS error: 268435581:SSL routines:OPENSSL_internal:SSLV3_ALERT_CERTIFICATE_EXPIRED", 20),
)

# -- slow downstream query ------------------------------------------------------------------------
_add("slowq-postgres", "postgresql", "slow_query",
    Line("postgres", "WARNING", "LOG:  duration: {n}812.331 ms  statement: SELECT o.id, o.total FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.customer_id = 4411 ORDER BY o.created_at DESC", 12),
    Line("api", "ERROR", "GET /api/v1/orders took {n}900 ms (timeout 5000 ms)", 12),
)
_add("slowq-mysql", "mysql", "slow_query",
    Line("mysql", "WARNING", "# Query_time: {n}2.503118  Lock_time: 0.000121 Rows_sent: 20  Rows_examined: 4832091", 10),
)
_add("slowq-statement-timeout", "java", "slow_query",
    Line("api", "ERROR", "org.springframework.dao.QueryTimeoutException: PreparedStatementCallback; SQL [select * from invoices where account_id = ?]; ERROR: canceling statement due to statement timeout", 15),
)
_add("slowq-mongo", "mongodb", "slow_query",
    Line("mongod", "INFO", "{{\"t\":{{\"$date\":\"2026-12-06T10:00:00.{i}Z\"}},\"s\":\"I\",\"c\":\"COMMAND\",\"id\":51803,\"ctx\":\"conn{n}\",\"msg\":\"Slow query\",\"attr\":{{\"ns\":\"shop.orders\",\"durationMillis\":{n}412}}}}", 12),
)

# -- N+1 ------------------------------------------------------------------------------------------
_add("nplus1-django", "python", "n_plus_one",
    Line("api", "DEBUG", "({n}.002) SELECT \"books_author\".\"id\", \"books_author\".\"name\" FROM \"books_author\" WHERE \"books_author\".\"id\" = {i} LIMIT 21; args=({i},)", 120, per_trace=40),
)
_add("nplus1-rails", "ruby", "n_plus_one",
    Line("api", "DEBUG", "  Author Load (0.{n}ms)  SELECT \"authors\".* FROM \"authors\" WHERE \"authors\".\"id\" = $1 LIMIT $2  [[\"id\", {i}], [\"LIMIT\", 1]]", 120, per_trace=40),
)
_add("nplus1-hibernate", "java", "n_plus_one",
    Line("api", "DEBUG", "Hibernate: select a1_0.id,a1_0.name,a1_0.country from author a1_0 where a1_0.id=?", 150, per_trace=50),
)
_add("nplus1-sequelize", "node", "n_plus_one",
    Line("api", "DEBUG", "Executing (default): SELECT `id`, `name`, `email` FROM `customers` AS `Customer` WHERE `Customer`.`id` = {i};", 120, per_trace=40),
)

# -- disk full ------------------------------------------------------------------------------------
_add("disk-postgres", "postgresql", "disk_full",
    Line("postgres", "CRITICAL", "PANIC:  could not write to file \"pg_wal/xlogtemp.{n}\": No space left on device", 3),
)
_add("disk-mysql", "mysql", "disk_full",
    Line("mysql", "ERROR", "[ERROR] [MY-011032] [Server] Disk is full writing './binlog.0000{n}' (OS errno 28 - No space left on device). Waiting for someone to free space...", 5),
)
_add("disk-kubelet", "kubernetes", "disk_full",
    Line("kubelet", "WARNING", "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 812Mi. Container api was using 14Gi, request is 0, has larger consumption of ephemeral-storage.", 4),
    Line("kubelet", "WARNING", "Evicted pod api-58b7d-{n}", 4),
)
_add("disk-redis", "redis", "disk_full",
    Line("redis", "ERROR", "Write error saving DB on disk: No space left on device", 6),
    Line("api", "ERROR", "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled", 20),
)
_add("disk-python", "python", "disk_full",
    Line("exporter", "ERROR", "OSError: [Errno 28] No space left on device: '/var/lib/exports/batch-{n}.csv'", 8),
)

# -- rate limiting --------------------------------------------------------------------------------
_add("ratelimit-python", "python", "rate_limited",
    Line("sync", "ERROR", "requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: https://api.github.com/repos/acme/shop/pulls?page={i}", 25),
)
_add("ratelimit-aws", "java", "rate_limited",
    Line("api", "ERROR", "software.amazon.awssdk.services.dynamodb.model.ProvisionedThroughputExceededException: The level of configured provisioned throughput for the table was exceeded. (Service: DynamoDb, Status Code: 400)", 25),
)
_add("ratelimit-nginx", "nginx", "rate_limited",
    Line("nginx", "ERROR", "[error] 7#7: *{n} limiting requests, excess: 20.{i} by zone \"api_per_ip\", client: 203.0.113.{i}, server: api, request: \"POST /login HTTP/1.1\"", 25),
)
_add("ratelimit-grpc", "go", "rate_limited",
    Line("api", "ERROR", "rpc error: code = ResourceExhausted desc = Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service 'sheets.googleapis.com'", 25),
)

# -- authentication failure -----------------------------------------------------------------------
_add("auth-postgres", "postgresql", "auth_failure",
    Line("postgres", "CRITICAL", "FATAL:  password authentication failed for user \"orders\"", 20),
)
_add("auth-mysql", "mysql", "auth_failure",
    Line("api", "ERROR", "java.sql.SQLException: Access denied for user 'app'@'10.0.3.{i}' (using password: YES)", 20),
)
_add("auth-redis", "redis", "auth_failure",
    Line("api", "ERROR", "WRONGPASS invalid username-password pair or user is disabled.", 20),
)
_add("auth-aws", "go", "auth_failure",
    Line("api", "ERROR", "operation error S3: GetObject, https response error StatusCode: 403, RequestID: {n}, api error InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.", 20),
)
_add("auth-kafka", "java", "auth_failure",
    Line("consumer", "ERROR", "org.apache.kafka.common.errors.SaslAuthenticationException: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512", 20),
)

# -- configuration error --------------------------------------------------------------------------
_add("config-spring", "java", "config_error",
    Line("api", "ERROR", "java.lang.IllegalArgumentException: Could not resolve placeholder 'PAYMENT_API_URL' in value \"${{PAYMENT_API_URL}}\"", 3),
    Line("api", "ERROR", "Application run failed", 3),
)
_add("config-nginx", "nginx", "config_error",
    Line("nginx", "CRITICAL", "nginx: [emerg] unknown directive \"proxy_passs\" in /etc/nginx/conf.d/default.conf:14", 3),
)
_add("config-k8s-configmap", "kubernetes", "config_error",
    Line("kubelet", "WARNING", "Error: couldn't find key DATABASE_URL in ConfigMap shop/app-config", 6),
)
_add("config-pydantic", "python", "config_error",
    Line("api", "CRITICAL", "pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings database_url Field required [type=missing, input_value={{}}, input_type=dict]", 3),
)
_add("config-envoy", "envoy", "config_error",
    Line("envoy", "CRITICAL", "error initializing configuration '/etc/envoy/envoy.yaml': Protobuf message (type envoy.config.bootstrap.v3.Bootstrap reason INVALID_ARGUMENT:static_resources.clusters[0].name: value length must be at least 1 characters) has unknown fields", 2),
)

# -- undecidable ----------------------------------------------------------------------------------
_add("healthy-web", "any", None)
_add("healthy-jobs", "python", None,
    Line("scheduler", "INFO", "Job nightly-report (id {n}) executed successfully in {i}.3s", 10),
    Line("scheduler", "INFO", "Connection pool stats: size=10 active=2 idle=8 waiting=0", 10),
    Line("scheduler", "INFO", "disk usage of /var/lib/data at 41%", 5),
)
_add("vague-errors", "any", None,
    Line("api", "ERROR", "Request failed", 20),
    Line("api", "ERROR", "Something went wrong while processing order {n}", 15),
    Line("api", "ERROR", "Internal Server Error", 10),
)
_add("symptoms-only", "go", None,
    Line("api", "ERROR", "upstream request to http://quotes:8080/v1/quote failed: context deadline exceeded", 20),
    Line("api", "WARNING", "retrying request to quotes (attempt {i} of 3)", 20),
)
_add("one-stray-warning", "node", None,
    Line("api", "WARNING", "socket hang up", 1),
)
_add("mix-dns-vs-auth", "mixed", None,
    Line("api", "ERROR", "java.net.UnknownHostException: ledger.internal: Name or service not known", 20),
    Line("billing", "ERROR", "FATAL:  password authentication failed for user \"billing\"", 20),
)
_add("mix-disk-vs-pool", "mixed", None,
    Line("exporter", "ERROR", "OSError: [Errno 28] No space left on device: '/tmp/export-{n}'", 15),
    Line("api", "ERROR", "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00", 15),
)
_add("noise-debug", "java", None,
    Line("api", "DEBUG", "Retry policy for client quotes: maxAttempts=3 timeout=2000ms", 10),
    Line("api", "DEBUG", "TLS session resumed for ledger.internal:8443 (protocol TLSv1.3)", 10),
    Line("api", "INFO", "Resolved 3 addresses for quotes.default.svc.cluster.local", 10),
)
# fmt: on

# -- a second round, other stacks (.NET, Ruby, PHP, Rust, HAProxy, Elasticsearch, Kafka, MongoDB) ----
# fmt: off
_add("pool-dotnet", "dotnet", "pool_exhaustion",
    Line("api", "ERROR", "System.InvalidOperationException: Timeout expired.  The timeout period elapsed prior to obtaining a connection from the pool.  This may have occurred because all pooled connections were in use and max pool size was reached.", 20),
)
_add("pool-rails", "ruby", "pool_exhaustion",
    Line("api", "ERROR", "ActiveRecord::ConnectionTimeoutError (could not obtain a connection from the pool within 5.000 seconds (waited 5.003 seconds); all pooled connections were in use)", 20),
)
_add("oom-dotnet", "dotnet", "oom_kill",
    Line("api", "CRITICAL", "Unhandled exception. System.OutOfMemoryException: Exception of type 'System.OutOfMemoryException' was thrown.", 4),
)
_add("oom-php", "php", "oom_kill",
    Line("web", "ERROR", "PHP Fatal error:  Allowed memory size of 134217728 bytes exhausted (tried to allocate 20480 bytes) in /var/www/app/Report.php on line {i}", 10),
)
_add("crashloop-docker-events", "kubernetes", "crash_loop",
    Line("kubelet", "WARNING", "Pod api-6b7c9-{n}: container api restarted {i} times, status CrashLoopBackOff", 8),
)
_add("deploy-rust-symbol", "rust", "bad_deploy",
    Line("ingest", "CRITICAL", "/usr/local/bin/ingest: symbol lookup error: /usr/local/bin/ingest: undefined symbol: SSL_get1_peer_certificate", 5),
)
_add("dns-dotnet", "dotnet", "dns_failure",
    Line("api", "ERROR", "System.Net.Http.HttpRequestException: No such host is known. (payments.internal:443)", 20),
)
_add("dns-haproxy", "haproxy", "dns_failure",
    Line("haproxy", "WARNING", "backend be_api/srv1 changed its IP from 10.0.3.4 to 0.0.0.0 by DNS cache, reason: DNS NX status", 10),
    Line("haproxy", "ERROR", "Server be_api/srv1 is going DOWN for maintenance (DNS NX status). 0 active and 0 backup servers left.", 10),
)
_add("tls-ruby", "ruby", "tls_expiry",
    Line("api", "ERROR", "OpenSSL::SSL::SSLError: SSL_connect returned=1 errno=0 peeraddr=10.2.0.8:443 state=error: certificate verify failed (certificate has expired)", 15),
)
_add("slowq-elasticsearch", "elasticsearch", "slow_query",
    Line("elasticsearch", "WARNING", "[index.search.slowlog.query] [orders][2] took[12.4s], took_millis[12403], total_hits[10000+ hits], search_type[QUERY_THEN_FETCH], total_shards[5]", 10),
)
_add("disk-elasticsearch", "elasticsearch", "disk_full",
    Line("elasticsearch", "WARNING", "flood stage disk watermark [95%] exceeded on [node-1][/usr/share/elasticsearch/data] free: 1.1gb[2.3%], all indices on this node will be marked read-only", 4),
    Line("api", "ERROR", "ClusterBlockException: index [orders] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block]", 20),
)
_add("ratelimit-stripe-node", "node", "rate_limited",
    Line("billing", "ERROR", "StripeRateLimitError: Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.", 20),
)
_add("auth-dotnet-sql", "dotnet", "auth_failure",
    Line("api", "ERROR", "Microsoft.Data.SqlClient.SqlException (0x80131904): Login failed for user 'app_user'.", 20),
)
_add("config-rails", "ruby", "config_error",
    Line("web", "CRITICAL", "ArgumentError: Missing `secret_key_base` for 'production' environment, set this string with `bin/rails credentials:edit`", 3),
)
_add("mix-tls-vs-oom", "mixed", None,
    Line("api", "ERROR", "x509: certificate has expired or is not yet valid", 12),
    Line("worker", "ERROR", "java.lang.OutOfMemoryError: Java heap space", 12),
)
_add("noise-info-mentions", "any", None,
    Line("api", "INFO", "Rate limiter configured: 100 requests per second per client", 5),
    Line("api", "INFO", "Connection pool HikariPool-1 started (maximumPoolSize=10)", 5),
    Line("api", "INFO", "Certificate for api.example.com expires in 62 days", 5),
)
# fmt: on

SCENARIOS: tuple[Scenario, ...] = tuple(_S)
