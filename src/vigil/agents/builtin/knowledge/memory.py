"""Memory: processes and caches out of memory."""

from __future__ import annotations

from vigil.agents.builtin.knowledge.pattern import FailurePattern

PATTERNS: tuple[FailurePattern, ...] = (
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
            "killed by the OOM killer",
            "heap out of memory",
            "oom_reaper",
            "Java heap space",
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
            "OutOfMemoryException",
            "std::bad_alloc",
            "exceeded memory limit",
            "memory limit exceeded",
            "Allowed memory size of",
        ),
        signals=(
            r"\bKilled process \d{1,10}",
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
        explains=("CrashLoopBackOff", "HealthCheckFailing", "UnhandledException"),
    ),
)
