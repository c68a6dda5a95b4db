"""Offline checks of the deployment files: Dockerfile, .dockerignore, docker-compose.yml and k8s/.

There is no Docker engine or cluster in CI, so these files would otherwise first meet reality on
someone's machine. These tests catch, before anyone deploys, what would fail there: a manifest the
API server would reject, a service without a health check, a port published beyond loopback, a
secret value committed, a network policy that cuts a caller off or opens a service to other pods.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.unit.deploy.test_dependencies import graph as declared_graph

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE_FILE = REPO / "docker-compose.yml"
K8S_DIR = REPO / "k8s"

NAMESPACE = "crowdquant"
GRPC_PORTS = {"submissions": 50051, "scoring": 50052, "leaderboard": 50053, "payouts": 50054}
GATEWAY_PORT = 8080
STATELESS = {"submissions", "scoring", "leaderboard", "gateway"}
ONE_SHOT = {"migrate", "pipeline"}
APPS = set(GRPC_PORTS) | {"gateway"} | ONE_SHOT
# Inside the cluster, who calls whom (callee -> callers); the NetworkPolicies must match exactly.
# Who calls each service: the services declaring it (their CALLS), and the operator's pipeline.
CALLERS = {
    callee: {caller for caller, peers in declared_graph().items() if callee in peers} | {"pipeline"}
    for callee in ("submissions", "scoring", "leaderboard", "payouts")
}
# Reached from outside through the ingress controller: the web gateway and the participants' gRPC API.
PUBLIC = {"gateway", "submissions", "payouts"}
DATABASE_USERS = set(GRPC_PORTS) | {"migrate"}
SECRET_NAME = "crowdquant-secrets"
MIGRATION_SECRET_NAME = "crowdquant-migrate"  # the migration Job's own: no service pod reads it
TLS_SECRET_NAME = "crowdquant-tls"
CONFIG_NAME = "crowdquant-config"
IMAGE = "crowdquant"
UID = 10001
# Oldest Kubernetes the manifests promise to work on (k8s/README.md), and the newest schema bundled.
OLDEST_KUBERNETES = "1.30.0"
NEWEST_KUBERNETES = kubernetes_validate.latest_version()

SECRET_VARIABLE = re.compile(r"SECRET|PASSWORD|API_KEY|SIGNING_KEY|TOKEN|DATABASE_URL")
URL_WITH_PASSWORD = re.compile(r"://[^/@\s:]+:[^/@\s]+@")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


# ---------------------------------------------------------------------------------------------------
# Loading


def _load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _manifest_files() -> list[Path]:
    return sorted(p for p in [*K8S_DIR.glob("*.yaml"), *K8S_DIR.glob("*.yml")] if p.stem != "kustomization")


def _load_manifests() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, doc) for path in _manifest_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


COMPOSE = _load_compose()
MANIFESTS = _load_manifests()
MANIFEST_IDS = [f"{file}:{doc['kind']}/{doc['metadata']['name']}" for file, doc in MANIFESTS]


def _docs(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in MANIFESTS if doc["kind"] == kind}


def _pod_templates() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod template (Deployment, Job, CronJob), keyed by its `app` label."""
    for _, doc in MANIFESTS:
        if doc["kind"] in {"Deployment", "Job"}:
            template = doc["spec"]["template"]
        elif doc["kind"] == "CronJob":
            template = doc["spec"]["jobTemplate"]["spec"]["template"]
        else:
            continue
        yield template["metadata"]["labels"]["app"], template


def _app_services() -> dict[str, dict[str, Any]]:
    """Compose services that run the crowdquant image."""
    return {name: svc for name, svc in COMPOSE["services"].items() if "build" in svc}


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


# ---------------------------------------------------------------------------------------------------
# Dockerfile


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions per stage; line continuations joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = [[]]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), rest.strip()))
    return stages


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    preamble, *stages = _dockerfile_stages()
    assert len(stages) >= 2, "builder and runtime stages"
    assert any(kw == "ARG" and "python:3.11-slim" in rest for kw, rest in preamble) or all(
        "python:3.11-slim" in stage[0][1] for stage in stages
    )
    assert " AS builder" in stages[0][0][1]
    final = stages[-1]
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in final, "runtime gets only the venv"
    builder_runs = " ".join(rest for kw, rest in stages[0] if kw == "RUN")
    assert "pip install --no-deps ." in builder_runs
    # One way to generate the stubs: the image runs the generator `make proto` runs.
    assert "scripts/gen_protos.py" in builder_runs
    assert "scripts/gen_protos.py" in (REPO / "Makefile").read_text()


def test_dockerfile_runs_as_non_root_with_crowdquant_entrypoint() -> None:
    final = _dockerfile_stages()[-1]
    users = [rest for kw, rest in final if kw == "USER"]
    assert users, "the runtime stage must switch user"
    uid, _, gid = users[-1].partition(":")
    assert uid == str(UID) and gid in {"", str(UID)}, "numeric uid, so Kubernetes can check runAsNonRoot"
    entrypoint = [json.loads(rest) for kw, rest in final if kw == "ENTRYPOINT"]
    cmd = [json.loads(rest) for kw, rest in final if kw == "CMD"]
    assert entrypoint[-1] == ["crowdquant"]
    assert cmd[-1] == ["serve", "submissions"]
    assert {str(port) for port in [*GRPC_PORTS.values(), GATEWAY_PORT]} <= set(
        " ".join(rest for kw, rest in final if kw == "EXPOSE").split()
    )


def test_dockerignore_is_an_allow_list_without_secrets() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "everything is excluded unless allowed"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert {"pyproject.toml", "README.md", "proto", "crowdquant", "shared", "services"} <= allowed
    assert not allowed & {"secrets", ".env", ".data", ".venv", ".git", "tests"}


# ---------------------------------------------------------------------------------------------------
# docker-compose.yml


def test_compose_runs_the_whole_system() -> None:
    assert set(COMPOSE["services"]) == {"postgres", *APPS}
    assert COMPOSE["services"]["postgres"]["image"].startswith("postgres:16")
    assert set(_app_services()) == APPS, "every crowdquant process builds from the one Dockerfile"
    assert {svc["image"] for svc in _app_services().values()} == {"${CROWDQUANT_IMAGE:-crowdquant:local}"}


@pytest.mark.parametrize("name", sorted(APPS))
def test_compose_app_service_has_command_and_environment(name: str) -> None:
    service = COMPOSE["services"][name]
    command = service["command"]
    assert isinstance(command, list) and command, "exec form, arguments of the crowdquant entrypoint"
    expected = {"migrate": ["db", "upgrade"], "pipeline": ["pipeline", "run", "--round", "latest"]}
    assert command == expected.get(name, ["serve", name])
    assert isinstance(service["environment"], dict) and service["environment"]


@pytest.mark.parametrize("name", sorted(COMPOSE["services"]))
def test_compose_long_running_services_have_health_checks(name: str) -> None:
    service = COMPOSE["services"][name]
    assert service.get("environment"), "every service is configured through its environment"
    if name in ONE_SHOT:
        assert "healthcheck" not in service and service["restart"] == "no"
        return
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD" and len(test) > 1
    if name in GRPC_PORTS:
        port = GRPC_PORTS[name]
        assert test == ["CMD", "crowdquant", "health", "--addr", f"127.0.0.1:{port}"], "grpc.health.v1"
        assert service["environment"][f"CROWDQUANT_{name.upper()}_PORT"] == str(port)
        assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
    elif name == "gateway":
        assert f"http://127.0.0.1:{GATEWAY_PORT}/healthz" in " ".join(test)
        assert service["ports"] == [f"127.0.0.1:{GATEWAY_PORT}:{GATEWAY_PORT}"]
    else:
        assert "pg_isready" in test


def test_compose_ports_are_published_on_loopback_only() -> None:
    for name, service in COMPOSE["services"].items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", name
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_compose_start_order() -> None:
    services = COMPOSE["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in GRPC_PORTS:
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
    assert services["gateway"]["depends_on"]["leaderboard"] == {"condition": "service_healthy"}
    assert services["pipeline"]["profiles"] == ["pipeline"]
    assert services["pipeline"]["depends_on"] == {name: {"condition": "service_healthy"} for name in GRPC_PORTS}


@pytest.mark.parametrize("name", sorted(APPS))
def test_compose_app_containers_are_hardened(name: str) -> None:
    service = COMPOSE["services"][name]
    assert service["user"] == f"{UID}:{UID}"
    assert service["read_only"] is True and "/tmp" in service["tmpfs"]
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]


def test_compose_peer_addresses_name_the_services() -> None:
    env = COMPOSE["x-crowdquant-env"]
    for name, port in GRPC_PORTS.items():
        assert env[f"CROWDQUANT_{name.upper()}_ADDR"] == f"{name}:{port}"
        assert name in COMPOSE["services"]


def test_compose_has_no_secret_values_inline() -> None:
    text = COMPOSE_FILE.read_text()
    assert not PRIVATE_KEY.search(text)
    declared = COMPOSE["secrets"]
    for secret, source in declared.items():
        assert set(source) == {"file"} and source["file"] == f"./secrets/{secret}", secret
    for name, service in COMPOSE["services"].items():
        mounted = set(service.get("secrets", []))
        assert mounted <= set(declared), name
        for variable, value in service.get("environment", {}).items():
            assert not URL_WITH_PASSWORD.search(str(value)), f"{name}: {variable} carries a password"
            if SECRET_VARIABLE.search(variable):
                assert variable.endswith("_FILE"), f"{name}: {variable} must be read from a file"
                directory, _, secret = str(value).rpartition("/")
                assert directory == "/run/secrets" and secret in mounted, f"{name}: {variable}"


def test_compose_and_configmap_share_the_same_settings() -> None:
    assert set(COMPOSE["x-crowdquant-env"]) == set(_docs("ConfigMap")[CONFIG_NAME]["data"])


# ---------------------------------------------------------------------------------------------------
# k8s/: schema


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, NEWEST_KUBERNETES])
@pytest.mark.parametrize(("file", "doc"), MANIFESTS, ids=MANIFEST_IDS)
def test_manifest_validates_against_kubernetes_schema(file: str, doc: dict[str, Any], version: str) -> None:
    problem = None
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        problem = f"at {'.'.join(str(part) for part in error.path)}: {error.message}"
    assert problem is None, f"{file}: {doc['kind']}/{doc['metadata']['name']} {problem}"


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == NAMESPACE
    assert sorted(kustomization["resources"]) == sorted(p.name for p in _manifest_files())
    assert [image["name"] for image in kustomization["images"]] == [IMAGE]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed")
def test_kustomization_builds() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S_DIR)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert len([doc for doc in yaml.safe_load_all(result.stdout) if doc]) == len(MANIFESTS)


@pytest.mark.parametrize(("file", "doc"), MANIFESTS, ids=MANIFEST_IDS)
def test_manifest_lives_in_the_crowdquant_namespace(file: str, doc: dict[str, Any]) -> None:
    if doc["kind"] == "Namespace":
        assert doc["metadata"]["name"] == NAMESPACE
        assert doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    else:
        assert doc["metadata"]["namespace"] == NAMESPACE, file


# ---------------------------------------------------------------------------------------------------
# k8s/: workloads


def test_every_app_has_a_pod_template_and_service_account() -> None:
    templates = dict(_pod_templates())
    assert set(templates) == APPS
    accounts = _docs("ServiceAccount")
    for app, template in templates.items():
        spec = template["spec"]
        assert spec["serviceAccountName"] == app and app in accounts
        assert accounts[app]["automountServiceAccountToken"] is False
        assert spec["automountServiceAccountToken"] is False, "no pod talks to the Kubernetes API"


@pytest.mark.parametrize("app", sorted(APPS))
def test_pods_are_non_root_read_only_and_bounded(app: str) -> None:
    spec = dict(_pod_templates())[app]["spec"]
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] == UID
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    for container in spec["containers"]:
        assert container["image"] == IMAGE, "one image; kustomization.yaml pins the release"
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{app}: {bound}"
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], "the only scratch space on a read-only root"
        assert container["envFrom"] == [{"configMapRef": {"name": CONFIG_NAME}}]


@pytest.mark.parametrize("app", sorted([*GRPC_PORTS, "gateway"]))
def test_every_deployment_has_probes_and_a_service(app: str) -> None:
    deployment = _docs("Deployment")[app]
    template = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": app}
    assert template["metadata"]["labels"]["app"] == app
    (container,) = template["spec"]["containers"]
    assert container["args"] == ["serve", app]
    service = _docs("Service")[app]
    assert service["spec"]["selector"] == {"app": app}
    (service_port,) = service["spec"]["ports"]
    (container_port,) = container["ports"]
    if app in GRPC_PORTS:
        port = GRPC_PORTS[app]
        assert container_port == {"name": "grpc", "containerPort": port, "protocol": "TCP"}
        assert service_port["name"] == "grpc" and service_port["port"] == port
        assert container["readinessProbe"]["grpc"] == {"port": port}, "overall health: database included"
        # Liveness must not fail while only the database is down: a separate health status.
        for probe in ("livenessProbe", "startupProbe"):
            assert container[probe]["grpc"] == {"port": port, "service": "liveness"}, probe
    else:
        assert container_port == {"name": "http", "containerPort": GATEWAY_PORT, "protocol": "TCP"}
        assert service_port["name"] == "http" and service_port["port"] == GATEWAY_PORT
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    assert service_port["targetPort"] == container_port["name"]


def test_configmap_peer_addresses_name_the_services() -> None:
    data = _docs("ConfigMap")[CONFIG_NAME]["data"]
    services = _docs("Service")
    for name, port in GRPC_PORTS.items():
        assert data[f"CROWDQUANT_{name.upper()}_ADDR"] == f"{name}:{port}"
        assert data[f"CROWDQUANT_{name.upper()}_PORT"] == str(port)
        assert services[name]["spec"]["ports"][0]["port"] == port
    assert data["CROWDQUANT_GATEWAY_PORT"] == str(GATEWAY_PORT)
    assert not [key for key in data if SECRET_VARIABLE.search(key)], "secrets belong in the Secret"


def test_payouts_is_a_single_writer() -> None:
    spec = _docs("Deployment")["payouts"]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert "payouts" not in _docs("HorizontalPodAutoscaler")
    assert "payouts" not in _docs("PodDisruptionBudget")


@pytest.mark.parametrize("app", sorted(STATELESS))
def test_stateless_services_autoscale_within_a_disruption_budget(app: str) -> None:
    deployment = _docs("Deployment")[app]
    assert "replicas" not in deployment["spec"], "the HorizontalPodAutoscaler owns the replica count"
    hpa = _docs("HorizontalPodAutoscaler")[app]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": app}
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    pdb = _docs("PodDisruptionBudget")[app]
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    assert pdb["spec"]["maxUnavailable"] == 1


def test_migration_job_and_pipeline_cronjob() -> None:
    templates = dict(_pod_templates())
    (migrate,) = templates["migrate"]["spec"]["containers"]
    assert migrate["args"] == ["db", "upgrade"]
    (pipeline,) = templates["pipeline"]["spec"]["containers"]
    assert pipeline["args"] == ["pipeline", "run", "--round", "latest"]
    for app in ONE_SHOT:
        assert templates[app]["spec"]["restartPolicy"] == "Never"
    cronjob = _docs("CronJob")["pipeline"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid", "never two pipeline passes at once"
    assert "migrate" in _docs("Job")


def test_ingresses_reach_only_public_services() -> None:
    ingresses = _docs("Ingress")
    backends = {
        path["backend"]["service"]["name"]
        for ingress in ingresses.values()
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == PUBLIC
    gateway_paths = [path for rule in ingresses["gateway"]["spec"]["rules"] for path in rule["http"]["paths"]]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in gateway_paths] == [("/", "gateway")]


# ---------------------------------------------------------------------------------------------------
# k8s/: secrets


def test_no_secret_manifests() -> None:
    assert not [file for file, doc in MANIFESTS if doc["kind"] == "Secret"], "create Secrets from files"
    for path in K8S_DIR.iterdir():
        assert not PRIVATE_KEY.search(path.read_text()), path.name
        assert not URL_WITH_PASSWORD.search(path.read_text()), path.name


def test_secret_references_use_the_two_secrets_and_the_compose_secret_names() -> None:
    names: set[str] = set()
    keys: set[str] = set()
    for _, doc in MANIFESTS:
        for node in _walk(doc):
            if "secretKeyRef" in node:
                names.add(node["secretKeyRef"]["name"])
                keys.add(node["secretKeyRef"]["key"])
                if node["secretKeyRef"]["name"] == MIGRATION_SECRET_NAME:
                    assert node["secretKeyRef"]["key"] == "migration_database_url"
            if "secretRef" in node:
                names.add(node["secretRef"]["name"])
            if "secret" in node and isinstance(node["secret"], dict):
                names.add(node["secret"].get("secretName") or node["secret"].get("name"))
    assert names == {SECRET_NAME, MIGRATION_SECRET_NAME}
    # One folder of secret files serves compose and the cluster (k8s/README.md); postgres_password
    # is compose's own database server.
    assert keys == set(COMPOSE["secrets"]) - {"postgres_password"}
    tls = {tls["secretName"] for ingress in _docs("Ingress").values() for tls in ingress["spec"]["tls"]}
    assert tls == {TLS_SECRET_NAME}


@pytest.mark.parametrize("app", sorted(APPS))
def test_each_pod_gets_only_its_secrets(app: str) -> None:
    expected = {
        "submissions": {"DATABASE_URL", "CROWDQUANT_SERVICE_API_KEY", "CROWDQUANT_RECEIPT_SIGNING_KEY"},
        "scoring": {"DATABASE_URL", "CROWDQUANT_SERVICE_API_KEY"},
        "leaderboard": {"DATABASE_URL", "CROWDQUANT_SERVICE_API_KEY"},
        "payouts": {"DATABASE_URL", "CROWDQUANT_SERVICE_API_KEY", "CROWDQUANT_WALLET_SECRET"},
        "gateway": set(),  # anonymous to the leaderboard: no key, no database
        "migrate": {"CROWDQUANT_MIGRATION_DATABASE_URL"},
        "pipeline": {"CROWDQUANT_OPERATOR_API_KEY"},
    }[app]
    (container,) = dict(_pod_templates())[app]["spec"]["containers"]
    from_secret = {env["name"] for env in container.get("env", []) if "secretKeyRef" in env.get("valueFrom", {})}
    assert from_secret == expected
    compose_files = [name for name in COMPOSE["services"][app]["environment"] if name.endswith("_FILE")]
    assert {name.removesuffix("_FILE") for name in compose_files} == expected
    # each service calls its peers with its own key (its own identity), never a shared one
    if "CROWDQUANT_SERVICE_API_KEY" in expected:
        (ref,) = [
            env["valueFrom"]["secretKeyRef"]["key"]
            for env in container["env"]
            if env["name"] == "CROWDQUANT_SERVICE_API_KEY"
        ]
        assert ref == f"{app}_api_key"
        environment = COMPOSE["services"][app]["environment"]
        assert environment["CROWDQUANT_SERVICE_API_KEY_FILE"] == f"/run/secrets/{app}_api_key"


# ---------------------------------------------------------------------------------------------------
# k8s/: network policies. A small evaluator of the policies for this namespace's pods, which are
# told apart by their `app` label; the ingress controller is the only peer outside the namespace.

CONTROLLER = "ingress-controller"


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        matched = {
            "In": present and labels[key] in values,
            "NotIn": not present or labels[key] not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not matched:
            return False
    return True


def _peer_matches(peer: dict[str, Any], other: str) -> bool:
    if "ipBlock" in peer:
        return False
    if other == CONTROLLER:
        namespace = peer.get("namespaceSelector")
        return (
            namespace is not None
            and _selects(namespace, {"kubernetes.io/metadata.name": "ingress-nginx"})
            and _selects(peer.get("podSelector", {}), {"app.kubernetes.io/name": "ingress-nginx"})
        )
    if "namespaceSelector" in peer:
        return False
    return _selects(peer["podSelector"], {"app": other})


def _port_matches(rule: dict[str, Any], port: int) -> bool:
    if "ports" not in rule:
        return True
    return any(p["port"] <= port <= p.get("endPort", p["port"]) for p in rule["ports"])


def _allowed(direction: str, app: str, other: str, port: int) -> bool:
    """Whether some policy selecting `app` lets traffic in from / out to `other` on `port`."""
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in _docs("NetworkPolicy").values():
        spec = policy["spec"]
        if direction not in spec["policyTypes"] or not _selects(spec["podSelector"], {"app": app}):
            continue
        for rule in spec.get(rules_key, []):
            peers = rule.get(peers_key)
            peer_allowed = peers is None or any(_peer_matches(peer, other) for peer in peers)
            if peer_allowed and _port_matches(rule, port):
                return True
    return False


def test_network_policies_deny_by_default() -> None:
    default = _docs("NetworkPolicy")["default-deny"]["spec"]
    assert default == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize("callee", sorted(CALLERS))
def test_network_policies_let_exactly_the_callers_in(callee: str) -> None:
    port = GRPC_PORTS[callee]
    for caller in APPS - {callee}:
        allowed = _allowed("Ingress", callee, caller, port) and _allowed("Egress", caller, callee, port)
        assert allowed == (caller in CALLERS[callee]), f"{caller} -> {callee}"
    assert _allowed("Ingress", callee, CONTROLLER, port) == (callee in PUBLIC)


def test_network_policies_make_only_the_gateway_public_over_http() -> None:
    assert _allowed("Ingress", "gateway", CONTROLLER, GATEWAY_PORT)
    for app in APPS - {"gateway"}:
        assert not _allowed("Ingress", app, CONTROLLER, GATEWAY_PORT), app
    for app in APPS - {"gateway"}:
        assert not _allowed("Ingress", "gateway", app, GATEWAY_PORT), app


def test_network_policies_limit_egress_outside_the_namespace() -> None:
    """Only the database users reach PostgreSQL; only payouts reaches anything else outside."""
    outside: dict[str, set[int]] = {app: set() for app in APPS}
    for policy in _docs("NetworkPolicy").values():
        spec = policy["spec"]
        for rule in spec.get("egress", []):
            if not any("ipBlock" in peer or "namespaceSelector" in peer for peer in rule["to"]):
                continue
            ports = {p["port"] for p in rule["ports"]}
            for app in APPS:
                if _selects(spec["podSelector"], {"app": app}):
                    outside[app] |= ports
    dns = {53}
    for app in APPS:
        expected = dns | ({5432} if app in DATABASE_USERS else set())
        if app == "payouts":
            assert outside[app] - expected == {8332, 18332, 18443, 38332, 443}
        else:
            assert outside[app] == expected, app


# ---------------------------------------------------------------------------------------------------
# Database roles: each service its own login role, the migration its own, the superuser nowhere


@pytest.mark.parametrize("app", sorted(DATABASE_USERS))
def test_each_database_user_gets_only_its_own_role_url(app: str) -> None:
    own = "migration_database_url" if app == "migrate" else f"{app}_database_url"
    (container,) = dict(_pod_templates())[app]["spec"]["containers"]
    database_keys = {
        env["valueFrom"]["secretKeyRef"]["key"]
        for env in container["env"]
        if "secretKeyRef" in env.get("valueFrom", {})
        and env["valueFrom"]["secretKeyRef"]["key"].endswith("database_url")
    }
    assert database_keys == {own}
    mounted = {s for s in COMPOSE["services"][app]["secrets"] if s.endswith("database_url") or "postgres" in s}
    assert mounted == {own}, "no service holds another role's URL or the superuser's password"


def test_compose_postgres_makes_the_roles_on_first_start() -> None:
    postgres = COMPOSE["services"]["postgres"]
    script = "./scripts/postgres-init-roles.sh:/docker-entrypoint-initdb.d/10-crowdquant-roles.sh:ro"
    assert script in postgres["volumes"]
    assert (REPO / "scripts" / "postgres-init-roles.sh").is_file()
    urls = {s for s in COMPOSE["secrets"] if s.endswith("_database_url")}
    assert urls == {"migration_database_url", *(f"{name}_database_url" for name in GRPC_PORTS)}
    assert urls <= set(postgres["secrets"]), "the init script reads each role's password from its URL"
