"""tools/k8s.py: every tool against the simulator, error paths included, plus its pure helpers."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Callable, Iterator

import pytest

from selfheal.config import Settings, get_settings
from tools import k8s
from tools.errors import is_error

FIXTURE = Path(__file__).parent / "fixtures" / "k8s_tools" / "sidecars-and-crash"
NS = "k8s-tools"
STABLE_POD = "web-6d4b8f9c7-abcde"
STABLE_POD_RESTARTED = "web-6d4b8f9c7-fghij"
CANARY_POD = "web-7f9c5d8b4-klmno"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "test-token"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


@pytest.fixture
def use_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Point get_settings() (and so every tool) at a kubeconfig; cached settings and clients are
    dropped before and after, so no other test sees this cluster."""

    def point(kubeconfig: str | Path | None, **env: str) -> None:
        monkeypatch.delenv("KUBECONFIG", raising=False)
        if kubeconfig is None:
            monkeypatch.delenv("SELFHEAL_KUBECONFIG", raising=False)
        else:
            monkeypatch.setenv("SELFHEAL_KUBECONFIG", str(kubeconfig))
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        k8s.reset_clients()

    yield point
    monkeypatch.undo()
    get_settings.cache_clear()
    k8s.reset_clients()


def _error(result: dict) -> dict:
    assert is_error(result), result
    json.dumps(result)
    return result["error"]


# --------------------------------------------------------------------------------------------
# Pure helpers (no cluster)
# --------------------------------------------------------------------------------------------


def _pod(containers: list[str], labels: dict | None = None, annotations: dict | None = None) -> dict:
    return {
        "metadata": {"name": "p", "labels": labels or {}, "annotations": annotations or {}},
        "spec": {"containers": [{"name": name, "image": f"{name}:1"} for name in containers]},
    }


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (_pod(["istio-proxy", "web"]), "web"),
        (_pod(["linkerd-proxy", "vault-agent", "otel-collector", "api"]), "api"),
        (_pod(["istio-proxy", "helper", "shop"], labels={"app": "shop"}), "shop"),
        (_pod(["cloud-sql-proxy", "worker", "shop"], labels={"app.kubernetes.io/name": "shop"}), "shop"),
        (_pod(["istio-proxy", "a", "b"], annotations={k8s.DEFAULT_CONTAINER_ANNOTATION: "b"}), "b"),
        (_pod(["envoy", "fluent-bit"]), "envoy"),
        (_pod([]), None),
    ],
)
def test_choose_app_container(pod: dict, expected: str | None) -> None:
    assert k8s.choose_app_container(pod) == expected


@pytest.mark.parametrize(
    ("name", "sidecar"),
    [
        ("istio-proxy", True),
        ("istio-init", True),
        ("linkerd-proxy", True),
        ("envoy", True),
        ("vault-agent", True),
        ("cloud-sql-proxy", True),
        ("otel-collector", True),
        ("fluent-bit", True),
        ("log-shipper-sidecar", True),
        ("web", False),
        ("rollouts-demo", False),
        ("api-server", False),
    ],
)
def test_is_sidecar(name: str, sidecar: bool) -> None:
    assert k8s.is_sidecar(name) is sidecar


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (60, "1m"), (192, "3m12s"), (3600, "1h"), (7500, "2h5m"), (86400, "1d"), (273600, "3d4h")],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert k8s.human_duration(seconds) == text


def test_cap_log_keeps_newest_lines_and_shortens_long_ones() -> None:
    text = "\n".join(f"line {i:03d}" for i in range(100)) + "\n" + "y" * 50
    kept, dropped, cut = k8s._cap_log(text, max_bytes=100, max_line_chars=20)
    assert kept[-1].startswith("y" * 20) and "30 chars cut" in kept[-1]
    assert kept[-2] == "line 099"
    assert dropped == 101 - len(kept) and cut == 1
    assert sum(len(line.encode()) + 1 for line in kept) <= 100


def test_set_weight_follows_argo() -> None:
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1m"}}]
    rollout = {"status": {"currentStepIndex": 1}}
    assert k8s._set_weight(rollout, steps) == 20
    assert k8s._set_weight({"status": {"currentStepIndex": 3}}, steps) == 50
    assert k8s._set_weight({"status": {"currentStepIndex": 4}}, steps) == 100
    assert k8s._set_weight({"status": {"currentStepIndex": 2, "abort": True}}, steps) == 0


def test_tools_have_model_facing_signatures() -> None:
    """The model sees only namespace/names/selectors: no kubeconfig or settings parameter."""
    from google.adk.tools import FunctionTool

    for tool in k8s.K8S_TOOLS:
        declaration = FunctionTool(tool)._get_declaration()
        schema = declaration.parameters_json_schema or {}
        assert "namespace" in schema["properties"], tool.__name__
        assert not {"kubeconfig", "settings"} & set(schema["properties"]), tool.__name__
        assert len(declaration.description) > 200, tool.__name__


# --------------------------------------------------------------------------------------------
# Configuration and transport failures
# --------------------------------------------------------------------------------------------


def test_unreachable_api_is_an_error_not_an_exception(use_cluster: Callable[..., None], tmp_path: Path) -> None:
    kubeconfig = _write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{_closed_port()}")
    use_cluster(kubeconfig)
    for call in (
        lambda: k8s.list_pods(NS),
        lambda: k8s.describe_pod(NS, STABLE_POD),
        lambda: k8s.get_pod_logs(NS, STABLE_POD),
        lambda: k8s.get_events(NS),
        lambda: k8s.get_rollout(NS, "web"),
        lambda: k8s.get_pod_metrics(NS),
        lambda: k8s.list_related_resources(NS),
    ):
        error = _error(call())
        assert error["kind"] == "unreachable", error
        assert "127.0.0.1" in error["message"]
    log = k8s.fetch_container_log(NS, STABLE_POD, container="web")
    assert log.error is not None and log.error.kind == "unreachable" and log.text == ""


def test_missing_configuration_is_not_configured(
    use_cluster: Callable[..., None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    use_cluster(None)
    error = _error(k8s.list_pods(NS))
    assert error["kind"] == "not_configured"
    assert "KUBECONFIG" in error["hint"]


def test_argument_validation(use_cluster: Callable[..., None], tmp_path: Path) -> None:
    # Arguments are checked before any request, so no cluster is needed.
    kubeconfig = _write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{_closed_port()}")
    use_cluster(kubeconfig)
    cases = [
        (k8s.list_pods("Not_A_Namespace"), "namespace"),
        (k8s.list_pods(""), "namespace"),
        (k8s.describe_pod(NS, "../etc"), "pod name"),
        (k8s.get_pod_logs(NS, STABLE_POD, tail_lines=0), "tail_lines"),
        (k8s.get_pod_logs(NS, STABLE_POD, tail_lines=10_001), "tail_lines"),
        (k8s.get_pod_logs(NS, STABLE_POD, tail_lines="many"), "tail_lines"),
        (k8s.get_pod_logs(NS, STABLE_POD, since_seconds=-5), "since_seconds"),
        (k8s.get_pod_logs(NS, STABLE_POD, previous="maybe"), "previous"),
        (k8s.get_pod_logs(NS, STABLE_POD, container="Bad Name"), "container"),
        (k8s.get_events(NS, limit=0), "limit"),
        (k8s.get_events(NS, object_names=["UPPER"]), "object name"),
        (k8s.get_rollout(NS, ""), "rollout name"),
    ]
    for result, mentioned in cases:
        error = _error(result)
        assert error["kind"] == "invalid_argument", (mentioned, error)
        assert mentioned in error["message"], (mentioned, error)
    log = k8s.fetch_container_log(NS, STABLE_POD, tail_lines=10**9)
    assert log.error is not None and log.error.kind == "invalid_argument"
