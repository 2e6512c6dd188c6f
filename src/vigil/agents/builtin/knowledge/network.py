"""Network: DNS, unreachable or failing dependencies, and the symptoms many causes share."""

from __future__ import annotations

from vigil.agents.builtin.knowledge.pattern import FailurePattern, status_signals

PATTERNS: tuple[FailurePattern, ...] = (
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
        symptom=True,
    ),
    FailurePattern(
        error_type="DnsResolutionFailure",
        title="DNS resolution failures",
        phrases=(
            "could not be resolved",
            "NameResolutionError",
            "Failed to resolve",
            "DNS resolution failed",
            "dns lookup failed",
            "SERVFAIL",
            "getaddrinfo",
            "no such host",
            "Name or service not known",
            "Temporary failure in name resolution",
            "gaierror",
            "EAI_NONAME",
            "UnknownHostException",
            "could not translate host name",
            "nodename nor servname provided",
            "server misbehaving",
            "Could not resolve host",
        ),
        signals=(
            r"\bENOTFOUND\b",
            r"\bEAI_AGAIN\b",
            r"\bNXDOMAIN\b",
            r"\blookup \S{1,253} on \S{1,60}:53\b",
            r"\bDNS (?:NX|servfail|refused) status",
        ),
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
            *status_signals(r"5(?:0[0-35-9]|[1-9]\d)"),
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
        symptom=True,
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
        ),
        signals=(
            *status_signals(r"504"),
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
        symptom=True,
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
        symptom=True,
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
        symptom=True,
    ),
)
