"""The wire contract of the `argoproj-labs/metric-ai` plugin (see README, "Plugin contract").

The Go client decodes the answer strictly: `promote` must be a JSON boolean, `confidence` and
`executionTimeMs` JSON integers. These models are the only way answers are produced.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tools.names import DNS_LABEL, OBJECT_NAME, label_selector_problem


class AnalyzeContext(BaseModel):
    """`context` of the plugin request; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    namespace: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    rolloutName: str = Field(min_length=1, max_length=253, pattern=OBJECT_NAME)
    stableSelector: str = Field(default="role=stable", min_length=1, max_length=1024)
    canarySelector: str = Field(default="role=canary", min_length=1, max_length=1024)
    extraPrompt: str | None = Field(default=None, max_length=8192)
    repoUrl: str | None = Field(default=None, max_length=2048)
    baseBranch: str | None = Field(default=None, max_length=255)

    @field_validator("stableSelector", "canarySelector")
    @classmethod
    def _selector(cls, value: str) -> str:
        problem = label_selector_problem(value)
        if problem:
            raise ValueError(problem)
        return value.strip()


class AnalyzeRequest(BaseModel):
    """Body of `POST /a2a/analyze` as the Go plugin sends it."""

    model_config = ConfigDict(extra="ignore")

    userId: str = Field(default="argo-rollouts", max_length=256)
    memoryId: str | None = Field(default=None, max_length=512)
    prompt: str = Field(default="", max_length=65536)
    context: AnalyzeContext

    @property
    def memory_key(self) -> str:
        return self.memoryId or f"rollout:{self.context.namespace}/{self.context.rolloutName}"


class ModelResult(BaseModel):
    modelName: str
    analysis: str = ""
    rootCause: str = ""
    remediation: str = ""
    promote: bool = False
    confidence: int = Field(default=0, ge=0, le=100)
    executionTimeMs: int = Field(default=0, ge=0)
    error: str | None = None


class AnalyzeResponse(BaseModel):
    """The 200 body; `model_dump(exclude_none=True)` is what goes on the wire."""

    analysis: str
    rootCause: str = ""
    remediation: str = ""
    prLink: str | None = None
    promote: bool
    confidence: int = Field(ge=0, le=100)
    modelResults: list[ModelResult] | None = None
    votingRationale: str | None = None

    @field_validator("confidence", mode="before")
    @classmethod
    def _round_confidence(cls, value: object) -> object:
        if isinstance(value, float):
            return max(0, min(100, round(value)))
        return value

    def wire(self) -> dict:
        """The JSON object sent to the plugin (no nulls, ints stay ints)."""
        return self.model_dump(mode="json", exclude_none=True)


def plugin_prompt(namespace: str, rollout: str, stable: str, canary: str, extra: str | None = None) -> str:
    """The exact prose prompt the Go plugin sends (used by the demo, tests and evals)."""
    text = (
        f"Analyze canary deployment for rollout '{rollout}'. Namespace: {namespace}. "
        f"Use your tools to fetch and compare logs from stable pods (selector: {stable}) "
        f"vs canary pods (selector: {canary}). Determine if canary should be promoted."
    )
    if extra:
        text += f"\n\nAdditional context: {extra}"
    return text


def plugin_request(namespace: str, rollout: str, stable: str = "role=stable", canary: str = "role=canary",
                   extra: str | None = None, repo_url: str | None = None, base_branch: str | None = None) -> dict:
    """The exact JSON body the Go plugin posts for one measurement."""
    context: dict[str, str] = {
        "namespace": namespace,
        "rolloutName": rollout,
        "stableSelector": stable,
        "canarySelector": canary,
    }
    if extra:
        context["extraPrompt"] = extra
    if repo_url:
        context["repoUrl"] = repo_url
    if base_branch:
        context["baseBranch"] = base_branch
    return {
        "userId": "argo-rollouts",
        "memoryId": f"rollout:{namespace}/{rollout}",
        "prompt": plugin_prompt(namespace, rollout, stable, canary, extra),
        "context": context,
    }


class FloatLiteral(float):
    """A JSON number written with a fraction or exponent (Go refuses it for an int field)."""


_STRING_FIELDS = ("analysis", "rootCause", "remediation", "prLink", "votingRationale")
_MODEL_STRING_FIELDS = ("modelName", "analysis", "rootCause", "remediation", "error")


def go_decode_error(body: str | bytes) -> str | None:
    """Why the Go plugin would fail to decode `body` into its response struct, or None if it decodes.

    Mirrors encoding/json into typed fields: bools must be true/false, ints integer literals in
    range, strings strings; null leaves the zero value; unknown fields are ignored.
    """
    import json as _json

    try:
        data = _json.loads(body, parse_float=FloatLiteral)
    except ValueError as exc:
        return f"invalid JSON: {exc}"
    if data is None:
        return None
    if not isinstance(data, dict):
        return f"cannot unmarshal {type(data).__name__} into the response object"
    return _check_object(data, _STRING_FIELDS, ("confidence",), "") or _check_models(data.get("modelResults"))


def _check_object(data: dict, strings: tuple[str, ...], ints: tuple[str, ...], where: str) -> str | None:
    for name in strings:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            return f"{where}{name}: cannot unmarshal {type(value).__name__} into string"
    promote = data.get("promote")
    if promote is not None and not isinstance(promote, bool):
        return f"{where}promote: cannot unmarshal {type(promote).__name__} into bool"
    for name in ints:
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or isinstance(value, FloatLiteral):
            return f"{where}{name}: cannot unmarshal {value!r} into int"
        if not -(2**63) <= value < 2**63:
            return f"{where}{name}: {value} overflows int"
    return None


def _check_models(models: object) -> str | None:
    if models is None:
        return None
    if not isinstance(models, list):
        return "modelResults: cannot unmarshal into []modelResult"
    for index, item in enumerate(models):
        if item is None:
            continue
        if not isinstance(item, dict):
            return f"modelResults[{index}]: cannot unmarshal into modelResult"
        error = _check_object(item, _MODEL_STRING_FIELDS, ("confidence", "executionTimeMs"), f"modelResults[{index}].")
        if error:
            return error
    return None
