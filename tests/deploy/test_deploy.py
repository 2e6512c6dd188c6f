"""Static checks of the deployment files: the Dockerfile, deploy/docker-compose.yml, the plain
Kubernetes manifests (rendered with `kubectl kustomize` when kubectl is installed, read file by
file otherwise) and the Helm chart. No helm binary is used: the chart's templates are checked for
balanced actions and for values that exist, not rendered."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from vigil.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "vigil"
SERVICES = {"api", "receiver", "pipeline", "sink"}
PORTS = {  # service -> (port name, port, env var), first one is probed
    "api": [("http", 8080, "VIGIL_API_PORT")],
    "receiver": [("otlp-http", 4318, "VIGIL_OTLP_HTTP_PORT"), ("otlp-grpc", 4317, "VIGIL_OTLP_GRPC_PORT")],
    "pipeline": [("ops", 9464, "VIGIL_OPS_PORT")],
    "sink": [("ops", 9464, "VIGIL_OPS_PORT")],
}
API_VERSIONS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "Service": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
}


def is_setting(name: str) -> bool:
    """Whether VIGIL_X or VIGIL_X__Y names a field of vigil.settings.Settings."""
    if not name.startswith("VIGIL_"):
        return False
    parts = name.removeprefix("VIGIL_").lower().split("__")
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def test_is_setting() -> None:
    assert is_setting("VIGIL_NATS_URL")
    assert is_setting("VIGIL_BUS__REPLICAS")
    assert is_setting("VIGIL_LLM__API_KEY")
    assert not is_setting("VIGIL_NATS")
    assert not is_setting("VIGIL_BUS__NOPE")
    assert not is_setting("VIGIL_NATS_URL__X")


# --- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_non_root_and_runs_vigil() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", text, re.MULTILINE | re.IGNORECASE)
    assert len(stages) >= 2 and "builder" in stages
    assert "from=builder" in text.replace("--from=builder", "from=builder")
    builder = text.split("AS runtime")[0]
    assert "pip wheel" in builder and "./sdk/python" in builder
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users, "the image must set USER"
    assert users[-1].split(":")[0] not in {"0", "root"}
    assert users[-1].split(":")[0].isdigit(), "a numeric USER lets Kubernetes check runAsNonRoot"
    assert re.search(r'^ENTRYPOINT \["vigil"\]$', text, re.MULTILINE)
    assert re.search(r'^CMD \["up"\]$', text, re.MULTILINE)
    exposed = {p for line in re.findall(r"^EXPOSE (.+)$", text, re.MULTILINE) for p in line.split()}
    assert exposed >= {"4317", "4318", "8080", "9464"}
    assert re.search(r'^VOLUME \["/data"\]$', text, re.MULTILINE)
    assert "VIGIL_DATA_DIR=/data" in text
    assert "VIGIL_HOST=0.0.0.0" in text  # Vigil listens on loopback unless told otherwise
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored and "src" not in ignored


# --- docker compose ------------------------------------------------------------------------------

INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def resolve(value: str) -> str:
    """Compose's ${VAR:-default} with nothing set in the environment: the default."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"nats", "postgres", "otlp-error-summary"} | {f"vigil-{s}" for s in SERVICES}
    assert "-js" in services["nats"]["command"]
    assert services["nats"]["command"][-4:] == ["--user", "vigil", "--pass", "${NATS_PASSWORD:-vigil}"]
    assert any(v.endswith(":/data") for v in services["nats"]["volumes"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name in SERVICES:
        service = services[f"vigil-{name}"]
        assert service["command"] == [name]
        assert service["build"] == {"context": "..", "dockerfile": "Dockerfile"}
        assert service["depends_on"] == {
            "nats": {"condition": "service_healthy"},
            "postgres": {"condition": "service_healthy"},
        }
        probe = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{PORTS[name][0][1]}/readyz" in probe
        published = {str(p).split(":")[-1] for p in service.get("ports", [])} | {
            str(p) for p in service.get("expose", [])
        }
        assert {str(port) for _, port, _ in PORTS[name]} <= published
        assert compose["x-vigil-env"]["VIGIL_HOST"] == "0.0.0.0"
    agent = services["otlp-error-summary"]
    assert agent["build"]["dockerfile"] == "examples/agents/otlp-error-summary/Dockerfile"
    assert agent["environment"]["VIGIL_ENDPOINT"] == "http://vigil-receiver:4318"
    assert agent["depends_on"]["vigil-receiver"]["condition"] == "service_healthy"
    assert set(compose["volumes"]) >= {"nats-data", "postgres-data"}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_compose_env_is_valid_settings(
    compose: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {k: resolve(str(v)) for k, v in compose["services"][f"vigil-{name}"]["environment"].items()}
    assert all(is_setting(k) for k in env), sorted(k for k in env if not is_setting(k))
    for key in [k for k in __import__("os").environ if k.startswith("VIGIL_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (
        settings.nats_url is not None
        and settings.nats_url.get_secret_value() == "nats://vigil:vigil@nats:4222"
    )
    raw = compose["services"][f"vigil-{name}"]["environment"]
    assert raw["VIGIL_SECRET_KEY"].startswith("${VIGIL_SECRET_KEY:?")  # required: no default key
    assert settings.sqlalchemy_url() == "postgresql+asyncpg://vigil:vigil@postgres:5432/vigil"
    for _, port, var in PORTS[name]:
        assert getattr(settings, var.removeprefix("VIGIL_").lower()) == port


# --- plain Kubernetes manifests -------------------------------------------------------------------


def kustomize(folder: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: kustomizations are not rendered")
    out = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def read_manifests(folder: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((folder / resource).read_text()) if d]
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def check_objects(docs: list[dict[str, Any]]) -> None:
    """Every object is well-formed, each Deployment's selector matches its pods, each Service
    selects pods and targets named ports they have, probes use ports the container declares."""
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names))
    for doc in docs:
        assert doc["apiVersion"] == API_VERSIONS[doc["kind"]], doc["kind"]
    deployments = by_kind(docs, "Deployment")
    pods = {}
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items(), name
        pods[name] = (labels, [p for c in spec["template"]["spec"]["containers"] for p in c["ports"]])
        for container in spec["template"]["spec"]["containers"]:
            port_names = {p["name"] for p in container["ports"]}
            for probe in ("livenessProbe", "readinessProbe"):
                assert container[probe]["httpGet"]["port"] in port_names, (name, probe)
    for name, service in by_kind(docs, "Service").items():
        selector = service["spec"]["selector"]
        matched = [ports for labels, ports in pods.values() if selector.items() <= labels.items()]
        assert len(matched) == 1, f"Service {name} selects {len(matched)} Deployments"
        declared = {p["name"] for p in matched[0]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in declared, (name, port)


def check_vigil(docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(docs, "Deployment")
    services = by_kind(docs, "Service")
    configmap = by_kind(docs, "ConfigMap")["vigil-config"]
    secret = by_kind(docs, "Secret")["vigil-secrets"]
    assert all(is_setting(k) for k in configmap["data"]), configmap["data"]
    assert "VIGIL_NATS_URL" not in configmap["data"]  # it may carry a password: in the Secret
    assert configmap["data"]["VIGIL_HOST"] == "0.0.0.0"  # Services reach the pods, not loopback
    assert secret["stringData"]["nats-url"].startswith("nats://")
    for name in SERVICES:
        pod = deployments[f"vigil-{name}"]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["image"].startswith("vigil:")
        assert container["args"] == [name]
        env = {e["name"]: e for e in container["env"]}
        assert all(is_setting(k) for k in env), sorted(env)
        for port_name, port, var in PORTS[name]:
            assert env[var]["value"] == str(port)
            assert {"name": port_name, "containerPort": port} in container["ports"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["port"] == PORTS[name][0][0]
        for var in (
            "VIGIL_ADMIN_TOKEN",
            "VIGIL_DATABASE_URL",
            "VIGIL_SECRET_KEY",
            "VIGIL_NATS_URL",
            "VIGIL_LLM__API_KEY",
        ):
            ref = env[var]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "vigil-secrets"
            assert ref["key"] in secret["stringData"] or ref.get("optional") is True
        assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
        service_ports = {(p["name"], p["port"]) for p in services[f"vigil-{name}"]["spec"]["ports"]}
        assert service_ports == {(n, p) for n, p, _ in PORTS[name]}


def test_k8s_manifests_files() -> None:
    docs = read_manifests(DEPLOY / "k8s" / "vigil")
    check_objects(docs)
    check_vigil(docs)


def test_k8s_kustomization_renders() -> None:
    docs = kustomize(DEPLOY / "k8s" / "vigil")
    check_objects(docs)
    check_vigil(docs)


def test_k8s_with_agent_renders_and_points_the_agent_at_the_receiver() -> None:
    docs = kustomize(DEPLOY / "k8s" / "with-agent")
    check_objects(docs)
    check_vigil(docs)
    agent = by_kind(docs, "Deployment")["otlp-error-summary"]
    (container,) = agent["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VIGIL_ENDPOINT"] == "http://vigil-receiver:4318"
    assert by_kind(docs, "Service")["otlp-error-summary"]["spec"]["ports"][0]["port"] == 8000
    receiver = by_kind(docs, "Service")["vigil-receiver"]
    assert {"name": "otlp-http", "port": 4318, "targetPort": "otlp-http"}.items() <= receiver["spec"][
        "ports"
    ][0].items()


def test_example_agent_kustomization_renders() -> None:
    docs = kustomize(ROOT / "examples" / "agents" / "otlp-error-summary" / "k8s")
    check_objects(docs)


# --- Helm chart (not rendered: no helm binary) ----------------------------------------------------

ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
OPENERS = ("if ", "range ", "with ", "define ", "block ")


def templates() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((CHART / "templates").iterdir())}


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "vigil" and chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    assert set(templates()) >= {
        "_helpers.tpl",
        "_service.tpl",
        "NOTES.txt",
        "configmap.yaml",
        "secret.yaml",
        "nats.yaml",
        "postgresql.yaml",
    } | {f"{s}.yaml" for s in SERVICES}


@pytest.mark.parametrize("name", sorted(templates()))
def test_chart_template_actions_are_balanced(name: str) -> None:
    text = templates()[name]
    assert text.count("{{") == text.count("}}")
    depth = 0
    for action in ACTION.findall(text):
        if action.startswith("/*"):
            assert action.endswith("*/")
            continue
        if action.startswith(OPENERS):
            depth += 1
        elif action == "end":
            depth -= 1
            assert depth >= 0, f"{name}: an end without an opener"
    assert depth == 0, f"{name}: {depth} unclosed if/range/with/define"


def value_paths(values: Any, prefix: str = "") -> set[str]:
    paths = set()
    if isinstance(values, dict):
        for key, value in values.items():
            path = f"{prefix}.{key}"
            paths.add(path)
            paths |= value_paths(value, path)
    return paths


def test_chart_values_used_and_defined() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    defined = value_paths(values)
    text = "\n".join(templates().values())
    used = {m for m in re.findall(r"\.Values((?:\.\w+)+)", text)}
    missing = {path for path in used if path not in defined}
    assert not missing, f"templates use values that values.yaml lacks: {sorted(missing)}"
    # Every key of values.yaml is read by a template: itself, a key under it, or its parent map
    # handed over whole (as `.Values.api` is to the service template).
    unused = {
        p for p in defined if not any(u == p or u.startswith(p + ".") or p.startswith(u + ".") for u in used)
    }
    assert not unused, f"values.yaml keys no template reads: {sorted(unused)}"


def test_chart_services_and_settings() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for name in SERVICES:
        assert values[name]["enabled"] is True and values[name]["replicas"] >= 1
        assert "requests" in values[name]["resources"]
        body = templates()[f"{name}.yaml"]
        assert f'"component" "{name}" "command" "{name}"' in body
        for port_name, port, var in PORTS[name]:
            assert f'"name" "{port_name}"' in body and f'"env" "{var}"' in body
            assert port in {v for k, v in values[name].items() if k.endswith("ort")}
    assert values["probes"]["liveness"]["path"] == "/healthz"
    assert values["probes"]["readiness"]["path"] == "/readyz"
    text = "\n".join(t for n, t in templates().items() if n != "NOTES.txt")  # NOTES names the agent's
    env_names = set(re.findall(r"\b(VIGIL_[A-Z_]+)\b", text))
    assert env_names >= {
        "VIGIL_NATS_URL",
        "VIGIL_ADMIN_TOKEN",
        "VIGIL_DATABASE_URL",
        "VIGIL_SECRET_KEY",
        "VIGIL_LLM__API_KEY",
    }
    assert all(is_setting(n) for n in env_names), sorted(n for n in env_names if not is_setting(n))
    service = templates()["_service.tpl"]
    for key in ("admin-token", "database-url", "secret-key", "nats-url", "llm-api-key"):
        assert f"key: {key}" in service and f"{key}:" in templates()["secret.yaml"]
    assert "VIGIL_NATS_URL" not in templates()["configmap.yaml"]  # may carry a password
    assert 'VIGIL_HOST: "0.0.0.0"' in templates()["configmap.yaml"]
    for kind in (
        "kind: Deployment",
        "kind: Service",
        "readinessProbe",
        "livenessProbe",
        "podSecurityContext",
    ):
        assert kind in service, kind
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    nats = templates()["nats.yaml"]
    assert "kind: StatefulSet" in nats and "jetstream {" in nats and "cluster {" in nats
    assert "authorization {" in nats and "key: nats-password" in nats
    assert values["nats"]["replicas"] == 3
    assert "kind: StatefulSet" in templates()["postgresql.yaml"]
    assert "existingSecret" in templates()["_helpers.tpl"]


# --- Helm chart, rendered where a helm binary exists ------------------------------------------------


def helm_template(*args: str) -> list[dict[str, Any]]:
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip("helm not installed: the chart is checked statically only (tests above)")
    out = subprocess.run(
        [helm, "template", "vigil", str(CHART), *args], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def container_env(deployment: dict[str, Any]) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_chart_renders_with_bundled_nats_and_postgresql() -> None:
    docs = helm_template()
    check_objects(docs)
    deployments = by_kind(docs, "Deployment")
    for name in SERVICES:
        [deployment] = [d for n, d in deployments.items() if n.endswith(name)]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [name]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert {p["containerPort"] for p in container["ports"]} == {port for _, port, _ in PORTS[name]}
        env = container_env(deployment)
        assert {var: env[var] for _, _, var in PORTS[name]} == {
            var: str(port) for _, port, var in PORTS[name]
        }
        assert env["VIGIL_ADMIN_TOKEN"]["secretKeyRef"]["key"] == "admin-token"
        assert env["VIGIL_DATABASE_URL"]["secretKeyRef"]["key"] == "database-url"
        assert env["VIGIL_SECRET_KEY"]["secretKeyRef"]["key"] == "secret-key"
        assert env["VIGIL_NATS_URL"]["secretKeyRef"]["key"] == "nats-url"
    [secret] = by_kind(docs, "Secret").values()
    nats_url = base64.b64decode(secret["data"]["nats-url"]).decode()
    assert nats_url.startswith("nats://vigil:") and "@" in nats_url  # the bundled NATS asks for a password
    assert len(base64.b64decode(base64.b64decode(secret["data"]["secret-key"]))) == 32
    statefulsets = by_kind(docs, "StatefulSet")
    assert any("nats" in n for n in statefulsets) and any("postgresql" in n for n in statefulsets)


def test_chart_renders_with_external_urls_and_replicas() -> None:
    docs = helm_template(
        *("--set", "nats.enabled=false", "--set", "natsUrl=nats://nats.example:4222"),
        *(
            "--set",
            "postgresql.enabled=false",
            "--set",
            "secrets.databaseUrl=postgresql+asyncpg://u@db/vigil",
        ),
        *("--set", "pipeline.replicas=3"),
    )
    check_objects(docs)
    assert not by_kind(docs, "StatefulSet")
    [pipeline] = [d for n, d in by_kind(docs, "Deployment").items() if n.endswith("pipeline")]
    assert pipeline["spec"]["replicas"] == 3
    [secret] = by_kind(docs, "Secret").values()
    assert base64.b64decode(secret["data"]["nats-url"]).decode() == "nats://nats.example:4222"
