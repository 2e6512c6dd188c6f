"""Containers and orchestration: crash loops, image pulls, scheduling, probes, native crashes."""

from __future__ import annotations

from vigil.agents.builtin.knowledge.pattern import FailurePattern

PATTERNS: tuple[FailurePattern, ...] = (
    FailurePattern(
        error_type="CrashLoopBackOff",
        title="container crash loop",
        phrases=(
            "Start request repeated too quickly",
            "restart counter is at",
            "too many start retries",
            "too many unstable restarts",
            "entered FATAL state",
            "CrashLoopBackOff",
            "Back-off restarting failed container",
        ),
        signals=(r"exited: \S{1,100} \(exit status \d{1,3}; not expected\)",),
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
        quiet=True,
        explains=("UnhandledException", "HealthCheckFailing"),
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
        symptom=True,
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
)
