"""Redaction of every secret kind, and no damage to ordinary log lines."""

from __future__ import annotations

import json

import pytest

from tools.logs import parse_log
from tools.redaction import redact, redact_data
from tools.signatures import SignatureMiner

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM_BODY = "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2Bcq8kW5\nq8Hw9ZkLmYxUw0bF7e1J2c4d5Ee6Ff7Gg8Hh9Ii0Jj1Kk2"

# (kind, text, the secret that must disappear)
SECRETS = [
    ("BEARER_TOKEN", "calling api with bearer abcDEF123456ghiJKL", "abcDEF123456ghiJKL"),
    ("BEARER_TOKEN", "Authorization: Bearer s3cr3tT0ken-value.123", "s3cr3tT0ken-value.123"),
    ("AUTHORIZATION", "headers={'Authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", "dXNlcjpwYXNzd29yZA=="),
    ("AUTHORIZATION", '{"authorization":"token abcdef0123456789"}', "abcdef0123456789"),
    ("JWT", f"session {JWT} accepted", JWT),
    ("JWT", f"Authorization: Bearer {JWT}", JWT),
    ("GOOGLE_API_KEY", "GOOGLE_API_KEY=AIzaSyD-1234567890abcdefghijklmnopqrstu", "AIzaSyD-1234567890abcdefghijklmnopqrstu"),
    ("GOOGLE_API_KEY", "url=https://x.googleapis.com/v1?key=AIzaSyA1234567890abcdefghijklmnopqrstu", "AIzaSyA1234567890"),
    ("GITHUB_TOKEN", "pushing with ghp_1234567890abcdefghijABCDEFGHIJ123456", "ghp_1234567890abcdefghijABCDEFGHIJ123456"),
    ("GITHUB_TOKEN", "oauth gho_1234567890abcdefghijABCDEFGHIJ123456 ok", "gho_1234567890abcdefghij"),
    (
        "GITHUB_TOKEN",
        "github_pat_11AAAAAAA0aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb used",
        "github_pat_11AAAAAAA0",
    ),
    ("AWS_ACCESS_KEY", "aws_access_key_id AKIAIOSFODNN7EXAMPLE loaded", "AKIAIOSFODNN7EXAMPLE"),
    ("AWS_ACCESS_KEY", "temporary ASIAY34FZKBOKMUTVV7A creds", "ASIAY34FZKBOKMUTVV7A"),
    ("SECRET_VALUE", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("URL_PASSWORD", "connecting to postgres://app:Pa55w0rd!@db.internal:5432/orders", "Pa55w0rd!"),
    ("URL_PASSWORD", "redis://:cache-secret@redis:6379/0", "cache-secret"),
    ("URL_PASSWORD", "amqp://guest:guest123@rabbit:5672/", "guest123"),
    ("SECRET_VALUE", "login password=hunter2 user=bob", "hunter2"),
    ("SECRET_VALUE", "DB_PASSWORD: 'correct horse battery staple'", "horse battery"),
    ("SECRET_VALUE", "PGPASSWORD=xyzzy42 psql -h db", "xyzzy42"),
    ("SECRET_VALUE", '{"user": "bob", "password": "correct horse battery staple"}', "horse battery"),
    ("SECRET_VALUE", '{\\"password\\":\\"esc aped\\"}', "esc aped"),
    ("SECRET_VALUE", "client_secret: abc123def456", "abc123def456"),
    ("SECRET_VALUE", "api_key=k-1234567890", "k-1234567890"),
    ("SECRET_VALUE", "X-Api-Key: 0123456789abcdef", "0123456789abcdef"),
    ("SECRET_VALUE", "token: tok_live_abcdef", "tok_live_abcdef"),
    ("PRIVATE_KEY", f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----", "MIIEpAIBAAKCAQEA"),
    ("PRIVATE_KEY", f"key:\n-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\nnext", "q8Hw9ZkLm"),
    ("PRIVATE_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n", "b3BlbnNzaC1rZXk"),
    ("PRIVATE_KEY", '{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADAN\\n-----END PRIVATE KEY-----\\n"}', "MIIEvQIBADAN"),
    ("EMAIL", "sent reset link to jane.doe+test@example.co.uk", "jane.doe+test@example.co.uk"),
    ("COOKIE", "headers: Cookie: theme=dark; sid=s%3Aabc123def", "sid=s%3Aabc123def"),
    ("COOKIE", 'Set-Cookie="sessionid=9f8e7d6c5b4a; Path=/; HttpOnly"', "9f8e7d6c5b4a"),
    ("SECRET_VALUE", "resumed session_id=Zx81Kq2 for user", "Zx81Kq2"),
    ("SLACK_TOKEN", "slack xoxb-123456789012-1234567890123-abcdefghij", "xoxb-123456789012"),
    ("GITLAB_TOKEN", "glpat-abcdefghij1234567890 ok", "glpat-abcdefghij1234567890"),
    ("STRIPE_KEY", "stripe sk_live_abcdefghijklmnop1234", "sk_live_abcdefghijklmnop1234"),
]


@pytest.mark.parametrize(("kind", "text", "secret"), SECRETS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(SECRETS)])
def test_each_secret_kind_is_redacted(kind: str, text: str, secret: str) -> None:
    redacted = redact(text)
    assert secret not in redacted
    assert f"[REDACTED:{kind}]" in redacted


def test_context_stays_readable() -> None:
    assert redact("login password=hunter2 user=bob") == "login password=[REDACTED:SECRET_VALUE] user=bob"
    assert redact("postgres://app:pw@db:5432/x") == "postgres://app:[REDACTED:URL_PASSWORD]@db:5432/x"
    assert redact('{"password": "a b"}') == '{"password": "[REDACTED:SECRET_VALUE]"}'
    assert redact("Authorization: Basic dXNlcjpwYXNz") == "Authorization: Basic [REDACTED:AUTHORIZATION]"
    assert redact("begin\n-----BEGIN EC PRIVATE KEY-----\nAAA\n-----END EC PRIVATE KEY-----\nend") == (
        "begin\n[REDACTED:PRIVATE_KEY]\nend"
    )


def test_redaction_is_idempotent() -> None:
    for _, text, _ in SECRETS:
        once = redact(text)
        assert redact(once) == once


ORDINARY = [
    "2026/01/01 12:00:00 200 - blue",
    "2026/01/01 12:00:00 500 - red (2.000000s)",
    "2026-01-01T12:00:00.123456789Z 2026/01/01 12:00:00 200 - blue",
    '10.0.0.1 - - [01/Jan/2026:12:00:00 +0000] "GET /api/v1/users/123?page=2&sort=asc HTTP/1.1" 200 612 "-" "curl/8.5"',
    "GET /oauth/token 200 15ms",
    "GET /api/keys/42 404",
    "request took 2.01s (p99 150ms, 250µs overhead)",
    "trace 123e4567-e89b-12d3-a456-426614174000 span 00f067aa0ba902b7",
    "pod canary-demo-7d9f8b6c5-x2x4z in namespace demo-bad is Running",
    "image argoproj/rollouts-demo:blue@sha256:0123456789abcdef0123456789abcdef",
    "secretName: db-credentials not found",
    "token_type=Bearer expires_in=3600",
    'pq: password authentication failed for user "app"',
    "max_tokens 4096, tokens used 1200",
    "keyboard layout us; monkey patching disabled",
    "http: panic serving 10.244.0.1:53422: runtime error: invalid memory address or nil pointer dereference",
    "level=info msg=\"cache warmed\" duration=1.5s",
    "connecting to http://orders.demo.svc.cluster.local:8080/health",
    "cookie consent banner shown to 12 visitors",
    "session started for tenant t-42 (3 sessions open)",
]


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_lines_are_not_mangled(line: str) -> None:
    assert redact(line) == line


def test_redact_data_keys_and_nesting() -> None:
    data = {
        "password": "correct horse battery staple",
        "clientSecret": "abc",
        "Authorization": "Basic dXNlcjpwYXNz",
        "pin": 1234,
        "secretName": "db-creds",
        "max_tokens": 100,
        "token_type": "Bearer",
        "empty_password": "",
        "nested": [{"apiKey": "k"}, ("mail bob@example.com",)],
        "count": 3,
        "ok": True,
    }
    redacted = redact_data(data)
    assert redacted == {
        "password": "[REDACTED:SECRET_VALUE]",
        "clientSecret": "[REDACTED:SECRET_VALUE]",
        "Authorization": "[REDACTED:SECRET_VALUE]",
        "pin": "[REDACTED:SECRET_VALUE]",
        "secretName": "db-creds",
        "max_tokens": 100,
        "token_type": "Bearer",
        "empty_password": "",
        "nested": [{"apiKey": "[REDACTED:SECRET_VALUE]"}, ["mail [REDACTED:EMAIL]"]],
        "count": 3,
        "ok": True,
    }
    json.dumps(redacted)
    assert redact("") == "" and redact_data(None) is None


def test_no_secret_survives_log_parsing_and_signature_mining() -> None:
    """Every secret kind, printed by a canary, is absent from every template and example."""
    lines = []
    for i, (_, text, _) in enumerate(SECRETS):
        for line in text.split("\n"):
            lines.append(f"2026-01-01T12:00:{i:02d}Z {line}")
    miner = SignatureMiner()
    miner.add_all(parse_log("\n".join(lines)), "canary")
    miner.add_all(parse_log("2026/01/01 12:00:00 200 - blue"), "stable")
    diff = miner.diff()
    rendered = json.dumps([s.model_dump() for s in miner.signatures()]) + diff.model_dump_json()
    for _, _, secret in SECRETS:
        assert secret not in rendered
        assert json.dumps(secret)[1:-1] not in rendered
