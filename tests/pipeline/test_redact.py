"""Redactor: built-in rules on realistic log lines, what must stay, custom rules and records.

Vendor tokens are assembled from pieces so that this file holds no literal that secret scanners
(GitHub push protection, gitleaks) would flag; every value is fake.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from vigil.pipeline.redact import BUILTIN_RULES, DROPPED, CustomRule, RedactionSpec, Redactor

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
GITHUB_PAT = "ghp" + "_" + "R2d2C3poX7tKq9LmN4vB8sW1eY6uI0oZ5aQj"
GITHUB_FINE = (
    "github"
    + "_pat_"
    + "11ABCDEFG0"
    + "a1b2c3d4e5f6g7_"
    + "h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6A7B8C9D0E1F2G3H4I5J6K"
)
SLACK_BOT = "xoxb" + "-123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_HOOK_PATH = "T0" + "1ABCDEF/B0" + "2GHIJKL/" + "aBcDeFgHiJkLmNoPqRsTuVwX"
OPENAI = "sk-" + "proj-" + "Xy9Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz_x2C4v6B8n0M-aBcDeF"
OPENAI_LEGACY = "sk-" + "T3BlbkFJ" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
ANTHROPIC = "sk-" + "ant-" + "api03-" + "Zx8Cv7Bn6Mm5Ll4Kk3Jj2Hh1Gg0Ff9Dd8Ss7Aa6-QqWwEe"
STRIPE = "sk" + "_live_" + "51Hx0aBcDeFgHiJkLmNoPqRsTuVwXyZ"
GOOGLE = "AI" + "za" + "SyB1c2D3e4F5g6H7i8J9k0L1m2N3o4P5q6R"
AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
PEM = (
    "-----BEGIN RSA " + "PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA " + "PRIVATE KEY-----"
)


def redact(text: str, **spec: Any) -> str:
    return Redactor(RedactionSpec.model_validate(spec)).redact_text(text)[0]


def record(body: str = "", attributes: dict[str, Any] | None = None, **resource: Any) -> dict[str, Any]:
    return {
        "resourceAttributes": {"service.name": "checkout", **resource},
        "severityNumber": 17,
        "severityText": "ERROR",
        "body": body,
        "attributes": attributes or {},
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "spanId": "00f067aa0ba902b7",
        "timestamp": "2024-05-01T12:00:00.123Z",
    }


REDACTED = [
    # (rule, input, expected output)
    (
        "email",
        "password reset mail sent to jane.doe+shop@example.co.uk",
        "password reset mail sent to [REDACTED:email]",
    ),
    (
        "email",
        "mailto:Bob.Smith@Example.COM; cc ops@corp-mail.io.",
        "mailto:[REDACTED:email]; cc [REDACTED:email].",
    ),
    (
        "bearer_token",
        f"GET /api/orders Authorization: Bearer {JWT}",
        "GET /api/orders Authorization: Bearer [REDACTED:bearer_token]",
    ),
    (
        "bearer_token",
        "upstream replied 401 for bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "upstream replied 401 for bearer [REDACTED:bearer_token]",
    ),
    (
        "bearer_token",
        'headers={"authorization": "Bearer abc123"}',
        'headers={"authorization": "Bearer [REDACTED:bearer_token]"}',
    ),
    ("basic_auth", "Authorization: Basic YWRtaW46aHVudGVyMg==", "Authorization: Basic [REDACTED:basic_auth]"),
    (
        "jwt",
        f"session restored from cookie sid={JWT}; path=/",
        "session restored from cookie sid=[REDACTED:jwt]; path=/",
    ),
    (
        "aws_access_key",
        f"assumed role with key {AWS_ID} in eu-west-1",
        "assumed role with key [REDACTED:aws_access_key] in eu-west-1",
    ),
    (
        "aws_secret_key",
        f"env AWS_SECRET_ACCESS_KEY={AWS_SECRET}",
        "env AWS_SECRET_ACCESS_KEY=[REDACTED:aws_secret_key]",
    ),
    (
        "aws_secret_key",
        f'{{"Credentials": {{"SecretAccessKey": "{AWS_SECRET}", "Expiration": "2024-05-01T13:00:00Z"}}}}',
        '{"Credentials": {"SecretAccessKey": "[REDACTED:aws_secret_key]", "Expiration": "2024-05-01T13:00:00Z"}}',
    ),
    (
        "github_token",
        f"git clone https://{GITHUB_PAT}@github.com/acme/shop.git",
        "git clone https://[REDACTED:github_token]@github.com/acme/shop.git",
    ),
    ("github_token", f"GITHUB_TOKEN {GITHUB_FINE} loaded", "GITHUB_TOKEN [REDACTED:github_token] loaded"),
    ("slack_token", f"posting alert with {SLACK_BOT}", "posting alert with [REDACTED:slack_token]"),
    (
        "slack_token",
        f"POST https://hooks.slack.com/services/{SLACK_HOOK_PATH} returned 404",
        "POST https://hooks.slack.com/services/[REDACTED:slack_token] returned 404",
    ),
    (
        "openai_key",
        f"openai.AuthenticationError: Incorrect API key provided: {OPENAI}.",
        "openai.AuthenticationError: Incorrect API key provided: [REDACTED:openai_key].",
    ),
    ("openai_key", f"OPENAI_API_KEY {OPENAI_LEGACY}", "OPENAI_API_KEY [REDACTED:openai_key]"),
    (
        "anthropic_key",
        f"using x-api-key {ANTHROPIC} for claude",
        "using x-api-key [REDACTED:anthropic_key] for claude",
    ),
    ("stripe_key", f"stripe.api_key set to {STRIPE}", "stripe.api_key set to [REDACTED:stripe_key]"),
    (
        "google_api_key",
        f"GET https://maps.googleapis.com/maps/api/geocode/json?key={GOOGLE}",
        "GET https://maps.googleapis.com/maps/api/geocode/json?key=[REDACTED:google_api_key]",
    ),
    (
        "private_key",
        f"loaded signing key: {PEM} from vault",
        "loaded signing key: [REDACTED:private_key] from vault",
    ),
    (
        "private_key",
        "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA (truncated)",
        "[REDACTED:private_key]",
    ),
    (
        "url_password",
        "psql: FATAL connecting to postgres://app:S3cr3t!@db.internal:5432/orders",
        "psql: FATAL connecting to postgres://app:[REDACTED:url_password]@db.internal:5432/orders",
    ),
    (
        "url_password",
        "mysql://root:r00t@10.0.0.12:3306/shop?ssl=true",
        "mysql://root:[REDACTED:url_password]@10.0.0.12:3306/shop?ssl=true",
    ),
    (
        "url_password",
        "celery broker redis://:hunter2@cache:6379/0",
        "celery broker redis://:[REDACTED:url_password]@cache:6379/0",
    ),
    (
        "url_password",
        "amqp://guest:gu3st@rabbit.svc:5672/%2F",
        "amqp://guest:[REDACTED:url_password]@rabbit.svc:5672/%2F",
    ),
    (
        "url_password",
        "MongoServerError from mongodb+srv://admin:p@ss:w0rd@cluster0.ab1cd.mongodb.net/shop",
        "MongoServerError from mongodb+srv://admin:[REDACTED:url_password]@cluster0.ab1cd.mongodb.net/shop",
    ),
    (
        "url_password",
        "proxy https://svc-user:Tr0ub4dor@proxy.corp:8443",
        "proxy https://svc-user:[REDACTED:url_password]@proxy.corp:8443",
    ),
    (
        "connection_string_password",
        "Server=tcp:x.database.windows.net;Database=d;User ID=u;Password=hunter2;",
        "Server=tcp:x.database.windows.net;Database=d;User ID=u;Password=[REDACTED:connection_string_password];",
    ),
    (
        "connection_string_password",
        "Driver={ODBC Driver 18};Server=db;UID=sa;PWD={p@ss;word};Encrypt=yes",
        "Driver={ODBC Driver 18};Server=db;UID=sa;PWD=[REDACTED:connection_string_password];Encrypt=yes",
    ),
    (
        "connection_string_password",
        "host=db port=5432 user=app password=pg-pass sslmode=require",
        "host=db port=5432 user=app password=[REDACTED:connection_string_password] sslmode=require",
    ),
    (
        "password_field",
        'login failed {"user": "bob", "password": "correct horse", "remember": true}',
        'login failed {"user": "bob", "password": "[REDACTED:password_field]", "remember": true}',
    ),
    (
        "password_field",
        'payload="{\\"passwd\\": \\"s3cret\\"}"',
        'payload="{\\"passwd\\": \\"[REDACTED:password_field]\\"}"',
    ),
    (
        "password_field",
        "config DB_PASSWORD: Sup3rS3cret client_secret=abc123",
        "config DB_PASSWORD: [REDACTED:password_field] client_secret=[REDACTED:password_field]",
    ),
    (
        "password_field",
        "GET /callback?code=x&access_token=ya29.a0Af&state=1",
        "GET /callback?code=x&access_token=[REDACTED:password_field]&state=1",
    ),
    (
        "password_field",
        "api_key=abcd1234 apikey: 'k-9' X-Auth-Token: t0k3n",
        "api_key=[REDACTED:password_field] apikey: '[REDACTED:password_field]' X-Auth-Token: [REDACTED:password_field]",
    ),
    ("password_field", 'params {:password => "pa55"}', 'params {:password => "[REDACTED:password_field]"}'),
    (
        "card_number",
        "charge failed for card 4111 1111 1111 1111 exp 12/25",
        "charge failed for card [REDACTED:card_number] exp 12/25",
    ),
    (
        "card_number",
        "pan=5500-0000-0000-0004 amex 378282246310005",
        "pan=[REDACTED:card_number] amex [REDACTED:card_number]",
    ),
    ("card_number", "retrying 4012888888881881 12 26", "retrying [REDACTED:card_number] 12 26"),
    ("card_number", "unionpay 6011 0009 9013 9424 009 declined", "unionpay [REDACTED:card_number] declined"),
]


@pytest.mark.parametrize(
    ("rule", "text", "expected"), REDACTED, ids=[f"{r[0]}-{i}" for i, r in enumerate(REDACTED)]
)
def test_builtin_rule_redacts(rule: str, text: str, expected: str) -> None:
    redactor = Redactor(RedactionSpec())
    assert redactor.redact_text(text) == (expected, expected.count("[REDACTED:"))
    assert redactor.counts == {rule: expected.count("[REDACTED:")}


@pytest.mark.parametrize(
    ("rule", "text", "expected"), REDACTED, ids=[f"{r[0]}-{i}" for i, r in enumerate(REDACTED)]
)
def test_each_rule_works_alone(rule: str, text: str, expected: str) -> None:
    assert redact(text, rules=[rule]) == expected


UNTOUCHED = [
    "order 1234567890123456 shipped",  # 16 digits, fails Luhn
    "order 4111111111111112 shipped",  # a card prefix, fails Luhn
    "batch 1714564800121 done at epoch 1714564800123456721",  # Luhn-valid, but timestamps start with 1
    "job 7-1714564800121 finished",  # the timestamp alone is Luhn-valid
    "2024-05-01T12:00:00.123456789Z 2024-05-01 12:00:00,123",
    "request 123e4567-e89b-12d3-a456-426614174000 trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "deployed 3f786850e387550fdab836ed7e6dc881de23001b (3f78685)",
    "peer 10.0.12.7:8080 via 2001:db8:85a3::8a2e:370:7334 and fe80::1ff:fe23:4567:890a",
    "password reset requested for account 4821",
    "token bucket refilled, 20 tokens available",
    "failed to refresh token: expired",
    "GET https://shop.example.com:8443/api/v1/orders?page=2&size=50 200",
    "ping user@ about it, cc @alice; nginx@sha256:e4f2 admin@10.0.0.1",
    "agent version 1.2.3.4 build 20240501.1",
    "took 1234ms (p99 0.987654321s) over 12345678 bytes",
    "max_tokens=4096 input_tokens: 812 token_count=9",
    "PWD=/home/app SHELL=/bin/bash",
    "basic auth disabled; Bearer token missing; loaded basic settings",  # "settings" is base64
    "call +44 20 7946 0958 or +1 (555) 123-4567",
    "Asia/Kolkata sk-learn 1.4 task-00000000000000000000000",
    "java.lang.IllegalStateException: Connection pool exhausted (max=50, active=50, idle=0)",
]


@pytest.mark.parametrize("text", UNTOUCHED)
def test_leaves_ordinary_text_alone(text: str) -> None:
    redactor = Redactor(RedactionSpec())
    assert redactor.redact_text(text) == (text, 0)
    assert redactor.counts == {}


@pytest.mark.parametrize("expected", [r[2] for r in REDACTED])
def test_redacted_text_stays_as_it_is(expected: str) -> None:
    """Records may pass two pipelines, or come from a service that already redacts."""
    assert Redactor(RedactionSpec()).redact_text(expected) == (expected, 0)


def test_more_specific_rule_labels_a_secret_once() -> None:
    redactor = Redactor(RedactionSpec())
    text, n = redactor.redact_text(f"api_key={OPENAI} token={JWT}")
    assert text == "api_key=[REDACTED:openai_key] token=[REDACTED:jwt]"
    assert n == 2
    assert redactor.counts == {"openai_key": 1, "jwt": 1}


def test_rules_subset_applies_only_those() -> None:
    text = f"bob@example.com Authorization: Bearer {JWT}"
    assert redact(text, rules=["email"]) == f"[REDACTED:email] Authorization: Bearer {JWT}"
    assert redact(text, rules=[]) == text


def test_unknown_rule_lists_known_ones() -> None:
    with pytest.raises(ValidationError) as info:
        RedactionSpec.model_validate({"rules": ["email", "ssn"]})
    message = str(info.value)
    assert "unknown redaction rule(s) ssn" in message
    assert all(rule.name in message for rule in BUILTIN_RULES)


def test_disabled_changes_nothing() -> None:
    redactor = Redactor(RedactionSpec(enabled=False))
    rec = record("mail bob@example.com", {"user.email": "bob@example.com"})
    assert redactor.redact_text("bob@example.com") == ("bob@example.com", 0)
    assert redactor.redact_record(rec) == rec


def test_custom_rules() -> None:
    spec = RedactionSpec.model_validate(
        {
            "rules": [],
            "custom": [
                {"name": "customer_id", "pattern": r"customer_id=(?P<secret>C\d{6})"},
                {"name": "iban", "pattern": r"\bDE\d{20}\b", "replacement": "<iban>"},
            ],
        }
    )
    redactor = Redactor(spec)
    text = "refund customer_id=C123456 to DE89370400440532013000, customer_id=X1"
    assert redactor.redact_text(text) == (
        "refund customer_id=[REDACTED:customer_id] to <iban>, customer_id=X1",
        2,
    )
    assert redactor.counts == {"customer_id": 1, "iban": 1}


def test_custom_rules_run_after_builtins() -> None:
    spec = RedactionSpec.model_validate({"custom": [{"name": "ticket", "pattern": r"TICKET-\d+"}]})
    assert Redactor(spec).redact_text("TICKET-42 from bob@example.com") == (
        "[REDACTED:ticket] from [REDACTED:email]",
        2,
    )


@pytest.mark.parametrize(
    ("custom", "error"),
    [
        ({"name": "bad", "pattern": "(unclosed"}, "invalid regex"),
        ({"name": "empty", "pattern": "x*"}, "matches the empty string"),
        ({"name": "Has Space", "pattern": "x"}, "should match pattern"),
        ({"name": "email", "pattern": "x"}, "already taken"),
        ({"name": "x", "pattern": "x", "flags": "i"}, "Extra inputs"),
    ],
)
def test_custom_rule_validation(custom: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        RedactionSpec.model_validate({"custom": [custom]})


def test_duplicate_custom_names_are_rejected() -> None:
    with pytest.raises(ValidationError, match="already taken"):
        RedactionSpec.model_validate(
            {"custom": [{"name": "a", "pattern": "x"}, {"name": "a", "pattern": "y"}]}
        )


def test_record_body_and_nested_attributes() -> None:
    redactor = Redactor(RedactionSpec())
    rec = record(
        "checkout failed for bob@example.com",
        {
            "http.request.method": "POST",
            "http.response.status_code": 502,
            "http.request.header.authorization": [f"Bearer {JWT}"],
            "db.connection_string": "postgres://app:S3cr3t@db:5432/orders",
            "payment": {"card": {"pan": "4111-1111-1111-1111", "brand": "visa"}, "retries": 2},
        },
        **{"deployment.owner": "ops@example.com"},
    )
    out = redactor.redact_record(rec)
    assert out["body"] == "checkout failed for [REDACTED:email]"
    assert out["attributes"] == {
        "http.request.method": "POST",
        "http.response.status_code": 502,
        "http.request.header.authorization": ["Bearer [REDACTED:bearer_token]"],
        "db.connection_string": "postgres://app:[REDACTED:url_password]@db:5432/orders",
        "payment": {"card": {"pan": "[REDACTED:card_number]", "brand": "visa"}, "retries": 2},
    }
    assert out["resourceAttributes"] == {"service.name": "checkout", "deployment.owner": "[REDACTED:email]"}
    assert {k: out[k] for k in ("traceId", "spanId", "timestamp", "severityNumber")} == {
        k: rec[k] for k in ("traceId", "spanId", "timestamp", "severityNumber")
    }
    assert redactor.counts == {"email": 2, "bearer_token": 1, "url_password": 1, "card_number": 1}


def test_attributes_false_redacts_only_the_body() -> None:
    rec = record("mail bob@example.com", {"user.email": "bob@example.com"}, owner="ops@example.com")
    out = Redactor(RedactionSpec(attributes=False)).redact_record(rec)
    assert out["body"] == "mail [REDACTED:email]"
    assert out["attributes"] == {"user.email": "bob@example.com"}
    assert out["resourceAttributes"]["owner"] == "ops@example.com"


def test_drop_attributes_at_any_depth_and_any_case() -> None:
    spec = RedactionSpec(drop_attributes=["http.request.header.authorization", "cookie"])
    redactor = Redactor(spec)
    rec = record(
        "ok",
        {
            "http.request.header.authorization": ["Basic abc"],
            "HTTP.Request.Header.Authorization": "x",
            "http.route": "/cart",
            "headers": {"cookie": "sid=1", "accept": "*/*"},
        },
        cookie="c",
    )
    out = redactor.redact_record(rec)
    assert out["attributes"] == {"http.route": "/cart", "headers": {"accept": "*/*"}}
    assert out["resourceAttributes"] == {"service.name": "checkout"}
    assert redactor.counts == {DROPPED: 4}


def test_drop_attributes_works_with_attributes_false() -> None:
    redactor = Redactor(RedactionSpec(attributes=False, drop_attributes=["user.email"]))
    out = redactor.redact_record(record("ok", {"user.email": "bob@example.com", "user.id": "7"}))
    assert out["attributes"] == {"user.id": "7"}


def test_input_record_is_not_mutated() -> None:
    shared_resource = {"service.name": "checkout", "owner": "ops@example.com"}
    records = [
        {
            **record(f"user {i}@example.com", {"tags": ["a", "bob@example.com"], "nested": {"pwd": "x1"}}),
            "resourceAttributes": shared_resource,
        }
        for i in range(2)
    ]
    before = copy.deepcopy(records)
    redactor = Redactor(RedactionSpec(drop_attributes=["nested"]))
    outs = [redactor.redact_record(r) for r in records]
    assert records == before
    assert records[0]["resourceAttributes"] is records[1]["resourceAttributes"]
    assert all(out is not rec for out, rec in zip(outs, records, strict=True))
    assert outs[1]["body"] == "user [REDACTED:email]"
    assert outs[1]["attributes"] == {"tags": ["a", "[REDACTED:email]"]}


def test_counts_accumulate_per_record_including_shared_resources() -> None:
    redactor = Redactor(RedactionSpec())
    for i in range(3):
        # Equal resources in different dicts: redacted once, counted for every record.
        redactor.redact_record(record(f"order {i} by bob@example.com", owner="ops@example.com"))
    assert redactor.counts == {"email": 6}


def test_secrets_are_redacted_every_time() -> None:
    """Clean strings are remembered; a string with a secret must never be."""
    redactor = Redactor(RedactionSpec())
    rec = record("login ok", {"http.route": "/login", "user.email": "bob@example.com"})
    for _ in range(3):
        out = redactor.redact_record(rec)
        assert out["attributes"] == {"http.route": "/login", "user.email": "[REDACTED:email]"}
    assert redactor.counts == {"email": 3}


def test_unchanged_containers_are_shared_not_copied() -> None:
    rec = record("nothing to see", {"http.route": "/cart"})
    out = Redactor(RedactionSpec()).redact_record(rec)
    assert out == rec
    assert out is not rec
    assert out["attributes"] is rec["attributes"]


def test_equal_but_differently_typed_resources_keep_their_values() -> None:
    redactor = Redactor(RedactionSpec())
    first = redactor.redact_record(record("a", sampled=1))
    second = redactor.redact_record(record("b", sampled=True))
    assert type(first["resourceAttributes"]["sampled"]) is int
    assert second["resourceAttributes"]["sampled"] is True


def test_records_missing_fields_pass_through() -> None:
    redactor = Redactor(RedactionSpec(drop_attributes=["x"]))
    assert redactor.redact_record({"body": "mail bob@example.com"}) == {"body": "mail [REDACTED:email]"}
    odd = {"body": None, "attributes": None, "resourceAttributes": ["x"]}
    assert redactor.redact_record(odd) == odd


def test_text_remembered_clean_by_shape_still_redacts_what_differs() -> None:
    redactor = Redactor(RedactionSpec())
    for user in range(1000, 1100):  # one shape, remembered clean
        record = {"body": f"user {user} paid", "attributes": {"user.id": f"u-{user}"}}
        assert redactor.redact_record(record) == record
    card = redactor.redact_record({"body": "user 4111 1111 1111 1111 paid", "attributes": {}})
    mail = redactor.redact_record({"body": "user 1000 paid", "attributes": {"to": "a@example.com"}})
    assert card["body"] == "user [REDACTED:card_number] paid"
    assert mail["attributes"] == {"to": "[REDACTED:email]"}


def test_records_remembered_clean_together_still_redact_what_differs() -> None:
    redactor = Redactor(RedactionSpec())
    clean = {
        "body": "GET /api/orders/77 returned 200",
        "attributes": {"route": "/api/orders/{id}", "user": "u-1"},
    }
    for _ in range(3):  # the record's strings are now remembered together
        assert redactor.redact_record(clean) == clean
    secret = {**clean, "attributes": {**clean["attributes"], "user": "token=abc123"}}
    assert redactor.redact_record(secret)["attributes"]["user"] == "token=[REDACTED:password_field]"
    mail = {**clean, "body": "GET /api/orders/77 returned 200 to a@example.com"}
    assert redactor.redact_record(mail)["body"] == "GET /api/orders/77 returned 200 to [REDACTED:email]"


def test_what_is_remembered_clean_stays_bounded() -> None:
    def word(i: int) -> str:  # letters: every word a shape of its own
        return "".join(chr(97 + (i // 26**k) % 26) for k in range(3))

    redactor = Redactor(RedactionSpec())
    # 150 bodies and 150 values, each remembered alone first, then in 22,500 combinations
    pairs = [(i, i) for i in range(150)] + [(i, j) for i in range(150) for j in range(150)]
    for i, j in pairs:
        record = {"body": f"event {word(i)}", "attributes": {"k": f"v{word(j)}"}}
        assert redactor.redact_record(record) == record
    assert len(redactor._clean) <= 16_384


def test_custom_rules_see_every_text_whatever_its_shape() -> None:
    spec = RedactionSpec(rules=[], custom=[{"name": "vip", "pattern": r"\border-7\d+"}])
    redactor = Redactor(spec)
    assert redactor.redact_text("order-123 shipped") == ("order-123 shipped", 0)
    assert redactor.redact_text("order-789 shipped") == ("[REDACTED:vip] shipped", 1)
    record = redactor.redact_record({"body": "order-712 shipped", "attributes": {"id": "order-7"}})
    assert record["body"] == "[REDACTED:vip] shipped"


def test_anchored_custom_patterns_apply_to_each_string_of_a_record() -> None:
    spec = RedactionSpec(rules=[], custom=[CustomRule(name="ticket", pattern=r"^T-\d+$")])
    record = {"body": "first line", "attributes": {"a": "x", "ticket": "T-1234"}, "resourceAttributes": {}}
    out = Redactor(spec).redact_record(record)
    assert out["attributes"]["ticket"] == "[REDACTED:ticket]"
