"""Models: selection (Gemini, LiteLLM, or the offline runbook) and the runbook model itself.

Importing this package registers the `runbook` model in ADK's model registry.
"""

from google.adk.models import LLMRegistry

from selfheal.llm.runbook import RunbookLlm
from selfheal.llm.selection import RUNBOOK, has_model_credentials, resolve_model, voting_models

LLMRegistry.register(RunbookLlm)

__all__ = ["RUNBOOK", "RunbookLlm", "has_model_credentials", "resolve_model", "voting_models"]
