"""Scenario folders: the files that describe a simulated cluster at one instant.

Layout (see docs/architecture.md): scenario.yaml, cluster/*.yaml, logs/<pod>/<container>.log
(`.previous.log`, optionally gzip `.gz`), metrics/*.om, and expect.yaml, which only tests and
evals read (`load_expectation`). Every problem raises `ScenarioError` naming the file.
"""

from __future__ import annotations

import importlib.resources
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, field_validator

from .manifests import Manifest, ManifestError, read_manifests
from .metrics import MetricsError, MetricsFile, read_metrics
from .podlogs import LogFile, parse_log_name, read_log_lines
from .selectors import SelectorError, parse_label_selector


class ScenarioError(Exception):
    """A scenario that cannot be served; the message names the file and the problem."""


class RolloutRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str
    name: str


class Selectors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stable: str
    canary: str

    @field_validator("stable", "canary")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            if not parse_label_selector(value):
                raise ValueError("must not be empty")
        except SelectorError as exc:
            raise ValueError(f"not a label selector: {exc}") from None
        return value


class ScenarioInfo(BaseModel):
    """What scenario.yaml says, plus the folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    now: AwareDatetime
    rollout: RolloutRef
    selectors: Selectors
    path: Path

    @field_validator("now")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(timezone.utc)


class Scenario(ScenarioInfo):
    """A fully loaded scenario: manifests, log files and metrics files."""

    manifests: list[Manifest]
    logs: list[LogFile]
    metrics: list[MetricsFile]


class Expectation(BaseModel):
    """expect.yaml: the verdict a correct analysis reaches and facts its explanation must state."""

    model_config = ConfigDict(extra="allow", frozen=True)

    promote: bool
    facts: list[list[str]] = []

    @field_validator("facts", mode="before")
    @classmethod
    def _alternatives(cls, value: Any) -> Any:
        # A fact with a single wording may be written as a plain string.
        if isinstance(value, list):
            return [[item] if isinstance(item, str) else item for item in value]
        return value


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None


def _validation_message(path: Path, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"])
        if err["type"] == "missing":
            problems.append(f"missing field '{where}'")
        elif err["type"] == "extra_forbidden":
            problems.append(f"unknown field '{where}'")
        else:
            problems.append(f"{where}: {err['msg']}")
    return f"{path}: " + "; ".join(problems)


def read_info(folder: str | Path) -> ScenarioInfo:
    """Only scenario.yaml (fast; for listings)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: not a scenario folder (no such directory)")
    spec_path = folder / "scenario.yaml"
    if not spec_path.is_file():
        raise ScenarioError(f"{spec_path}: missing (every scenario folder needs one)")
    data = _read_yaml(spec_path)
    if not isinstance(data, dict):
        raise ScenarioError(f"{spec_path}: must be a mapping with name, description, now, rollout, selectors")
    if "path" in data:
        raise ScenarioError(f"{spec_path}: unknown field 'path'")
    try:
        return ScenarioInfo.model_validate({**data, "path": folder})
    except ValidationError as exc:
        raise ScenarioError(_validation_message(spec_path, exc)) from None


def _load_manifests(folder: Path) -> list[Manifest]:
    cluster = folder / "cluster"
    files = sorted(list(cluster.glob("*.yaml")) + list(cluster.glob("*.yml"))) if cluster.is_dir() else []
    if not files:
        raise ScenarioError(f"{cluster}: no manifests (expected cluster/*.yaml)")
    manifests: list[Manifest] = []
    for path in files:
        try:
            manifests.extend(read_manifests(path))
        except ManifestError as exc:
            raise ScenarioError(str(exc)) from None
    return manifests


def _containers(pod: Manifest) -> list[str]:
    spec = pod.body.get("spec") or {}
    names = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        names += [c.get("name") for c in spec.get(key) or [] if isinstance(c, dict)]
    return [name for name in names if isinstance(name, str)]


def _load_logs(folder: Path, info: ScenarioInfo, manifests: list[Manifest]) -> list[LogFile]:
    root = folder / "logs"
    if not root.is_dir():
        return []
    pods: dict[str, list[Manifest]] = {}
    for manifest in manifests:
        if manifest.kind == "Pod" and manifest.api_version == "v1":
            pods.setdefault(manifest.name, []).append(manifest)
    logs: list[LogFile] = []
    for pod_dir in sorted(root.iterdir()):
        if pod_dir.name.startswith("."):
            continue
        if not pod_dir.is_dir():
            raise ScenarioError(f"{pod_dir}: expected a folder logs/<pod>/ holding <container>.log files")
        candidates = pods.get(pod_dir.name, [])
        if not candidates:
            raise ScenarioError(f"{pod_dir}: log folder for an unknown pod (no Pod named "
                                f"'{pod_dir.name}' in cluster/*.yaml)")
        if len(candidates) > 1:
            raise ScenarioError(f"{pod_dir}: pod name '{pod_dir.name}' is ambiguous "
                                f"({', '.join(m.source for m in candidates)})")
        pod = candidates[0]
        containers = _containers(pod)
        seen: dict[tuple[str, bool], Path] = {}
        for path in sorted(pod_dir.iterdir()):
            if path.name.startswith("."):
                continue
            parsed = parse_log_name(path.name)
            if parsed is None or not path.is_file():
                raise ScenarioError(f"{path}: unexpected file; log files are named <container>.log, "
                                    "<container>.previous.log, optionally gzip-compressed (.gz)")
            container, previous = parsed
            if container not in containers:
                raise ScenarioError(f"{path}: pod '{pod.name}' has no container '{container}' "
                                    f"(containers: {', '.join(containers) or 'none'})")
            if (container, previous) in seen:
                raise ScenarioError(f"{path}: the same log is also in {seen[(container, previous)]}")
            seen[(container, previous)] = path
            try:
                lines = read_log_lines(path)
            except (OSError, EOFError, ValueError) as exc:  # gzip errors are OSError/EOFError
                raise ScenarioError(f"{path}: cannot read log: {exc}") from None
            logs.append(LogFile.model_construct(
                namespace=pod.namespace or info.rollout.namespace, pod=pod.name, container=container,
                previous=previous, source=path, lines=lines))
    return logs


def _load_metrics(folder: Path) -> list[MetricsFile]:
    files = sorted((folder / "metrics").glob("*.om"))
    try:
        return [read_metrics(path) for path in files]
    except MetricsError as exc:
        raise ScenarioError(str(exc)) from None


def load_scenario(path: str | Path) -> Scenario:
    """Load and check one scenario folder (expect.yaml is not read)."""
    folder = Path(path)
    info = read_info(folder)
    manifests = _load_manifests(folder)
    rollout = info.rollout
    if not any(m.kind == "Rollout" and m.name == rollout.name
               and (m.namespace or rollout.namespace) == rollout.namespace for m in manifests):
        raise ScenarioError(f"{folder / 'scenario.yaml'}: rollout {rollout.namespace}/{rollout.name} "
                            "is not defined in cluster/*.yaml")
    logs = _load_logs(folder, info, manifests)
    metrics = _load_metrics(folder)
    return Scenario.model_construct(**dict(info), manifests=manifests, logs=logs, metrics=metrics)


def load_expectation(path: str | Path) -> Expectation:
    """expect.yaml of a scenario folder (or the file itself). For tests and evals only."""
    path = Path(path)
    file = path / "expect.yaml" if path.is_dir() else path
    if not file.is_file():
        raise ScenarioError(f"{file}: missing")
    data = _read_yaml(file)
    try:
        return Expectation.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_validation_message(file, exc)) from None


def bundled_scenarios_dir() -> Path:
    """The repository's evals/scenarios folder (found through the `evals` package)."""
    try:
        return Path(str(importlib.resources.files("evals") / "scenarios"))
    except (NotADirectoryError, TypeError):
        # An editable install made before evals/ had __init__.py maps it as a namespace
        # package, which importlib.resources cannot open; its __path__ still finds the folder.
        import evals

        folders = [Path(entry) for entry in getattr(evals, "__path__", []) if Path(entry).is_dir()]
        return (folders[0] if folders else Path(evals.__file__ or ".").parent) / "scenarios"


def _bundled_folders() -> list[Path]:
    root = bundled_scenarios_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def list_scenarios() -> list[ScenarioInfo]:
    """The bundled scenarios (folders starting with `_` or `.` are skipped)."""
    return [read_info(folder) for folder in _bundled_folders()]


def resolve_scenario(name_or_path: str | Path) -> Path:
    """A scenario folder path, or the folder of a bundled scenario with that name."""
    candidate = Path(name_or_path)
    if candidate.is_dir():
        return candidate
    text = str(name_or_path)
    if "/" not in text and text not in ("", ".", ".."):
        bundled = bundled_scenarios_dir() / text
        if bundled.is_dir():
            return bundled
    names = ", ".join(folder.name for folder in _bundled_folders()) or "none"
    raise ScenarioError(f"{text}: no such scenario folder, and not a bundled scenario "
                        f"(bundled: {names})")
