"""Which model the agents use.

`SELFHEAL_MODEL` (or `GEMINI_MODEL`) wins. Without it, Gemini is used when google-genai can find
credentials, and the offline `runbook` model otherwise (logged once, so nobody mistakes it for an LLM).
"""

from __future__ import annotations

import functools
import logging
import os

from selfheal.config import Settings, get_settings

log = logging.getLogger(__name__)

RUNBOOK = "runbook"


def has_model_credentials() -> bool:
    """True when google-genai would find credentials (API key, or Vertex AI settings)."""
    if os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY"):
        return True
    vertex = os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in ("1", "true", "yes")
    return vertex and bool(os.environ.get("GOOGLE_CLOUD_PROJECT"))


def resolve_model(settings: Settings | None = None) -> str:
    """The model name every agent is built with."""
    settings = settings or get_settings()
    if settings.model:
        return settings.model
    if has_model_credentials():
        return settings.default_gemini_model
    _announce_runbook()
    return RUNBOOK


def voting_models(settings: Settings | None = None) -> list[str]:
    """Models that vote on plugin analyses: SELFHEAL_MODELS, or just the resolved model."""
    settings = settings or get_settings()
    return list(settings.models) or [resolve_model(settings)]


@functools.cache
def _announce_runbook() -> None:
    log.warning(
        "No model credentials found (GOOGLE_API_KEY or Vertex AI settings): using the offline "
        "'runbook' model, which follows the investigation runbook deterministically."
    )
