"""The plugin contract: answers decode under the Go client's types, and requests validate."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from contract.go_decoder import GoDecoder
from selfheal.contract import AnalyzeRequest, AnalyzeResponse, ModelResult, go_decode_error, plugin_request


@pytest.fixture(scope="session")
def go_decoder(tmp_path_factory) -> GoDecoder:
    return GoDecoder.build(tmp_path_factory.mktemp("go"))


GOOD = AnalyzeResponse(
    analysis="Canary answers 85% of requests with HTTP 500.",
    rootCause="HTTP 500 from the canary image",
    remediation="Abort and roll back.",
    promote=False,
    confidence=92,
    modelResults=[
        ModelResult(modelName="runbook", analysis="a", rootCause="b", remediation="c", promote=False,
                    confidence=92, executionTimeMs=1234),
        ModelResult(modelName="gemini-2.5-flash", executionTimeMs=15, error="timed out"),
    ],
    votingRationale="1 valid vote",
)

BAD_BODIES = [
    '{"promote": true, "confidence": 85.0}',
    '{"promote": "true", "confidence": 85}',
    '{"promote": false, "confidence": "85"}',
    '{"promote": false, "confidence": 1e2}',
    '{"promote": false, "confidence": 80, "modelResults": [{"modelName": "m", "executionTimeMs": 12.5}]}',
    '{"promote": false, "confidence": 80, "modelResults": {"modelName": "m"}}',
    '{"promote": false, "analysis": 3}',
    '[{"promote": false}]',
    'not json',
]


def test_wire_answers_decode_in_go(go_decoder: GoDecoder) -> None:
    answers = [
        GOOD.wire(),
        AnalyzeResponse(analysis="ok", promote=True, confidence=97.6).wire(),  # float confidence is rounded
        AnalyzeResponse(analysis="judge only", promote=False, confidence=0, prLink="https://github.com/o/r/issues/1").wire(),
    ]
    for answer in answers:
        assert isinstance(answer["promote"], bool)
        assert isinstance(answer["confidence"], int)
        assert "null" not in json.dumps(answer)
    results = go_decoder.decode(answers)
    assert [r["ok"] for r in results] == [True, True, True], results
    assert results[0]["models"] == 2 and results[0]["confidence"] == 92
    assert results[1]["promote"] is True and results[1]["confidence"] == 98


def test_python_mirror_agrees_with_go(go_decoder: GoDecoder) -> None:
    bodies = [json.dumps(GOOD.wire()), '{"promote": false, "confidence": null}', '{"extra": {"x": 1}}'] + BAD_BODIES
    results = go_decoder.decode(bodies)
    for body, result in zip(bodies, results):
        python_error = go_decode_error(body)
        assert result["ok"] == (python_error is None), (body, result, python_error)


def test_bad_bodies_fail_in_go(go_decoder: GoDecoder) -> None:
    assert not any(result["ok"] for result in go_decoder.decode(BAD_BODIES))


def test_plugin_request_validates_and_ignores_unknown_fields() -> None:
    body = plugin_request("demo-bad", "canary-demo", extra="look at checkout", repo_url="https://github.com/o/r",
                          base_branch="main")
    assert body["prompt"].endswith("\n\nAdditional context: look at checkout")
    body["context"]["unknown"] = "ignored"
    body["somethingElse"] = 1
    request = AnalyzeRequest.model_validate(body)
    assert request.context.rolloutName == "canary-demo"
    assert request.memory_key == "rollout:demo-bad/canary-demo"


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda b: b.pop("context"), "context"),
        (lambda b: b["context"].pop("namespace"), "context.namespace"),
        (lambda b: b["context"].update(namespace="Bad_NS"), "context.namespace"),
        (lambda b: b["context"].update(rolloutName=""), "context.rolloutName"),
        (lambda b: b["context"].update(canarySelector=7), "context.canarySelector"),
        (lambda b: b["context"].update(canarySelector="role=canary; rm -rf"), "context.canarySelector"),
        (lambda b: b["context"].update(stableSelector="app in (web"), "context.stableSelector"),
        (lambda b: b["context"].update(namespace="n" * 64), "context.namespace"),
    ],
)
def test_invalid_requests_name_the_field(mutate, field) -> None:
    body = plugin_request("demo", "canary-demo")
    mutate(body)
    with pytest.raises(ValidationError) as info:
        AnalyzeRequest.model_validate(body)
    locations = {".".join(str(p) for p in error["loc"]) for error in info.value.errors()}
    assert field in locations


def test_settings_refuse_what_would_break_every_analysis(monkeypatch) -> None:
    from selfheal.config import Settings

    monkeypatch.setenv("SELFHEAL_PUBLIC_URL", "http://selfheal:8080/prefix")
    with pytest.raises(ValidationError, match="no path"):
        Settings()
    monkeypatch.setenv("SELFHEAL_PUBLIC_URL", "https://selfheal.example.com")
    monkeypatch.setenv("SELFHEAL_MODELS", "runbook")
    monkeypatch.setenv("SELFHEAL_QUORUM", "2")
    with pytest.raises(ValidationError, match="SELFHEAL_QUORUM=2 needs more models"):
        Settings()
