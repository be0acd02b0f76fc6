"""Fields a real cluster always sets that scenario authors may leave out.

The official Python client (kubernetes>=37 validates with pydantic) refuses objects that
lack required fields such as `containerStatuses[].imageID`, and kubectl describe matches
events by uid; so the simulator completes objects the way the apiserver, the kubelet and
the controllers would, with values that are the same on every run.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from .resources import Registry


def stable_uid(kind: str, namespace: str | None, name: str) -> str:
    """A uid that is the same on every run (tests and recorded transcripts can rely on it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"selfheal-sim/{kind}/{namespace or ''}/{name}"))


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def qualified_image(image: str) -> str:
    """`argoproj/rollouts-demo:blue` -> `docker.io/argoproj/rollouts-demo:blue`, as containerd reports."""
    first = image.split("/", 1)[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{image}"


def _repository(image: str) -> str:
    """The qualified image without its tag: imageID names a digest, not a tag."""
    full = qualified_image(image.split("@", 1)[0])
    last = full.rsplit("/", 1)[-1]
    return full.rsplit(":", 1)[0] if ":" in last else full


def _complete_container_status(status: dict[str, Any], specs: dict[str, dict[str, Any]], pod_uid: str) -> None:
    name = str(status.get("name") or "")
    image = str(status.get("image") or specs.get(name, {}).get("image") or "")
    status.setdefault("name", name)
    status.setdefault("image", image)
    status.setdefault("ready", False)
    status.setdefault("restartCount", 0)
    state = status.get("state") or {}
    last = status.get("lastState") or {}
    status.setdefault("state", state)
    status.setdefault("lastState", last)
    for terminated in (state.get("terminated"), last.get("terminated")):
        if isinstance(terminated, dict):
            terminated.setdefault("exitCode", 0)
    ever_ran = bool(state.get("running") or state.get("terminated") or last.get("terminated"))
    # The kubelet reports the resolved image digest only once the image was pulled.
    status.setdefault("imageID", f"{_repository(image)}@sha256:{_digest('image', image)}" if ever_ran else "")
    if ever_ran:
        status.setdefault("containerID", "containerd://" + _digest("container", pod_uid, name,
                                                                     str(status["restartCount"])))
    status.setdefault("started", bool(state.get("running")))


def complete_pod(body: dict[str, Any]) -> None:
    spec = body.get("spec") or {}
    status = body.get("status")
    if not isinstance(status, dict):
        return
    uid = body["metadata"].get("uid", "")
    for specs_key, status_key in (("containers", "containerStatuses"), ("initContainers", "initContainerStatuses"),
                                  ("ephemeralContainers", "ephemeralContainerStatuses")):
        specs = {c.get("name"): c for c in spec.get(specs_key) or [] if isinstance(c, dict)}
        for item in status.get(status_key) or []:
            if isinstance(item, dict):
                _complete_container_status(item, specs, uid)


def resolve_references(body: dict[str, Any], namespace: str | None, registry: Registry,
                       uids: dict[tuple[str, str | None, str], str]) -> None:
    """Fill the uids (and owner apiVersions) that manifests leave out in references."""
    for ref in body["metadata"].get("ownerReferences") or []:
        if not isinstance(ref, dict) or not ref.get("kind") or not ref.get("name"):
            continue
        if not ref.get("uid"):
            ref["uid"] = uids.get((ref["kind"], namespace, ref["name"])) or \
                stable_uid(ref["kind"], namespace, ref["name"])
        if not ref.get("apiVersion"):
            known = registry.by_kind(ref["kind"])
            if known:
                ref["apiVersion"] = known[0].group_version
    for field in ("involvedObject", "regarding"):
        ref = body.get(field)
        if not isinstance(ref, dict) or not ref.get("kind") or not ref.get("name"):
            continue
        target_ns = ref.setdefault("namespace", namespace) if namespace else ref.get("namespace")
        if not ref.get("uid"):
            ref["uid"] = uids.get((ref["kind"], target_ns, ref["name"])) or \
                uids.get((ref["kind"], None, ref["name"])) or stable_uid(ref["kind"], target_ns, ref["name"])
