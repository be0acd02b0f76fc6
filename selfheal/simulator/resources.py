"""Which resource types the simulator serves, and how kinds map to REST paths.

The built-in table lists what discovery must always advertise (kubectl resolves `rollouts`
or `po` through discovery). Kinds found in scenario manifests that are not in the table are
added with the plural the apiserver would derive, so any CRD-like object can be served.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Served in discovery but always refused with an RBAC-style 403 (the product never reads them).
    forbidden: bool = False
    subresources: tuple[str, ...] = field(default=())

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


_ALL = ("all",)
BUILTIN: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Pod", "pods", True, ("po",), _ALL, subresources=("log",)),
    ResourceType("", "v1", "Service", "services", True, ("svc",), _ALL),
    ResourceType("", "v1", "Event", "events", True, ("ev",)),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    ResourceType("", "v1", "Secret", "secrets", True, forbidden=True),
    ResourceType("", "v1", "Namespace", "namespaces", False, ("ns",)),
    ResourceType("", "v1", "Node", "nodes", False, ("no",)),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    ResourceType("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    ResourceType("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",)),
    ResourceType("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",)),
    ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), _ALL),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), _ALL),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), _ALL),
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), _ALL),
    ResourceType("argoproj.io", "v1alpha1", "Rollout", "rollouts", True, ("ro",)),
    ResourceType("argoproj.io", "v1alpha1", "AnalysisRun", "analysisruns", True, ("ar",)),
    ResourceType("argoproj.io", "v1alpha1", "AnalysisTemplate", "analysistemplates", True, ("at",)),
    ResourceType("argoproj.io", "v1alpha1", "ClusterAnalysisTemplate", "clusteranalysistemplates", False,
                 ("cat",)),
    ResourceType("argoproj.io", "v1alpha1", "Experiment", "experiments", True, ("exp",)),
    ResourceType("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True),
    ResourceType("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False),
)


_CLUSTER_WIDE_PREFIXES = ("Cluster", "Global")
_CLUSTER_WIDE = {"StorageClass", "CustomResourceDefinition", "PriorityClass", "IngressClass", "RuntimeClass",
                 "APIService", "CSIDriver", "CSINode", "VolumeAttachment", "ValidatingWebhookConfiguration",
                 "MutatingWebhookConfiguration", "PodSecurityPolicy"}


def split_api_version(api_version: str) -> tuple[str, str]:
    """`apps/v1` -> ("apps", "v1"); `v1` -> ("", "v1")."""
    group, _, version = api_version.rpartition("/")
    return group, version


def derive_plural(kind: str) -> str:
    """The plural the apiserver would guess for a kind (`NetworkPolicy` -> `networkpolicies`)."""
    lower = kind.lower()
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in tuple("aeiou"):
        return lower[:-1] + "ies"
    return lower + "s"


class Registry:
    """Resource types by REST coordinates and by kind."""

    def __init__(self) -> None:
        self._types: list[ResourceType] = []
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str, str], ResourceType] = {}
        for rtype in BUILTIN:
            self.add(rtype)

    def add(self, rtype: ResourceType) -> ResourceType:
        self._types.append(rtype)
        self._by_path[(rtype.group, rtype.version, rtype.plural)] = rtype
        self._by_kind[(rtype.group, rtype.version, rtype.kind)] = rtype
        return rtype

    def for_manifest(self, api_version: str, kind: str, has_namespace: bool) -> ResourceType:
        """The type of a manifest, registering unknown kinds on first sight.

        An unknown kind is namespaced (as most custom resources are) unless the manifest has
        no namespace and the kind reads as cluster-wide (`ClusterIssuer`, `StorageClass`, ...).
        """
        group, version = split_api_version(api_version)
        found = self._by_kind.get((group, version, kind))
        if found:
            return found
        namespaced = has_namespace or not kind.startswith(_CLUSTER_WIDE_PREFIXES) and kind not in _CLUSTER_WIDE
        return self.add(ResourceType(group, version, kind, derive_plural(kind), namespaced))

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, kind: str) -> list[ResourceType]:
        return [rtype for rtype in self._types if rtype.kind == kind]

    def group_versions(self) -> dict[str, list[str]]:
        """Group name -> served versions, in registration order (core is the empty name)."""
        groups: dict[str, list[str]] = {}
        for rtype in self._types:
            versions = groups.setdefault(rtype.group, [])
            if rtype.version not in versions:
                versions.append(rtype.version)
        return groups

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rtype for rtype in self._types if rtype.group == group and rtype.version == version]
