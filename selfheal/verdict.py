"""The diagnosis agent's structured verdict (its ADK `output_schema`)."""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, Field, ValidationError


class EvidenceFact(BaseModel):
    fact: str = Field(description="One short fact that supports the verdict.")
    source: str = Field(description="Where it comes from: judge, logs, events, prometheus, pod status, rollout.")


class Verdict(BaseModel):
    """Promote or abort the canary, with the reasons."""

    promote: bool = Field(description="True only when the evidence shows the canary is as healthy as stable.")
    confidence: int = Field(ge=0, le=100, description="Confidence in the decision, 0-100.")
    analysis: str = Field(description="What was compared and what was found, in a few sentences.")
    rootCause: str = Field(description="The most likely root cause of a failure, or 'none' for a healthy canary.")
    remediation: str = Field(description="What to do next (roll back, fix, investigate), concretely.")
    evidence: list[EvidenceFact] = Field(default_factory=list, description="The facts behind the verdict.")


_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def json_candidates(text: str) -> list[str]:
    """Where a JSON object may sit in a model's answer, best first: a fenced block, the whole
    text, the first balanced `{...}` inside prose."""
    text = (text or "").strip()
    candidates = []
    fenced = _FENCE.search(text)
    if fenced:
        candidates.append(fenced.group(1))
    candidates.append(text)
    start = text.find("{")
    if start >= 0:
        embedded = _balanced_object(text, start)
        if embedded:
            candidates.append(embedded)
    return candidates


def parse_verdict(text: str | dict | None) -> Verdict | None:
    """A Verdict from a model's final output: a dict, JSON, fenced JSON or prose around one object."""
    if text is None:
        return None
    candidates: list[object] = [text] if isinstance(text, dict) else list(json_candidates(text))
    for candidate in candidates:
        try:
            data = json.loads(candidate) if isinstance(candidate, str) else candidate
            if not isinstance(data, dict):
                continue
            # Strict: promote must be a real boolean, as the Go client requires.
            if not isinstance(data.get("promote"), bool):
                continue
            return Verdict.model_validate(data)
        except (ValueError, ValidationError):
            continue
    return None


def _balanced_object(text: str, start: int) -> str:
    depth = 0
    in_string = False
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : index + 1]
    return ""
