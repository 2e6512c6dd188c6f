"""Releases that broke: rollouts that do not progress or were aborted, and code that no longer
links with what it runs beside (a dependency or module of another version than it was built with)."""

from __future__ import annotations

from vigil.agents.builtin.knowledge.pattern import FailurePattern

PATTERNS: tuple[FailurePattern, ...] = (
    FailurePattern(
        error_type="BadDeploy",
        title="a release that broke",
        phrases=(
            # Kubernetes deployments and Argo Rollouts, Helm, Flux
            "exceeded its progress deadline",
            "ProgressDeadlineExceeded",
            "has timed out progressing",
            "Rollout aborted",
            "RolloutAborted",
            "UPGRADE FAILED",
            "deployment failed",
            "rollout failed",
            "UPDATE_ROLLBACK",
            "deployment circuit breaker",
            "upgrade retries exhausted",
            # the JVM: classes of another version than the code was compiled against
            "NoSuchMethodError",
            "NoSuchFieldError",
            "NoClassDefFoundError",
            "IncompatibleClassChangeError",
            "AbstractMethodError",
            "UnsupportedClassVersionError",
            # Python, Node, native: modules or symbols missing from the shipped build
            "ModuleNotFoundError",
            "cannot import name",
            "Cannot find module",
            "ERR_MODULE_NOT_FOUND",
            "ERR_REQUIRE_ESM",
            "undefined symbol",
            "symbol lookup error",
        ),
        severity="critical",
        root_cause="The latest release does not run: its rollout stalled or was aborted, or the "
        "shipped code does not match what it runs with (a dependency, module or class of another "
        "version than it was built and tested against).",
        remediation=(
            "Roll back to the previous release (`kubectl rollout undo`, `helm rollback`, or abort the "
            "Argo rollout) and confirm the errors stop.",
            "Compare the failing release's dependency lock file and image with the previous one.",
            "Add a start-up smoke test or a canary analysis that would have caught it before full rollout.",
        ),
        notify=True,
        confidence=0.9,
        specificity=0.93,
        explains=("CrashLoopBackOff", "HealthCheckFailing", "UnhandledException"),
    ),
)
