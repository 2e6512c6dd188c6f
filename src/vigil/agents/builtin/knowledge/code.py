"""Code-level errors: null references, undecodable payloads, unhandled exceptions."""

from __future__ import annotations

from vigil.agents.builtin.knowledge.pattern import FailurePattern

PATTERNS: tuple[FailurePattern, ...] = (
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
        symptom=True,
    ),
)
