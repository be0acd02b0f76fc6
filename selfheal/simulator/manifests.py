"""Reading Kubernetes manifests (multi-document YAML) with errors that name file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ManifestError(ValueError):
    """A manifest problem; the message already names the file (and line when known)."""


class Manifest(BaseModel):
    """One object from cluster/*.yaml, with where it came from."""

    model_config = ConfigDict(frozen=True)

    source: str  # "path/to/file.yaml:LINE", for error messages
    body: dict[str, Any]

    @property
    def api_version(self) -> str:
        return self.body["apiVersion"]

    @property
    def kind(self) -> str:
        return self.body["kind"]

    @property
    def name(self) -> str:
        return self.body["metadata"]["name"]

    @property
    def namespace(self) -> str | None:
        return self.body["metadata"].get("namespace")


def _mark(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f":{mark.line + 1}" if mark is not None else ""


def _check(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: a manifest must be a mapping, got {type(obj).__name__}")
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise ManifestError(f"{where}: object without {key}")
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        raise ManifestError(f"{where}: {obj['kind']} without metadata.name")
    namespace = metadata.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not namespace):
        raise ManifestError(f"{where}: {obj['kind']} {metadata['name']}: metadata.namespace must be a string")
    labels = metadata.get("labels")
    if labels is not None and (not isinstance(labels, dict)
                               or not all(isinstance(v, str) for v in labels.values())):
        raise ManifestError(f"{where}: {obj['kind']} {metadata['name']}: metadata.labels must map "
                            "strings to strings (quote numbers and booleans)")
    return obj


def read_manifests(path: Path) -> list[Manifest]:
    """All objects in one YAML file; `kind: List` documents are expanded into their items."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from None
    manifests: list[Manifest] = []
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            doc = loader.construct_document(node)
            if doc is None:
                continue  # an empty document between `---` separators
            where = f"{path}:{line}"
            if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
                items = doc["items"]
            else:
                items = [doc]
            for item in items:
                manifests.append(Manifest(source=where, body=_check(item, where)))
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(f"{path}{_mark(exc)}: invalid YAML: {problem}") from None
    finally:
        loader.dispose()
    return manifests
