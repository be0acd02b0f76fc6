"""Discovery documents (`/version`, `/api`, `/apis`, group versions) in the legacy JSON form.

kubectl first asks for aggregated discovery and falls back to these documents when the
answer is plain `application/json`; the official Python client only uses them for `/version`.
"""

from __future__ import annotations

from typing import Any

from .resources import Registry, ResourceType

# kubectl's dispatcher picks the client binary matching this minor version.
VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.4", "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
    "gitTreeState": "clean", "buildDate": "2025-04-22T16:02:27Z", "goVersion": "go1.23.6",
    "compiler": "gc", "platform": "linux/amd64",
}

_READ_VERBS = ["get", "list"]


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group(name, versions) for name, versions in registry.group_versions().items() if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, name: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _resource(rtype: ResourceType) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {"name": rtype.plural, "singularName": rtype.singular,
                             "namespaced": rtype.namespaced, "kind": rtype.kind, "verbs": _READ_VERBS}
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    subresources = [{"name": f"{rtype.plural}/{sub}", "singularName": "", "namespaced": rtype.namespaced,
                     "kind": rtype.kind, "verbs": ["get"]} for sub in rtype.subresources]
    return [entry, *subresources]


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources = [item for rtype in types for item in _resource(rtype)]
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}
