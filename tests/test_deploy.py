"""Checks of everything under deploy/: image recipe, kustomize base and overlay, Argo wiring.

The manifests are rendered with the real `kubectl kustomize`; probe paths are checked against the
routes of the real FastAPI app; the probe script is run against a real local HTTP server.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCS = ROOT / "docs" / "deploy.md"

KUSTOMIZATIONS = {
    "base": DEPLOY,
    "postgres": DEPLOY / "overlays" / "postgres",
    "argo-demo": DEPLOY / "argo",
}
SERVICE_VARIANTS = ["base", "postgres"]

NAMESPACE = "argo-rollouts"
SECRET_NAME = "selfheal-secrets"
SECRET_KEYS = ["GOOGLE_API_KEY", "GITHUB_TOKEN", "JULES_API_KEY", "SELFHEAL_TOKEN"]
READ_VERBS = {"get", "list", "watch"}
# Subresources that execute in, attach to or tunnel into workloads: never granted.
FORBIDDEN_RESOURCES = {"secrets", "pods/exec", "pods/attach", "pods/portforward", "pods/proxy",
                       "services/proxy", "nodes/proxy", "serviceaccounts/token"}
REQUIRED_READS = {
    ("", "pods"), ("", "pods/log"), ("", "events"), ("", "services"), ("", "configmaps"),
    ("apps", "replicasets"), ("apps", "deployments"),
    ("argoproj.io", "rollouts"), ("argoproj.io", "analysisruns"), ("argoproj.io", "analysistemplates"),
    ("metrics.k8s.io", "pods"),
}
PLUGIN_NAME = "argoproj-labs/metric-ai"
# Configuration fields of the plugin (aiConfig in internal/plugin/plugin.go of
# argoproj-labs/rollouts-plugin-metric-ai, unchanged from v0.0.1 to the newest commit).
PLUGIN_FIELDS = {"agentUrl", "stableLabel", "canaryLabel", "extraPrompt", "githubUrl", "baseBranch"}
PLUGIN_RELEASE_URL = re.compile(
    r"^https://github\.com/argoproj-labs/rollouts-plugin-metric-ai/releases/download/"
    r"v\d+\.\d+\.\d+/rollouts-plugin-metric-ai-linux-amd64$"
)


# --------------------------------------------------------------------------------------------
# helpers


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not on PATH; the deploy tests render manifests with `kubectl kustomize`")
    return path


@functools.cache
def rendered(name: str) -> tuple[dict, ...]:
    proc = subprocess.run([kubectl(), "kustomize", str(KUSTOMIZATIONS[name])],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"kubectl kustomize {KUSTOMIZATIONS[name]} failed:\n{proc.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc is not None)


def load_yaml(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def by_kind(docs, kind: str) -> list[dict]:
    return [doc for doc in docs if doc.get("kind") == kind]


def one(docs, kind: str, name: str | None = None) -> dict:
    found = [doc for doc in by_kind(docs, kind) if name is None or doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]


def deployment(name: str) -> dict:
    return one(rendered(name), "Deployment", "selfheal")


def container(name: str) -> dict:
    containers = deployment(name)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def config_env(name: str) -> dict[str, str]:
    """The variables the container gets from its ConfigMaps (as rendered)."""
    docs = rendered(name)
    values: dict[str, str] = {}
    for source in container(name).get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            values.update(one(docs, "ConfigMap", ref["name"]).get("data", {}))
    return values


def container_port(ctr: dict, port: int | str) -> int:
    """Resolve a probe/Service port (number or name) to the container's port number."""
    for item in ctr.get("ports", []):
        if port in (item["containerPort"], item.get("name")):
            return item["containerPort"]
    pytest.fail(f"port {port!r} is not a port of container {ctr['name']}")


def parse_duration(value: str | int) -> float:
    """Seconds of a Go/Argo duration such as 90s, 2m, 1h30m, or a bare number of seconds."""
    if isinstance(value, int):
        return float(value)
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"unparseable duration {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def selector_labels(selector: str) -> dict[str, str]:
    """Equality-based label selector 'a=b,c=d' as a dict."""
    pairs = {}
    for term in selector.split(","):
        key, sep, value = term.strip().partition("=")
        assert sep and key and "!" not in key, f"expected an equality selector, got {selector!r}"
        pairs[key.strip()] = value.lstrip("=").strip()
    return pairs


@functools.cache
def dockerfile() -> list[tuple[int, str, str]]:
    """(stage index, INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[int, str, str]] = []
    stage = -1
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        instruction, _, arguments = full.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stage += 1
        instructions.append((stage, instruction, arguments.strip()))
    return instructions


def stage_instructions(stage: int) -> list[tuple[str, str]]:
    return [(ins, args) for st, ins, args in dockerfile() if st == stage]


def final_stage() -> int:
    return max(st for st, _, _ in dockerfile())


def exec_form(arguments: str) -> list[str]:
    """The JSON exec form of CMD/ENTRYPOINT/HEALTHCHECK CMD."""
    parsed = yaml.safe_load(arguments)
    assert isinstance(parsed, list), f"expected exec (JSON array) form, got {arguments!r}"
    return [str(item) for item in parsed]


def docs_code_lines() -> set[str]:
    lines, inside = set(), False
    for line in DOCS.read_text().splitlines():
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if inside:
            lines.add(line.strip())
    return lines


@functools.cache
def app_routes() -> dict[str, set[str]]:
    """path -> HTTP methods of the FastAPI app that `selfheal serve` runs."""
    from selfheal.config import Settings
    from selfheal.service.app import create_app

    state_dir = Path(tempfile.mkdtemp(prefix="selfheal-deploy-test-"))
    app = create_app(Settings(token=None, database_url=None, state_dir=state_dir))
    routes: dict[str, set[str]] = {}
    for route in app.routes:
        path = getattr(route, "path", None)
        if path is not None:
            routes.setdefault(path, set()).update(getattr(route, "methods", None) or set())
    return routes


def probe_targets(ctr: dict) -> list[tuple[str, str, int]]:
    """(probe kind, path, port number) of every probe of the container."""
    targets = []
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = ctr.get(kind)
        assert probe, f"container has no {kind}"
        if "httpGet" in probe:
            targets.append((kind, probe["httpGet"]["path"], container_port(ctr, probe["httpGet"]["port"])))
        elif "exec" in probe:
            path, port = probe_script_target(probe["exec"]["command"])
            targets.append((kind, path, port))
        else:
            pytest.fail(f"{kind} must be httpGet or the image's probe script, got {probe}")
    return targets


def probe_script_target(command: list[str]) -> tuple[str, int]:
    """Path and port that deploy/probe.py is told to hit by a command line."""
    args = list(command)
    script_at = next((i for i, a in enumerate(args) if a.endswith("/probe.py")), None)
    assert script_at is not None, f"exec probe must run the image's probe.py: {command}"
    rest = args[script_at + 1:]
    port = 8080
    positional = []
    i = 0
    while i < len(rest):
        if rest[i] == "--port":
            port = int(rest[i + 1])
            i += 2
        elif rest[i] in ("--host", "--timeout"):
            i += 2
        else:
            positional.append(rest[i])
            i += 1
    assert len(positional) == 1, f"probe.py takes exactly one path: {command}"
    return positional[0], port


def dockerfile_copies(stage: int | None = None) -> list[tuple[list[str], str, bool]]:
    """(sources, destination, from another stage) of every COPY (of one stage, if given)."""
    copies = []
    for st, instruction, arguments in dockerfile():
        if instruction != "COPY" or (stage is not None and st != stage):
            continue
        words = shlex.split(arguments)
        from_stage = any(w.startswith("--from=") for w in words)
        words = [w for w in words if not w.startswith("--")]
        copies.append((words[:-1], words[-1], from_stage))
    return copies


# --------------------------------------------------------------------------------------------
# rendering


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_kustomization_renders_and_every_document_parses(name):
    docs = rendered(name)
    assert docs, f"{name} rendered nothing"
    for doc in docs:
        assert isinstance(doc, dict)
        assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), doc


def test_every_yaml_file_under_deploy_parses():
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert files
    for path in files:
        docs = load_yaml(path)
        assert docs, f"{path} is empty"


def api_roundtrip(doc: dict) -> dict | None:
    """`doc` parsed into the official Kubernetes client's model of its kind and written back.

    Unknown or misspelt fields are dropped by the models and wrong types are rejected, so a
    round trip that changes nothing means the object matches the API schema. None for kinds the
    client has no model of (custom resources).
    """
    from kubernetes import client

    model = doc["apiVersion"].split("/")[-1].capitalize() + doc["kind"]
    if not hasattr(client, model):
        return None
    api = client.ApiClient()
    text = json.dumps(doc)
    try:
        obj = api.deserialize(text, model, "application/json")
    except TypeError:  # kubernetes < 37: deserialize(response, response_type)
        obj = api.deserialize(type("Response", (), {"data": text})(), model)
    return api.sanitize_for_serialization(obj)


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_core_objects_match_the_kubernetes_api_schema(name):
    extra = {"argo-demo": ["argo/controller-rbac.yaml", "argo/argo-rollouts-config.yaml",
                           "argo/agent-secret.example.yaml"],
             "base": ["secret.example.yaml"]}.get(name, [])
    docs = list(rendered(name)) + [doc for path in extra for doc in load_yaml(DEPLOY / path)]
    checked = 0
    for doc in docs:
        back = api_roundtrip(doc)
        if back is None:
            assert doc["apiVersion"].startswith("argoproj.io/"), f"no schema for {doc['apiVersion']} {doc['kind']}"
            continue
        checked += 1
        assert back == doc, f"{doc['kind']}/{doc['metadata']['name']} has fields the API does not know"
    assert checked


@pytest.mark.parametrize("name", SERVICE_VARIANTS)
def test_service_objects_live_in_the_argo_rollouts_namespace(name):
    docs = rendered(name)
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "Namespace"}
    for doc in docs:
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{doc['kind']}/{doc['metadata']['name']}"
    # The namespace belongs to the Argo Rollouts installation: `kubectl delete -k` must not delete it.
    assert not by_kind(docs, "Namespace")
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
            "NetworkPolicy", "ConfigMap"} <= kinds


def test_base_runs_one_replica():
    assert deployment("base")["spec"]["replicas"] == 1


# --------------------------------------------------------------------------------------------
# RBAC


def assert_read_only(rules: list[dict], where: str) -> None:
    for rule in rules:
        assert not rule.get("nonResourceURLs"), f"{where}: nonResourceURLs granted"
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(field, []), f"{where}: wildcard in {field}: {rule}"
        assert set(rule["verbs"]) <= READ_VERBS, f"{where}: write verb in {rule}"
        for resource in rule["resources"]:
            assert resource not in FORBIDDEN_RESOURCES, f"{where}: grants {resource}"
            assert "*" not in resource, f"{where}: wildcard resource {resource}"


@pytest.mark.parametrize("name", SERVICE_VARIANTS)
def test_rbac_is_read_only_and_covers_what_the_analysis_reads(name):
    docs = rendered(name)
    roles = by_kind(docs, "ClusterRole") + by_kind(docs, "Role")
    assert roles
    granted = set()
    for role in roles:
        assert_read_only(role["rules"], f"{role['kind']}/{role['metadata']['name']}")
        for rule in role["rules"]:
            granted |= {(group, resource) for group in rule["apiGroups"] for resource in rule["resources"]
                        if READ_VERBS <= set(rule["verbs"])}
    assert REQUIRED_READS <= granted, f"missing read access: {sorted(REQUIRED_READS - granted)}"

    account = deployment(name)["spec"]["template"]["spec"]["serviceAccountName"]
    one(docs, "ServiceAccount", account)
    role_names = {role["metadata"]["name"] for role in roles}
    bindings = by_kind(docs, "ClusterRoleBinding") + by_kind(docs, "RoleBinding")
    assert bindings
    for binding in bindings:
        assert binding["roleRef"]["name"] in role_names, "a binding refers to a role this package does not define"
        for subject in binding["subjects"]:
            assert subject == {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}


def test_controller_log_access_for_the_plugin_is_read_only():
    docs = load_yaml(DEPLOY / "argo" / "controller-rbac.yaml")
    role = one(docs, "ClusterRole")
    assert_read_only(role["rules"], "controller-rbac")
    assert any("pods/log" in rule["resources"] and "get" in rule["verbs"] for rule in role["rules"])
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "argo-rollouts", "namespace": "argo-rollouts"}]


# --------------------------------------------------------------------------------------------
# pod hardening, configuration and secrets


@pytest.mark.parametrize("name", SERVICE_VARIANTS)
def test_pod_runs_non_root_read_only_without_capabilities(name):
    pod = deployment(name)["spec"]["template"]["spec"]
    ctr = container(name)
    pod_sc, sc = pod.get("securityContext", {}), ctr.get("securityContext", {})
    assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True
    user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    assert isinstance(user, int) and user > 0
    assert sc.get("readOnlyRootFilesystem") is True
    assert sc.get("allowPrivilegeEscalation") is False
    assert sc.get("privileged", False) is False
    assert "ALL" in sc.get("capabilities", {}).get("drop", [])
    assert not sc.get("capabilities", {}).get("add")
    seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
    assert seccomp.get("type") == "RuntimeDefault"
    assert pod.get("automountServiceAccountToken") is True, "the service reads the Kubernetes API"
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(ctr.get("resources", {}).get(kind, {})), f"missing resource {kind}"
    # The image's numeric user is the one Kubernetes runs.
    users = [args for ins, args in stage_instructions(final_stage()) if ins == "USER"]
    assert users and users[-1].split(":")[0] == str(user)


@pytest.mark.parametrize("name", SERVICE_VARIANTS)
def test_state_dir_and_tmp_are_writable_volumes(name):
    pod = deployment(name)["spec"]["template"]["spec"]
    empty_dirs = {vol["name"] for vol in pod["volumes"] if "emptyDir" in vol}
    mounts = {m["mountPath"]: m["name"] for m in container(name)["volumeMounts"]}
    state_dir = config_env(name).get("SELFHEAL_STATE_DIR")
    assert state_dir, "SELFHEAL_STATE_DIR must be set: the default under $HOME is on the read-only root"
    assert mounts.get(state_dir) in empty_dirs
    assert mounts.get("/tmp") in empty_dirs


@pytest.mark.parametrize("name", SERVICE_VARIANTS)
def test_env_comes_from_the_configmap_and_optional_secret_keys(name):
    docs = rendered(name)
    ctr = container(name)
    refs = [src["configMapRef"]["name"] for src in ctr.get("envFrom", []) if "configMapRef" in src]
    assert refs
    for ref in refs:
        one(docs, "ConfigMap", ref)
    env = {item["name"]: item for item in ctr.get("env", [])}
    for key in SECRET_KEYS:
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": SECRET_NAME, "key": key, "optional": True}, ref
    # Settings must be valid for the app: every SELFHEAL_ variable of the ConfigMap parses.
    from selfheal.config import Settings

    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("SELFHEAL_")]:
            mp.delenv(key)
        for key, value in config_env(name).items():
            mp.setenv(key, value)
        settings = Settings()
    assert str(settings.state_dir) == config_env(name)["SELFHEAL_STATE_DIR"]
    assert settings.repo_allowlist == [], "remediation must be off until repositories are allowed"
    assert settings.deadline_seconds < 300, "the plugin's client gives up after 5 minutes"


def test_secret_template_is_not_part_of_any_kustomization():
    docs = load_yaml(DEPLOY / "secret.example.yaml")
    secret = one(docs, "Secret", SECRET_NAME)
    assert secret["metadata"]["namespace"] == NAMESPACE
    assert set(SECRET_KEYS) <= set(secret["stringData"])
    assert "SELFHEAL_DATABASE_URL" in (DEPLOY / "secret.example.yaml").read_text()
    for kustomization in DEPLOY.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        referenced = list(spec.get("resources", [])) + list(spec.get("components", []))
        referenced += [patch["path"] for patch in spec.get("patches", []) if "path" in patch]
        for generator in spec.get("configMapGenerator", []) + spec.get("secretGenerator", []):
            referenced += generator.get("files", []) + generator.get("envs", [])
        for ref in referenced:
            assert "secret.example" not in ref and "agent-secret" not in ref, f"{kustomization}: {ref}"
        assert not spec.get("secretGenerator"), f"{kustomization} generates a Secret"
    for name in KUSTOMIZATIONS:
        assert not by_kind(rendered(name), "Secret"), f"{name} renders a Secret"


# --------------------------------------------------------------------------------------------
# probes, ports and the app's routes


@pytest.mark.parametrize("name", SERVICE_VARIANTS)
def test_probes_hit_real_routes_of_selfheal_serve_on_the_served_port(name):
    routes = app_routes()
    ctr = container(name)
    served_port = container_port(ctr, "http")
    args = ctr["args"]
    assert args[args.index("--port") + 1] == str(served_port), "serve --port and containerPort differ"
    kinds = set()
    for kind, path, port in probe_targets(ctr):
        kinds.add(kind)
        assert path in routes and "GET" in routes[path], f"{kind} path {path} is not a GET route of the app"
        assert port == served_port, f"{kind} probes port {port}, the server listens on {served_port}"
    assert {path for kind, path, _ in probe_targets(ctr) if kind == "livenessProbe"} == {"/healthz"}
    assert {path for kind, path, _ in probe_targets(ctr) if kind == "readinessProbe"} == {"/readyz"}

    service = one(rendered(name), "Service", "selfheal")
    pod_labels = deployment(name)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (svc_port,) = service["spec"]["ports"]
    assert svc_port["port"] == 8080
    assert container_port(ctr, svc_port["targetPort"]) == served_port


def test_readiness_probe_script_is_in_the_image():
    ctr = container("base")
    command = ctr["readinessProbe"]["exec"]["command"]
    copies = {dest: sources for sources, dest, _ in dockerfile_copies()}
    script = next(a for a in command if a.endswith("/probe.py"))
    assert copies.get(script) == ["deploy/probe.py"], "the probe script the Deployment runs is not copied there"
    interpreter = command[0]
    venv_runs = [args for ins, args in stage_instructions(0) if ins == "RUN" and "-m venv" in args]
    assert venv_runs and interpreter == venv_runs[0].split("-m venv", 1)[1].split()[0] + "/bin/python"


def test_dockerfile_healthcheck_uses_python_on_healthz():
    routes = app_routes()
    checks = [args for ins, args in stage_instructions(final_stage()) if ins == "HEALTHCHECK"]
    assert len(checks) == 1
    _options, _, command = checks[0].partition("CMD ")
    argv = exec_form(command)
    assert argv[0].endswith("python")
    path, port = probe_script_target(argv)
    assert path == "/healthz" and path in routes
    assert port == 8080


class _Handler(http.server.BaseHTTPRequestHandler):
    token = "s3cret"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/healthz":
            self._answer(200, b'{"status":"ok"}')
        elif self.path == "/readyz":
            if self.headers.get("Authorization") == f"Bearer {self.token}":
                self._answer(200, b'{"ready":true}')
            else:
                self._answer(401, b'{"error":"authentication required"}')
        else:
            self._answer(503, b'{"ready":false,"checks":{"kubernetes":"unavailable"}}')

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def local_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def run_probe(port: int, path: str, token: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SELFHEAL_TOKEN"}
    env["HTTP_PROXY"] = env["http_proxy"] = "http://127.0.0.1:9"  # must be ignored
    if token is not None:
        env["SELFHEAL_TOKEN"] = token
    return subprocess.run([sys.executable, str(DEPLOY / "probe.py"), "--port", str(port), "--timeout", "5", path],
                          env=env, capture_output=True, text=True, timeout=30)


def test_probe_script_sends_the_token_and_reports_failures(local_server):
    assert run_probe(local_server, "/healthz", None).returncode == 0
    assert run_probe(local_server, "/readyz", "s3cret").returncode == 0
    denied = run_probe(local_server, "/readyz", None)
    assert denied.returncode == 1 and "401" in denied.stderr
    assert run_probe(local_server, "/readyz", "wrong").returncode == 1
    unready = run_probe(local_server, "/not-ready", None)
    assert unready.returncode == 1 and "503" in unready.stderr and "kubernetes" in unready.stderr

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    refused = run_probe(closed_port, "/healthz", None)
    assert refused.returncode == 1 and refused.stderr.strip()


# --------------------------------------------------------------------------------------------
# network policy


@pytest.mark.parametrize("name", SERVICE_VARIANTS)
def test_network_policy_admits_only_the_rollouts_controller_on_8080(name):
    policy = one(rendered(name), "NetworkPolicy")
    spec = policy["spec"]
    pod_labels = deployment(name)["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert spec["policyTypes"] == ["Ingress"], "egress stays open (model API, GitHub, Jules, Prometheus)"
    assert spec["ingress"]
    served_port = container_port(container(name), "http")
    for rule in spec["ingress"]:
        assert rule["from"]
        for peer in rule["from"]:
            assert "ipBlock" not in peer
            assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "argo-rollouts"}
            assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "argo-rollouts"}
        assert rule["ports"] == [{"protocol": "TCP", "port": served_port}]


# --------------------------------------------------------------------------------------------
# postgres overlay


def test_postgres_overlay_runs_several_replicas_on_postgresql_with_a_pdb():
    docs = rendered("postgres")
    dep = deployment("postgres")
    replicas = dep["spec"]["replicas"]
    assert replicas > 1
    env = {item["name"]: item for item in container("postgres")["env"]}
    ref = env["SELFHEAL_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == SECRET_NAME and ref["key"] == "SELFHEAL_DATABASE_URL"
    assert not ref.get("optional"), "replicas must not start without the shared database"

    pdb = one(docs, "PodDisruptionBudget")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    if "minAvailable" in pdb["spec"]:
        assert 1 <= pdb["spec"]["minAvailable"] < replicas
    else:
        assert 1 <= pdb["spec"]["maxUnavailable"] < replicas

    pod = dep["spec"]["template"]["spec"]
    spread = pod.get("topologySpreadConstraints", [])
    anti = pod.get("affinity", {}).get("podAntiAffinity")
    assert spread or anti
    for constraint in spread:
        assert constraint["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    # The base stays single-replica and SQLite.
    assert "SELFHEAL_DATABASE_URL" not in {item["name"] for item in container("base")["env"]}


# --------------------------------------------------------------------------------------------
# image recipe


def test_dockerfile_is_multi_stage_slim_python_non_root():
    froms = [args for _, ins, args in dockerfile() if ins == "FROM"]
    assert len(froms) >= 2, "the runtime stage must not carry the build"
    args = {a.split("=", 1)[0].replace("ARG ", ""): a.split("=", 1)[1]
            for _, ins, a in dockerfile() if ins == "ARG" and "=" in a}
    bases = [args.get(f.split()[0].strip("${}"), f.split()[0]) for f in froms]
    for base in bases:
        assert re.fullmatch(r"python:3\.(1[1-9])-slim(-\w+)?", base), base
    final = stage_instructions(final_stage())
    users = [a for ins, a in final if ins == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]), "final USER must be numeric and not root"
    env_text = " ".join(a for ins, a in final if ins == "ENV")
    for variable in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"):
        assert variable in env_text
    assert ("EXPOSE", "8080") in final
    # Only the built environment and the probe reach the runtime stage; no installs happen there.
    assert not [a for ins, a in final if ins == "RUN" and "pip" in a]
    runtime_copies = {dest: (sources, from_stage) for sources, dest, from_stage in dockerfile_copies(final_stage())}
    assert runtime_copies == {"/opt/venv": (["/opt/venv"], True),
                              "/opt/selfheal/probe.py": (["deploy/probe.py"], False)}


def test_dockerfile_installs_runtime_dependencies_only():
    runs = [a for _, ins, a in dockerfile() if ins == "RUN"]
    installs = [a for a in runs if "pip install" in a]
    assert len(installs) == 1
    assert "[" not in installs[0], "no extras: the test extra pulls in pytest and Playwright"
    for word in ("pytest", "playwright", "-e ", "--editable"):
        assert word not in installs[0]


def test_install_command_is_identical_in_dockerfile_and_docs():
    (install,) = [a for _, ins, a in dockerfile() if ins == "RUN" and "pip install" in a]
    assert install in docs_code_lines(), (
        f"docs/deploy.md must show the Dockerfile's install step verbatim in a code block: {install!r}")


def test_dockerfile_copies_everything_pip_install_reads():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {pattern.rstrip("*").rstrip(".") for pattern in
                pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    context_sources = [src for sources, _, from_stage in dockerfile_copies() if not from_stage for src in sources]
    assert "pyproject.toml" in context_sources
    assert pyproject["project"]["readme"] in context_sources
    assert packages <= set(context_sources), f"not copied into the build: {sorted(packages - set(context_sources))}"
    for source in context_sources:
        assert (ROOT / source).exists(), f"COPY {source}: missing from the repository, `docker build` would fail"


def test_pip_install_picks_up_every_python_module_of_the_packages():
    """`pip install .` (not editable) installs only directories setuptools finds as packages;
    a module in a folder without __init__.py works from the checkout but is missing in the image."""
    from setuptools import find_packages

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    found = set(find_packages(where=str(ROOT), include=include))
    tops = {pattern.rstrip("*").rstrip(".") for pattern in include}
    missing = []
    for top in sorted(tops):
        for module in (ROOT / top).rglob("*.py"):
            rel = module.parent.relative_to(ROOT)
            if "__pycache__" in rel.parts:
                continue
            if ".".join(rel.parts) not in found:
                missing.append(str(module.relative_to(ROOT)))
    assert not missing, f"left out of the installed package (no __init__.py on the way): {missing}"


def test_dockerignore_excludes_local_state_but_not_the_build_inputs():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for required in (".git", ".venv", ".tools", "**/node_modules", "**/__pycache__", ".pytest_cache"):
        assert required in patterns, f".dockerignore lacks {required}"
    context_sources = [src for sources, _, from_stage in dockerfile_copies() if not from_stage for src in sources]
    for source in context_sources:
        for pattern in patterns:
            if pattern.startswith("!"):
                continue
            bare = pattern[3:] if pattern.startswith("**/") else pattern
            assert not fnmatch(source, pattern) and not fnmatch(source, bare), \
                f".dockerignore pattern {pattern!r} would drop {source} from the build context"


def test_entry_point_is_selfheal_serve_and_the_command_exists():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "selfheal" in scripts
    final = stage_instructions(final_stage())
    (entrypoint,) = [exec_form(a) for ins, a in final if ins == "ENTRYPOINT"]
    (cmd,) = [exec_form(a) for ins, a in final if ins == "CMD"]
    assert entrypoint + cmd == ["selfheal", "serve", "--host", "0.0.0.0", "--port", "8080"]
    for name in SERVICE_VARIANTS:
        ctr = container(name)
        assert not ctr.get("command"), "the Deployment keeps the image's entry point"
        assert ctr["args"] == cmd

    binary = Path(sys.executable).parent / "selfheal"
    if not binary.exists():
        binary = Path(shutil.which("selfheal") or "selfheal")
    proc = subprocess.run([str(binary), "serve", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--host" in proc.stdout and "--port" in proc.stdout


# --------------------------------------------------------------------------------------------
# Argo wiring


def test_plugin_is_registered_with_a_release_location():
    config = one(load_yaml(DEPLOY / "argo" / "argo-rollouts-config.yaml"), "ConfigMap", "argo-rollouts-config")
    assert config["metadata"]["namespace"] == "argo-rollouts"
    plugins = yaml.safe_load(config["data"]["metricProviderPlugins"])
    (entry,) = [p for p in plugins if p["name"] == PLUGIN_NAME]
    assert PLUGIN_RELEASE_URL.match(entry["location"]), entry["location"]


def analysis_template() -> dict:
    return one(rendered("argo-demo"), "AnalysisTemplate", "selfheal")


def test_analysis_template_uses_the_plugin_fields_and_safe_limits():
    template = analysis_template()
    arg_names = {arg["name"] for arg in template["spec"]["args"]}
    (metric,) = template["spec"]["metrics"]
    config = metric["provider"]["plugin"][PLUGIN_NAME]
    assert set(config) <= PLUGIN_FIELDS, f"unknown plugin fields: {set(config) - PLUGIN_FIELDS}"
    assert {"agentUrl", "stableLabel", "canaryLabel"} <= set(config)
    placeholders = set(re.findall(r"\{\{\s*args\.([\w-]+)\s*\}\}", yaml.safe_dump(template["spec"]["metrics"])))
    assert placeholders <= arg_names, f"undefined args: {placeholders - arg_names}"
    # agentUrl carries the token, so it comes from a Secret, never from the template text.
    agent_arg = re.fullmatch(r"\{\{\s*args\.([\w-]+)\s*\}\}", config["agentUrl"]).group(1)
    (agent,) = [arg for arg in template["spec"]["args"] if arg["name"] == agent_arg]
    assert "secretKeyRef" in agent.get("valueFrom", {})

    assert "successCondition" not in metric and "failureCondition" not in metric, \
        "the plugin sets the phase itself; conditions would be ignored"
    assert metric["failureLimit"] == 0
    assert 0 < metric["consecutiveErrorLimit"] <= 5
    count = int(metric.get("count", 0))
    assert count >= 1, "an unbounded metric in a step would never let the step finish"
    if count > 1:
        ttl = float(config_env("base")["SELFHEAL_CACHE_TTL_SECONDS"])
        assert parse_duration(metric["interval"]) > ttl, "repeats inside the record TTL add no evidence"


def test_agent_secret_example_matches_the_template_and_the_service():
    template = analysis_template()
    secret = one(load_yaml(DEPLOY / "argo" / "agent-secret.example.yaml"), "Secret")
    ref = next(arg["valueFrom"]["secretKeyRef"] for arg in template["spec"]["args"]
               if "secretKeyRef" in arg.get("valueFrom", {}))
    assert secret["metadata"]["name"] == ref["name"]
    assert secret["metadata"]["namespace"] == template["metadata"]["namespace"]
    url = urlsplit(secret["stringData"][ref["key"]])
    assert url.scheme == "http" and url.username and url.password, "the token travels as the Basic-auth password"
    service = one(rendered("base"), "Service", "selfheal")
    assert url.hostname == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    assert url.port == service["spec"]["ports"][0]["port"]


def test_rollout_steps_reference_the_template_consistently_and_give_it_time():
    docs = rendered("argo-demo")
    rollout = one(docs, "Rollout", "rollouts-demo")
    templates = {t["metadata"]["name"]: t for t in by_kind(docs, "AnalysisTemplate")}
    canary = rollout["spec"]["strategy"]["canary"]
    steps = canary["steps"]
    analysis_steps = [i for i, step in enumerate(steps) if "analysis" in step]
    assert analysis_steps, "the example must gate the rollout with an inline analysis step"

    pod_labels = rollout["spec"]["template"]["metadata"]["labels"]
    side_labels = {"stable": {**pod_labels, **canary["stableMetadata"]["labels"]},
                   "canary": {**pod_labels, **canary["canaryMetadata"]["labels"]}}
    assert side_labels["stable"] != side_labels["canary"]

    for index in analysis_steps:
        step = steps[index]["analysis"]
        passed = {arg["name"]: arg.get("value") for arg in step.get("args", [])}
        for ref in step["templates"]:
            template = templates[ref["templateName"]]
            defined = {arg["name"]: arg for arg in template["spec"]["args"]}
            assert set(passed) <= set(defined), f"step passes unknown args {set(passed) - set(defined)}"
            required = {n for n, a in defined.items() if "value" not in a and "valueFrom" not in a}
            assert required <= set(passed), f"step misses required args {required - set(passed)}"
            for side in ("stable", "canary"):
                selector = passed.get(f"{side}-selector", defined[f"{side}-selector"].get("value"))
                assert selector_labels(selector).items() <= side_labels[side].items(), \
                    f"{side}-selector {selector!r} does not match the {side} pods"
        # Before each analysis: a weight change and a pause long enough for evidence to accumulate.
        before = steps[:index]
        pause = next(s["pause"] for s in reversed(before) if "pause" in s)
        assert parse_duration(pause["duration"]) >= 60
        assert any("setWeight" in s for s in before)

    # Later analyses must not be answered from the record of the earlier one.
    ttl = float(config_env("base")["SELFHEAL_CACHE_TTL_SECONDS"])
    for earlier, later in zip(analysis_steps, analysis_steps[1:]):
        waited = sum(parse_duration(s["pause"]["duration"]) for s in steps[earlier + 1:later] if "pause" in s)
        assert waited > ttl, "the second analysis would reuse the first one's recorded answer"

    service = one(docs, "Service", "rollouts-demo")
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_docs_walk_through_build_apply_wire_and_abort():
    text = DOCS.read_text()
    for needle in (
        "docker build -f deploy/Dockerfile -t REGISTRY/selfheal:TAG .",
        "kubectl apply -k deploy/",
        "kubectl apply -k deploy/overlays/postgres",
        "create secret generic selfheal-secrets",
        "deploy/argo/argo-rollouts-config.yaml",
        "deploy/argo/controller-rbac.yaml",
        "kubectl apply -k deploy/argo/",
        "kubectl argo rollouts -n rollouts-demo get rollout rollouts-demo --watch",
        "argoproj/rollouts-demo:bad-yellow",
        "http://selfheal:<TOKEN>@selfheal.argo-rollouts.svc:8080",
        "releases/download/<VERSION>/rollouts-plugin-metric-ai-linux-amd64",
    ):
        assert needle in text, f"docs/deploy.md lacks {needle!r}"
