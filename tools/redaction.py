"""Secret redaction, applied to everything before it reaches a model, a chat, an MCP client or GitHub.

Patterns are ordered: multi-line private keys first, then structured tokens, then generic pairs.
Each match is replaced by a marker that names the kind, so the reader still knows something was there.
"""

from __future__ import annotations

import re
from typing import Any

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "PRIVATE_KEY",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
    ),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")),
    ("BEARER_TOKEN", re.compile(r"(?i)(?<=\bbearer )[A-Za-z0-9._~+/=-]{8,}")),
    ("GITHUB_TOKEN", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    ("GOOGLE_API_KEY", re.compile(r"\bAIza[0-9A-Za-z_-]{30,}")),
    ("AWS_ACCESS_KEY", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("SLACK_TOKEN", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    # user:password@host in URLs (any scheme).
    ("URL_PASSWORD", re.compile(r"(?<=://)[^\s/:@]+:[^\s/@]+(?=@)")),
    # password=..., "secret": "...", api_key: ... (value up to a delimiter).
    (
        "SECRET_VALUE",
        re.compile(
            r"(?i)(?<![A-Za-z0-9])((?:passw(?:or)?d|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|"
            r"client[_-]?secret|token)[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&}]{3,})"
        ),
    ),
    ("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
]

# Cheap pre-check: lines without any of these substrings cannot match a pattern above.
_HINT = re.compile(
    r"(?i)PRIVATE KEY|eyJ|bearer|gh[pousr]_|github_pat_|AIza|AKIA|ASIA|xox|://|passw|pwd|secret|key|token|@"
)


def redact(text: str) -> str:
    """Replace every secret in `text` with `[REDACTED:<KIND>]`."""
    if not text or not _HINT.search(text):
        return text
    for kind, pattern in _PATTERNS:
        if kind == "SECRET_VALUE":
            text = pattern.sub(lambda m: f"{m.group(1)}[REDACTED:{kind}]", text)
        elif kind == "URL_PASSWORD":
            text = pattern.sub(lambda m: m.group(0).split(":", 1)[0] + f":[REDACTED:{kind}]", text)
        else:
            text = pattern.sub(f"[REDACTED:{kind}]", text)
    return text


def redact_data(value: Any) -> Any:
    """Redact every string inside a JSON-like structure (dict keys are kept)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(item) for item in value]
    return value
