"""Where the ADK web UI finds the agents and their sessions when served by `selfheal serve --web`."""

from __future__ import annotations

from pathlib import Path

import agents
from selfheal.config import Settings


def agents_dir() -> Path:
    """The ADK agents dir (one folder per app): the `agents` package's folder."""
    return Path(agents.__file__).resolve().parent


def adk_session_uri(settings: Settings) -> str:
    """The state database as an ADK session-service URI (DatabaseSessionService)."""
    return settings.database
