"""Configuration errors."""

from __future__ import annotations

from vigil.agents.builtin.knowledge.pattern import FailurePattern

PATTERNS: tuple[FailurePattern, ...] = (
    FailurePattern(
        error_type="ConfigurationError",
        title="configuration error",
        phrases=(
            "unknown directive",
            "error initializing configuration",
            "Failed to bind properties",
            "Unknown key name",
            "Unknown lvalue",
            "invalid config",
            "missing required configuration",
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
            r"\[emerg\]",
            r"validation errors? for \S{0,60}(?:Settings|Config)",
            r"required key \S{1,100} missing value",
            r"\byaml: line \d{1,6}:",
            r"couldn't find key \S{1,100} in (?:ConfigMap|Secret)",
            r"(?:secret|configmap) \S{1,100} not found",
            r"missing required (?:environment variable|env(?:ironment)? var|config(?:uration)?|setting)",
            r"environment variable \S{1,100} (?:is )?not set",
            r"KeyError: '(?-i:[A-Z][A-Z0-9_]{2,})'",
            r"failed to (?:load|parse|read) config",
            r"config(?:uration)? file .{0,80}not found",
            r"missing .{1,60} for '?(?:production|staging|development|test)'? environment",
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
        explains=("CrashLoopBackOff", "UnhandledException", "HealthCheckFailing"),
    ),
)
