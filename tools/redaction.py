"""Secret redaction, applied to everything before it reaches a model, a chat, an MCP client or GitHub.

Each secret is replaced by `[REDACTED:<KIND>]`, so the reader still knows something was there and
what it was. Patterns run in order: private-key blocks (which span lines) first, then tokens with a
recognisable shape (JWTs, GitHub, Google, AWS, Slack, GitLab, Stripe keys), then secrets recognised
by their context (`Authorization:` headers, `Bearer …`, `Cookie:` headers, `user:password@` in
URLs, `password=…` pairs and JSON/YAML `"password": "…"` values), then e-mail addresses.

Where a pattern recognises a secret by its context, the context stays (`password=[REDACTED:…]`);
the secret is always the named group `secret` of the pattern (or one of `secret_dq`/`secret_sq`
for quoted values).

`redact_data` also redacts a whole string value whose *key* names a secret (`{"password": "a b"}`,
`{"client_secret": …}`), because the value alone has no context to recognise it by.
"""

from __future__ import annotations

import re
from typing import Any

# Key names that announce a secret value: `password=…`, `"api_key": …`, `DB_PASSWORD: …`,
# `client_secret=…`. The key must *end* with one of these words, so `secretName: db-creds`
# (the name of a Kubernetes Secret) and `token_type=Bearer` stay readable.
_KEY_WORDS = (
    r"passw(?:or)?d|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key|"
    r"private[_-]?key|credentials?|session[_-]?id|sessid"
)

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "PRIVATE_KEY",
        re.compile(
            r"(?P<secret>-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?"
            r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z))",
            re.DOTALL,
        ),
    ),
    ("JWT", re.compile(r"(?P<secret>\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,})")),
    ("GITHUB_TOKEN", re.compile(r"(?P<secret>\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}))")),
    ("GOOGLE_API_KEY", re.compile(r"(?P<secret>\bAIza[0-9A-Za-z_-]{30,})")),
    ("GOOGLE_OAUTH_TOKEN", re.compile(r"(?P<secret>\bya29\.[0-9A-Za-z_-]{20,})")),
    ("AWS_ACCESS_KEY", re.compile(r"(?P<secret>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)")),
    ("SLACK_TOKEN", re.compile(r"(?P<secret>\bxox[abposr]-[A-Za-z0-9-]{10,})")),
    ("GITLAB_TOKEN", re.compile(r"(?P<secret>\bglpat-[A-Za-z0-9_-]{20,})")),
    ("STRIPE_KEY", re.compile(r"(?P<secret>\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,})")),
    # `Authorization: Basic dXNlcjpwYXNz`, `"authorization": "token abc…"`; a Bearer scheme is left to
    # BEARER_TOKEN below (so callers that treat BEARER_TOKEN as a hard credential keep seeing it).
    (
        "AUTHORIZATION",
        re.compile(
            r"(?i)\b(?:proxy-)?authorization\\?[\"']?\s*[:=]\s*\\?[\"']?"
            r"(?:(?:basic|token|digest|negotiate|apikey)\s+)?+"
            r"(?!\[REDACTED|bearer\s)(?P<secret>[^\s\"',;\\]+)"
        ),
    ),
    # RFC 6750 b64token; `Bearer expires_in=3600` (a key=value pair, not a token) is left alone.
    (
        "BEARER_TOKEN",
        re.compile(r"(?i)\bbearer\s+(?!\[REDACTED)(?P<secret>[A-Za-z0-9._~+/-]{8,}=*)(?![A-Za-z0-9._~+/=-])"),
    ),
    # The whole value of a `Cookie:` / `Set-Cookie:` header (session cookies are credentials).
    (
        "COOKIE",
        re.compile(
            r"(?i)\b(?:set-)?cookie\\?[\"']?\s*[:=]\s*\\?[\"']?(?!\[REDACTED)"
            r"(?P<secret>[^\s\"'\\;]+(?:;\s*[^\s\"'\\;]+)*)"
        ),
    ),
    # user:password@host in URLs (any scheme; the user may be empty as in redis://:pw@host).
    ("URL_PASSWORD", re.compile(r"://[^\s/:@]*:(?P<secret>[^\s/@]+)@")),
    # password=..., "secret": "...", api_key: ..., DB_PASSWORD=..., escaped JSON \"password\":\"...\".
    (
        "SECRET_VALUE",
        re.compile(
            rf"(?i)(?:{_KEY_WORDS})\\?[\"']?\s*[:=]\s*(?!\\?[\"']?\[REDACTED)"
            r"(?:\\?\"(?P<secret_dq>(?:[^\"\\\n]|\\[^\"\n])+)\\?\"|'(?P<secret_sq>[^'\n]+)'"
            r"|(?P<secret>[^\s\"',;&}\\]+))"
        ),
    ),
    # The local part is bounded (RFC 5321: 64 characters) so long runs without '@' stay linear.
    ("EMAIL", re.compile(r"(?P<secret>(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\b")),
]

# Cheap pre-checks: a pattern runs only when the lower-cased text holds one of its substrings.
_HINTS: dict[str, tuple[str, ...]] = {
    "PRIVATE_KEY": ("private key",),
    "JWT": ("eyj",),
    "GITHUB_TOKEN": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "GOOGLE_API_KEY": ("aiza",),
    "GOOGLE_OAUTH_TOKEN": ("ya29.",),
    "AWS_ACCESS_KEY": ("akia", "asia"),
    "SLACK_TOKEN": ("xox",),
    "GITLAB_TOKEN": ("glpat-",),
    "STRIPE_KEY": ("_live_", "_test_"),
    "AUTHORIZATION": ("authorization",),
    "BEARER_TOKEN": ("bearer",),
    "COOKIE": ("cookie",),
    "URL_PASSWORD": ("://",),
    "SECRET_VALUE": ("passw", "passphrase", "pwd", "secret", "token", "key", "credential", "sess"),
    "EMAIL": ("@",),
}

# One search over the lower-cased text decides whether any pattern needs to run at all.
_ANY_HINT = re.compile("|".join(re.escape(hint) for hints in _HINTS.values() for hint in hints))

_SECRET_GROUPS = ("secret", "secret_dq", "secret_sq")

# `redact_data`: a key that names a secret (normalised: lower case, no `_`, `-`, `.`).
_SECRET_KEY = re.compile(
    r"(?:password|passwd|passphrase|pwd|secret|token|apikey|accesskey|secretkey|privatekey|"
    r"credential|credentials|authorization|cookie|sessionid|sessid)$"
)
# Numbers are kept under token-ish keys (`max_tokens: 100`) but not under password-ish keys.
_SECRET_NUMBER_KEY = re.compile(r"(?:password|passwd|passphrase|pwd|secret|pin)$")


def _replacer(kind: str):
    marker = f"[REDACTED:{kind}]"

    def replace(match: re.Match[str]) -> str:
        for group in _SECRET_GROUPS:
            start = match.start(group) if group in match.re.groupindex else -1
            if start >= 0:
                whole = match.group(0)
                offset = match.start()
                return whole[: start - offset] + marker + whole[match.end(group) - offset :]
        return marker

    return replace


_REPLACERS = [(pattern, _replacer(kind), _HINTS[kind]) for kind, pattern in _PATTERNS]


def redact(text: str) -> str:
    """Replace every secret in `text` with `[REDACTED:<KIND>]` (the surrounding context stays)."""
    if not text:
        return text
    lowered = text.lower()
    if _ANY_HINT.search(lowered) is None:
        return text
    for pattern, replace, hints in _REPLACERS:
        for hint in hints:
            if hint in lowered:
                text = pattern.sub(replace, text)
                break
    return text


def _secret_key(key: object, value: object) -> bool:
    if not isinstance(key, str):
        return False
    normalised = key.lower().replace("_", "").replace("-", "").replace(".", "")
    if isinstance(value, str):
        return bool(_SECRET_KEY.search(normalised))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return bool(_SECRET_NUMBER_KEY.search(normalised))
    return False


def redact_data(value: Any) -> Any:
    """Redact every string inside a JSON-like structure.

    Dict keys are kept. A string (or, under a password-like key, a number) whose key names a
    secret (`password`, `client_secret`, `apiKey`, `Authorization`, …) is replaced as a whole by
    `[REDACTED:SECRET_VALUE]`; every other string goes through `redact`.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if _secret_key(key, item) and item != "" and not (isinstance(item, str) and item.startswith("[REDACTED")):
                result[key] = "[REDACTED:SECRET_VALUE]"
            else:
                result[key] = redact_data(item)
        return result
    if isinstance(value, (list, tuple)):
        return [redact_data(item) for item in value]
    return value
