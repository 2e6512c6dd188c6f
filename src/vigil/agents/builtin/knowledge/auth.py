"""Authentication and authorization."""

from __future__ import annotations

from vigil.agents.builtin.knowledge.pattern import FailurePattern

PATTERNS: tuple[FailurePattern, ...] = (
    FailurePattern(
        error_type="AuthenticationFailure",
        title="authentication failures",
        phrases=(
            "Login failed for user",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "password authentication failed for user",
            "SaslAuthenticationException",
            "SASL authentication failed",
            "authentication failed",
            "invalid credentials",
            "Bad credentials",
            "BadCredentials",
            "invalid password",
            "Invalid username or password",
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
)
