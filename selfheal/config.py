"""All configuration, read from the environment once.

Every variable is documented in README.md ("Configuration"). Components receive a
`Settings` object (or call `get_settings()`); nothing else is global.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

RemediationMode = Literal["issue", "session", "off"]
FailurePolicy = Literal["abort", "promote"]


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "selfheal"


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SELFHEAL_", extra="ignore", populate_by_name=True)

    # --- models -------------------------------------------------------------
    model: str = Field(
        default="",
        validation_alias=AliasChoices("SELFHEAL_MODEL", "GEMINI_MODEL"),
        description="Model for the agents; empty picks Gemini when credentials exist, else `runbook`.",
    )
    default_gemini_model: str = "gemini-2.5-flash"
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Models that vote on each plugin analysis (comma separated)."
    )
    quorum: int = Field(default=1, ge=1, description="Minimum number of models that must answer.")
    max_model_calls: int = Field(default=25, ge=1, description="Model calls allowed per turn.")

    # --- cluster and metrics -------------------------------------------------
    kubeconfig: str | None = Field(default=None, validation_alias=AliasChoices("SELFHEAL_KUBECONFIG", "KUBECONFIG"))
    kube_context: str | None = None
    kube_timeout_seconds: float = Field(default=10.0, gt=0)
    prometheus_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SELFHEAL_PROMETHEUS_URL", "PROMETHEUS_URL")
    )
    prometheus_timeout_seconds: float = Field(default=10.0, gt=0)
    prometheus_max_series: int = Field(default=50, ge=1)
    prometheus_max_points: int = Field(default=2000, ge=10)

    # --- evidence and judge --------------------------------------------------
    report_bytes: int = Field(default=12_000, ge=4_000, description="Byte budget of what the model reads of the evidence.")
    log_tail_lines: int = Field(default=300_000, ge=100, description="Most log lines read per container.")

    # --- plugin service ------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    token: str | None = Field(default=None, description="Required bearer/basic token when set.")
    deadline_seconds: float = Field(default=120.0, gt=0)
    inconclusive_policy: FailurePolicy = "abort"
    cache_ttl_seconds: float = Field(default=300.0, ge=0)
    max_concurrent_analyses: int = Field(default=4, ge=1)
    max_queued_analyses: int = Field(default=32, ge=0)
    public_url: str | None = Field(default=None, description="URL other agents use to reach this service (A2A card).")
    web_ui: bool = False
    mount_mcp: bool = False

    # --- state --------------------------------------------------------------
    state_dir: Path = Field(default_factory=_default_state_dir)
    database_url: str | None = None

    # --- remediation --------------------------------------------------------
    remediation_mode: RemediationMode = "issue"
    repo_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    enable_mcp_remediation: bool = False
    issue_labels: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["canary-rollback", "automated", "jules"]
    )
    outbox_dir: Path | None = None
    github_token: str | None = Field(default=None, validation_alias=AliasChoices("SELFHEAL_GITHUB_TOKEN", "GITHUB_TOKEN"))
    github_api_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SELFHEAL_GITHUB_API_URL", "GITHUB_API_URL")
    )
    jules_api_key: str | None = Field(default=None, validation_alias=AliasChoices("SELFHEAL_JULES_API_KEY", "JULES_API_KEY"))
    jules_api_url: str = Field(
        default="https://jules.googleapis.com/v1alpha",
        validation_alias=AliasChoices("SELFHEAL_JULES_API_URL", "JULES_API_URL"),
    )
    jules_require_plan_approval: bool = False
    jules_follow_seconds: float = Field(default=1800.0, ge=0)
    jules_poll_seconds: float = Field(default=15.0, gt=0)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError("must be http(s)://HOST[:PORT] with no path, e.g. http://selfheal.argo-rollouts.svc:8080")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _quorum_reachable(self) -> "Settings":
        if self.models and self.quorum > len(self.models):
            raise ValueError(f"SELFHEAL_QUORUM={self.quorum} needs more models than SELFHEAL_MODELS lists "
                             f"({len(self.models)}): every analysis would miss its quorum")
        return self

    @field_validator("models", "repo_allowlist", "issue_labels", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_list(value)

    @property
    def database(self) -> str:
        """SQLAlchemy async URL of the state store."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.state_dir / 'selfheal.db'}"

    @property
    def outbox(self) -> Path:
        return self.outbox_dir or self.state_dir / "outbox"


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
