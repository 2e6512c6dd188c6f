from __future__ import annotations

from pathlib import Path

import pytest

from vigil.config_file import ConfigFileError, VigilFile, load_config_file
from vigil.errors import VigilError
from vigil.specs import SlackSinkSpec, WebhookSinkSpec

KEY = "k" * 32
ENV = {"PAYMENTS_API_KEY": KEY, "WEBHOOK_SECRET": "s3cret"}

# Line numbers in the assertions below refer to this text; edits keep the line count unchanged.
BASE = """\
version: 1
projects:
  - name: payments
    api_keys:
      - name: collector
        key: ${PAYMENTS_API_KEY}
    pipelines:
      errors:
        filter:
          min_severity: ERROR
          services: [checkout, payment-gateway]
        batch:
          max_records: 10
          max_wait_ms: 500
        agent:
          endpoint: http://127.0.0.1:8000/process
    sinks:
      - type: webhook
        url: https://hooks.example.com/vigil
        secret: ${WEBHOOK_SECRET}
      - type: slack
        webhook_url: https://hooks.slack.com/services/T000/B000/XXXX
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Messages then name the file as `vigil.yaml`, as they would for a user.
    monkeypatch.chdir(tmp_path)


def _load(text: str, env: dict[str, str] | None = None) -> VigilFile:
    path = Path("vigil.yaml")
    path.write_text(text)
    return load_config_file(path, ENV if env is None else env)


def _errors(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigFileError) as info:
        _load(text, env)
    assert str(info.value) == "\n".join(info.value.errors)
    return info.value.errors


def _edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def test_valid_file_loads() -> None:
    config = _load(BASE)

    assert config.version == 1
    (project,) = config.projects
    assert project.name == "payments"
    assert project.api_keys[0].name == "collector"
    assert project.api_keys[0].key.get_secret_value() == KEY
    pipeline = project.pipelines["errors"]
    assert pipeline.filter.min_severity == 17
    assert pipeline.filter.services == ["checkout", "payment-gateway"]
    assert (pipeline.batch.max_records, pipeline.batch.max_wait_ms) == (10, 500)
    assert pipeline.agent.endpoint == "http://127.0.0.1:8000/process"
    webhook, slack = project.sinks
    assert isinstance(webhook, WebhookSinkSpec)
    assert webhook.secret is not None and webhook.secret.get_secret_value() == "s3cret"
    assert isinstance(slack, SlackSinkSpec)


def test_example_file_in_the_repo_is_valid() -> None:
    example = Path(__file__).resolve().parents[1] / "vigil.example.yaml"
    env = {
        "PAYMENTS_API_KEY": KEY,
        "INCIDENTS_WEBHOOK_SECRET": "s3cret",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XXXX",
    }

    config = load_config_file(example, env)

    assert config.projects[0].pipelines["errors"].filter.min_severity == 17


def test_only_projects_is_required() -> None:
    assert _load("projects: [{name: empty}]\n").projects[0].pipelines == {}


def test_env_substitution_with_default_and_dollar_escape() -> None:
    text = _edit("  - name: payments", "  - name: ${PROJECT:-pay}$${PROJECT}-${SUFFIX:-x}")
    text = _edit(
        "          services: [checkout, payment-gateway]", "          services: ['${SVC}', 'a$b']", text
    )
    text = _edit("          max_records: 10", "          max_records: ${BATCH:-25}", text)
    config = _load(text, {**ENV, "SVC": "checkout", "SUFFIX": ""})

    project = config.projects[0]
    assert project.name == "pay${PROJECT}-x"
    assert project.pipelines["errors"].filter.services == ["checkout", "a$b"]
    assert project.pipelines["errors"].batch.max_records == 25


def test_substituted_values_cannot_inject_yaml() -> None:
    text = _edit("  - name: payments", "  - name: ${PROJECT}")

    # The value stays one scalar, the project's name (which then refuses line breaks): no second project.
    assert _errors(text, {**ENV, "PROJECT": "evil\n    pipelines: {}\n  - name: other"}) == [
        "vigil.yaml:3:5: projects[0].name: must not contain control characters or line breaks"
    ]
    config = _load(text, {**ENV, "PROJECT": "evil: {pipelines: {}}, - name: other"})
    assert [p.name for p in config.projects] == ["evil: {pipelines: {}}, - name: other"]


def test_keys_are_not_substituted() -> None:
    text = _edit("      errors:", "      ${NAME}:")

    assert _errors(text) == [
        "vigil.yaml:8:7: projects[0].pipelines['${NAME}']: pipeline name '${NAME}' must be 1-63 "
        "lowercase letters, digits, '-' or '_', starting with a letter or digit"
    ]


def test_missing_env_vars_name_the_variable_and_line() -> None:
    assert _errors(BASE, {}) == [
        "vigil.yaml:6:14: projects[0].api_keys[0].key: environment variable PAYMENTS_API_KEY is not set",
        "vigil.yaml:20:17: projects[0].sinks[0].secret: environment variable WEBHOOK_SECRET is not set",
    ]


def test_malformed_substitutions() -> None:
    text = _edit("  - name: payments", "  - name: ${bad name}")
    text = _edit("        url: https://hooks.example.com/vigil", "        url: https://${HOST", text)

    assert _errors(text) == [
        "vigil.yaml:3:11: projects[0].name: invalid substitution '${bad name}': "
        "use ${NAME} or ${NAME:-default}",
        "vigil.yaml:19:14: projects[0].sinks[0].url: unterminated '${' (write '$$' for a literal '$')",
    ]


def test_wrong_type() -> None:
    text = _edit("max_records: 10", "max_records: lots")

    assert _errors(text) == [
        "vigil.yaml:13:11: projects[0].pipelines.errors.batch.max_records: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]


def test_out_of_range() -> None:
    text = _edit("max_records: 10", "max_records: 5000")

    assert _errors(text) == [
        "vigil.yaml:13:11: projects[0].pipelines.errors.batch.max_records: "
        "Input should be less than or equal to 1000"
    ]


def test_unknown_field() -> None:
    text = _edit("max_wait_ms: 500", "max_wait: 500")

    assert _errors(text) == [
        "vigil.yaml:14:11: projects[0].pipelines.errors.batch.max_wait: Extra inputs are not permitted"
    ]


def test_missing_field_points_at_the_parent_mapping() -> None:
    text = _edit("        agent:\n          endpoint: http://127.0.0.1:8000/process\n", "\n\n")

    assert _errors(text) == ["vigil.yaml:8:7: projects[0].pipelines.errors.agent: Field required"]


def test_bad_pipeline_name() -> None:
    text = _edit("      errors:", "      Errors:")

    assert _errors(text) == [
        "vigil.yaml:8:7: projects[0].pipelines.Errors: pipeline name 'Errors' must be 1-63 "
        "lowercase letters, digits, '-' or '_', starting with a letter or digit"
    ]


def test_bad_sink_type() -> None:
    text = _edit("      - type: slack", "      - type: email")

    assert _errors(text) == [
        "vigil.yaml:21:9: projects[0].sinks[1].type: Input tag 'email' found using 'type' does not "
        "match any of the expected tags: 'webhook', 'slack'"
    ]


def test_missing_sink_type() -> None:
    text = _edit("      - type: slack\n        webhook_url", "\n      - webhook_url")

    assert _errors(text) == ["vigil.yaml:22:9: projects[0].sinks[1].type: Field required"]


def test_sink_field_errors_drop_the_union_tag_from_the_path() -> None:
    text = _edit("url: https://hooks.example.com/vigil", "url: not a url")
    text = _edit("        webhook_url: https", "        timeout_s: 0\n        webhook_url: https", text)

    assert _errors(text) == [
        "vigil.yaml:19:9: projects[0].sinks[0].url: Input should be a valid URL, relative URL without a base",
        "vigil.yaml:22:9: projects[0].sinks[1].timeout_s: Input should be greater than 0",
    ]


def test_duplicate_key() -> None:
    text = _edit("          max_wait_ms: 500", "          max_records: 20")

    assert _errors(text) == [
        "vigil.yaml:14:11: projects[0].pipelines.errors.batch.max_records: "
        "duplicate key 'max_records' (first given on line 13)"
    ]


def test_duplicate_project() -> None:
    text = BASE + "  - name: other\n  - name: payments\n"

    assert _errors(text) == [
        "vigil.yaml:24:5: projects[2].name: project name 'payments' is declared more than once"
    ]


def test_duplicate_api_key_name() -> None:
    text = _edit("    pipelines:", "      - {name: collector, key: '" + "x" * 24 + "'}\n    pipelines:")

    assert _errors(text) == [
        "vigil.yaml:7:10: projects[0].api_keys[1].name: API key name 'collector' is declared more than once"
    ]


def test_short_api_key_is_reported_without_its_value() -> None:
    errors = _errors(BASE, {**ENV, "PAYMENTS_API_KEY": "tooshort"})

    assert errors == ["vigil.yaml:6:9: projects[0].api_keys[0].key: API key must be at least 24 characters"]


def test_every_problem_is_reported_in_file_order() -> None:
    text = _edit("max_records: 10", "max_records: 0")
    text = _edit("  - name: payments", "  - name: payments\n    color: blue", text)

    assert _errors(text) == [
        "vigil.yaml:4:5: projects[0].color: Extra inputs are not permitted",
        "vigil.yaml:14:11: projects[0].pipelines.errors.batch.max_records: "
        "Input should be greater than or equal to 1",
    ]


def test_yaml_syntax_error() -> None:
    text = _edit("services: [checkout, payment-gateway]", "services: [checkout, payment-gateway")

    assert _errors(text) == [
        "vigil.yaml:12:14: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence at line 11, column 21)"
    ]


def test_yaml_indentation_error() -> None:
    text = _edit("        url: https://", "       url: https://")

    (error,) = _errors(text)
    assert error.startswith("vigil.yaml:19:8: ")


def test_more_than_one_document_is_an_error() -> None:
    assert _errors(BASE + "---\nversion: 1\n") == [
        "vigil.yaml:23:1: but found another document "
        "(expected a single document in the stream at line 1, column 1)"
    ]


def test_unknown_version() -> None:
    assert _errors(_edit("version: 1", "version: 2")) == ["vigil.yaml:1:1: version: Input should be 1"]


def test_empty_and_non_mapping_files() -> None:
    assert _errors("# nothing\n") == ["vigil.yaml:1:1: the file is empty; expected a mapping with `projects`"]
    assert _errors("- a\n") == ["vigil.yaml:1:1: Input should be a valid dictionary or instance of VigilFile"]


def test_missing_file() -> None:
    with pytest.raises(ConfigFileError) as info:
        load_config_file(Path("absent.yaml"), {})

    assert info.value.errors == ["absent.yaml: no such file"]
    assert isinstance(info.value, VigilError)
    assert info.value.code == "invalid_config"


def test_yaml_1_1_boolean_words_stay_strings_as_keys() -> None:
    text = _edit("      errors:", "      on:")

    assert list(_load(text).projects[0].pipelines) == ["on"]


def test_aliases_and_merge_keys_share_settings() -> None:
    text = _edit(
        "        agent:\n          endpoint: http://127.0.0.1:8000/process\n",
        "        agent: &agent\n"
        "          endpoint: http://127.0.0.1:8000/process\n"
        "          timeout_s: 5\n"
        "      slow:\n"
        "        agent:\n"
        "          <<: *agent\n"
        "          timeout_s: 60\n",
    )

    pipelines = _load(text).projects[0].pipelines

    assert pipelines["errors"].agent.timeout_s == 5
    assert pipelines["slow"].agent.timeout_s == 60
    assert pipelines["slow"].agent.endpoint == "http://127.0.0.1:8000/process"


def test_recursive_alias_is_an_error() -> None:
    assert _errors("projects: &p [*p]\n") == [
        "vigil.yaml:1:11: projects[0]: an alias refers to its own anchor"
    ]


def test_alias_expansion_is_bounded() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for name, previous in zip("bcdef", "abcde", strict=True):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 10)}]")

    (error,) = _errors("\n".join(lines) + "\n")

    assert "more than 100000 values (aliases?)" in error
