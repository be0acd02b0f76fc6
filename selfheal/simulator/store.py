"""The simulated cluster's objects: built once from scenarios, then only read (thread-safe).

Building fills in what a real cluster always sets and scenario authors leave out: the
namespace (the scenario's rollout namespace), stable uids and resourceVersions, references
and kubelet-reported fields (defaults.py), and the namespaces that objects imply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from .defaults import complete_pod, resolve_references, stable_uid
from .podlogs import LogView
from .resources import Registry, ResourceType
from .scenario import Scenario, ScenarioError
from .selectors import FieldTerm, Requirement, field_value, fields_match, labels_match
from .timeshift import TimeShift, format_rfc3339

_CORE_NAMESPACE = ("v1", "Namespace")
_RV_START = 1000


@dataclass
class StoredObject:
    rtype: ResourceType
    namespace: str | None
    name: str
    body: dict[str, Any]
    source: str
    json: bytes = b""

    @property
    def labels(self) -> dict[str, str]:
        return self.body["metadata"].get("labels") or {}


class ClusterState:
    """All served objects and logs of the loaded scenarios."""

    def __init__(self, scenarios: list[Scenario], startup: datetime) -> None:
        self.startup = startup
        self.registry = Registry()
        self.shifts: dict[str, TimeShift] = {}
        self._objects: dict[tuple[ResourceType, str | None, str], StoredObject] = {}
        self._logs: dict[tuple[str, str, str, bool], LogView] = {}
        for scenario in scenarios:
            if scenario.name in self.shifts:
                raise ScenarioError(f"{scenario.path / 'scenario.yaml'}: scenario name '{scenario.name}' "
                                    "is used by two of the served folders")
            self.shifts[scenario.name] = TimeShift.between(scenario.now, startup)
            self._add_scenario(scenario)
        self._imply_namespaces()
        uids = {(o.rtype.kind, o.namespace, o.name): o.body["metadata"]["uid"] for o in self._objects.values()}
        for index, obj in enumerate(self._objects.values()):
            obj.body["metadata"].setdefault("resourceVersion", str(_RV_START + index))
            resolve_references(obj.body, obj.namespace, self.registry, uids)
            if obj.rtype.kind == "Pod" and obj.rtype.group == "":
                complete_pod(obj.body)
            obj.json = json.dumps(obj.body, separators=(",", ":")).encode()
        self.resource_version = str(_RV_START + len(self._objects))
        self._by_type: dict[ResourceType, list[StoredObject]] = {}
        for key in sorted(self._objects, key=lambda k: (k[1] or "", k[2])):
            self._by_type.setdefault(key[0], []).append(self._objects[key])

    # --- building -----------------------------------------------------------------------------

    def _add_scenario(self, scenario: Scenario) -> None:
        shift = self.shifts[scenario.name]
        default_ns = scenario.rollout.namespace
        created = format_rfc3339(self.startup)
        for manifest in scenario.manifests:
            body = shift.tree(manifest.body)
            meta = body["metadata"]
            rtype = self.registry.for_manifest(manifest.api_version, manifest.kind, "namespace" in meta)
            if rtype.namespaced:
                meta["namespace"] = meta.get("namespace") or default_ns
            else:
                meta.pop("namespace", None)
            namespace = meta.get("namespace")
            key = (rtype, namespace, meta["name"])
            if key in self._objects:
                where = f"{namespace}/{meta['name']}" if namespace else meta["name"]
                raise ScenarioError(f"{self._objects[key].source} and {manifest.source} both define "
                                    f"{rtype.kind} {where}")
            if rtype.forbidden:
                continue  # secrets are refused with a 403, so their data never leaves the files
            meta.setdefault("uid", stable_uid(rtype.kind, namespace, meta["name"]))
            meta.setdefault("creationTimestamp", created)
            self._objects[key] = StoredObject(rtype, namespace, meta["name"], body, manifest.source)
        fallback = scenario.now.timestamp()
        for log in scenario.logs:
            self._logs[(log.namespace, log.pod, log.container, log.previous)] = LogView(log.lines, shift, fallback)

    def _imply_namespaces(self) -> None:
        """A Namespace object for every namespace in use (and `default`), as old as its oldest object."""
        ns_type = self.registry.for_manifest(*_CORE_NAMESPACE, False)
        earliest: dict[str, str] = {"default": format_rfc3339(self.startup)}
        for obj in self._objects.values():
            if obj.namespace is None:
                continue
            stamp = obj.body["metadata"].get("creationTimestamp", "")
            known = earliest.get(obj.namespace)
            earliest[obj.namespace] = min(known, stamp) if known and stamp else (known or stamp)
        for namespace, stamp in earliest.items():
            if (ns_type, None, namespace) in self._objects:
                continue
            body = {"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": namespace, "uid": stable_uid("Namespace", None, namespace),
                                 "creationTimestamp": stamp or format_rfc3339(self.startup),
                                 "labels": {"kubernetes.io/metadata.name": namespace}},
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            self._objects[(ns_type, None, namespace)] = StoredObject(ns_type, None, namespace, body, "(implied)")

    # --- reading --------------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> StoredObject | None:
        return self._objects.get((rtype, namespace if rtype.namespaced else None, name))

    def list(self, rtype: ResourceType, namespace: str | None = None,
             labels: list[Requirement] | None = None, fields: list[FieldTerm] | None = None) -> list[StoredObject]:
        """Objects of a type sorted by namespace and name; `namespace=None` means all namespaces."""
        items: Iterable[StoredObject] = self._by_type.get(rtype, [])
        if namespace is not None and rtype.namespaced:
            items = [o for o in items if o.namespace == namespace]
        if labels:
            items = [o for o in items if labels_match(labels, o.labels)]
        if fields:
            items = [o for o in items if fields_match(fields, o.body, field_value)]
        return list(items)

    def log(self, namespace: str, pod: str, container: str, previous: bool) -> LogView | None:
        return self._logs.get((namespace, pod, container, previous))

    def namespaces(self) -> list[str]:
        return sorted({o.namespace for o in self._objects.values() if o.namespace})

