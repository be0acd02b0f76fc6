"""Template mining into signatures and the canary-vs-stable signature diff."""

from __future__ import annotations

import pytest

from tools.logs import KIND_REQUEST, LogEntry, parse_log
from tools.signatures import SignatureMiner, diff_signatures, mask, mine_signatures


def demo_lines(status: int, color: str, n: int, delay: bool = False) -> list[str]:
    suffix = " ({:.6f}s)" if delay else ""
    return [f"2026/01/01 12:{i // 60 % 60:02d}:{i % 60:02d} {status} - {color}" + suffix.format(i / 1000) for i in range(n)]


def entries(lines: list[str]) -> list[LogEntry]:
    return parse_log("\n".join(lines))


# --- masking and mining ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("2026-01-01T12:00:00.123Z boot", "<TIMESTAMP> boot"),
        ("at 12:00:01 and 01/Jan/2026:12:00:00 +0000", "at <TIMESTAMP> and <TIMESTAMP>"),
        ("id 123e4567-e89b-12d3-a456-426614174000 done", "id <UUID> done"),
        ("id f23e4567-e89b-12d3-a456-426614174000 done", "id <UUID> done"),
        ("from 10.244.0.1:53422 and [::1]:8080", "from <IP> and <IP>"),
        ("ptr 0xc0001b4000 sha 9f86d081884c hash b6c5d7f8e1", "ptr <HEX> sha <HEX> hash <HEX>"),
        ("took 150ms, then 2.5s and 1m2s", "took <DURATION>, then <DURATION> and <DURATION>"),
        ("heap_alloc=3.1MiB sys=512MB read 100B / 10 KB / 1024 bytes", "heap_alloc=<SIZE> sys=<SIZE> read <SIZE> / <SIZE> / <SIZE>"),
        ('user "alice" and \'bob\' can\'t', "user <STR> and <STR> can't"),
        ("count=1234 ratio 0.75 item 7", "count=<NUM> ratio <NUM> item <NUM>"),
        ("500 - red", "500 - red"),  # three-digit integers (HTTP statuses) stay
        ("index out of range [5] with length 3", "index out of range [<NUM>] with length <NUM>"),
        ("pod canary-demo-7d9f8b6c5-x2x4z v1.2.3", "pod canary-demo-<HEX>-x2x4z v1.2.3"),
        ("nothing to mask here", "nothing to mask here"),
        ("cart=c879351 order_id=ORD-9AVMNJ sku=SKU-13393", "cart=<ID> order_id=<ID> sku=SKU-<NUM>"),
        ("sha256 utf8 amd64 v2 base64", "sha256 utf8 amd64 v2 base64"),  # short words with digits stay
    ],
)
def test_mask(text: str, masked: str) -> None:
    assert mask(text) == masked


def test_variable_parts_share_one_signature() -> None:
    lines = [
        f"2026/01/01 12:00:00 cache refresh took {ms}ms for key user-{uid} from 10.0.0.{ms % 250}"
        for ms, uid in [(12, 1), (250, 77), (3, 123456), (999, 42)]
    ]
    sigs = mine_signatures(entries(lines))
    assert len(sigs) == 1
    assert sigs[0].count == 4
    assert sigs[0].template.startswith("cache refresh took <DURATION> for key")
    assert sigs[0].kind == "go_log"


def test_statuses_are_never_merged() -> None:
    sigs = mine_signatures(entries(demo_lines(200, "blue", 50) + demo_lines(500, "blue", 20)))
    templates = {s.template: s for s in sigs}
    assert set(templates) == {"200 - blue", "500 - blue"}
    assert templates["500 - blue"].is_error and templates["500 - blue"].status == 500
    assert not templates["200 - blue"].is_error
    assert [s.template for s in sigs] == ["200 - blue", "500 - blue"]  # most frequent first


def test_tracebacks_with_different_frames_share_the_headline_signature() -> None:
    text = "\n".join(
        f'Traceback (most recent call last):\n  File "/app/main.py", line {n}, in handler\n'
        f"    do()\nKeyError: 'user_{n}'"
        for n in (10, 20, 30)
    )
    sigs = mine_signatures(parse_log(text))
    assert len(sigs) == 1
    assert sigs[0].template == "KeyError: <STR>"
    assert sigs[0].kind == "python_traceback"
    assert sigs[0].level == "error" and sigs[0].is_error
    assert sigs[0].example.startswith("Traceback (most recent call last):")


def test_same_template_same_id_in_both_roles() -> None:
    miner = SignatureMiner()
    stable_id = miner.add(LogEntry(None, "connected to db in 12ms"), "stable")
    canary_id = miner.add(LogEntry(None, "connected to db in 40ms"), "canary")
    assert stable_id == canary_id
    [sig] = miner.signatures()
    assert sig.counts == {"stable": 1, "canary": 1}
    assert miner.entries("stable") == 1 and miner.entries("canary") == 1
    assert miner.roles == ["stable", "canary"]


def test_examples_and_templates_are_redacted() -> None:
    secret_lines = [
        "2026/01/01 12:00:00 login failed for alice@example.com password=hunter2 token=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "2026/01/01 12:00:01 login failed for bob@example.org password=s3cret! token=ghp_zyxwvutsrqponmlkjihgfedcba9876543210",
        '{"level":"error","msg":"auth","authorization":"Bearer abcdefghijklmnop123","key":"AIzaSyA1234567890abcdefghijklmnopqrstu"}',
    ]
    miner = SignatureMiner()
    miner.add_all(entries(secret_lines), "canary")
    rendered = " ".join(s.template + " " + s.example for s in miner.signatures())
    rendered += " ".join(c.template + " " + c.example for c in miner.diff().ranked())
    for secret in ("alice@example.com", "bob@example.org", "hunter2", "s3cret", "ghp_", "abcdefghijklmnop123", "AIza"):
        assert secret not in rendered
    assert "[REDACTED:" in rendered


def test_example_is_truncated_after_redaction() -> None:
    miner = SignatureMiner(max_example_chars=40)
    miner.add(LogEntry(None, "x" * 30 + " password=supersecretvalue " + "y" * 50), "stable")
    [sig] = miner.signatures()
    assert len(sig.example) == 40 and sig.example.endswith("…")
    assert "supersecret" not in sig.example


# --- the diff ----------------------------------------------------------------------------------


def test_diff_new_grown_vanished_with_p_values() -> None:
    stable = (
        demo_lines(200, "blue", 1000)
        + demo_lines(500, "blue", 10)
        + ["2026/01/01 12:00:00 cache warmed in 15ms"] * 20
    )
    canary = (
        demo_lines(200, "green", 900)
        + demo_lines(500, "blue", 100)
        + ["2026/01/01 12:00:00 cache warmed in 21ms"] * 20
        + ["2026/01/01 12:00:00 ERROR: config key FEATURE_X missing"] * 10
    )
    diff = diff_signatures(entries(stable), entries(canary))
    assert diff.stable_entries == 1030 and diff.canary_entries == 1030
    new = {c.template: c for c in diff.new}
    grown = {c.template: c for c in diff.grown}
    vanished = {c.template: c for c in diff.vanished}
    assert set(new) == {"200 - green", "ERROR: config key FEATURE_X missing"}
    assert set(grown) == {"500 - blue"}
    assert set(vanished) == {"200 - blue"}
    error = new["ERROR: config key FEATURE_X missing"]
    assert error.stable_count == 0 and error.canary_count == 10
    assert error.p_value == pytest.approx(0.5**10)
    assert error.is_error and error.level == "error"
    g = grown["500 - blue"]
    assert (g.stable_count, g.canary_count) == (10, 100)
    assert g.rate_ratio == pytest.approx(10.0)
    assert g.stable_rate == pytest.approx(1000 * 10 / 1030)
    assert g.p_value < 1e-15 and g.significant
    v = vanished["200 - blue"]
    assert v.canary_count == 0 and v.p_value == pytest.approx(0.5**1000)
    assert v.example.endswith("200 - blue")
    # The unchanged signature is in none of the lists.
    assert "cache warmed in <DURATION>" not in new | grown | vanished
    # The error outranks the new info line; new before grown within a tier follows the tiers.
    assert diff.new[0].template == "ERROR: config key FEATURE_X missing"
    assert [c.template for c in diff.ranked()][:2] == ["ERROR: config key FEATURE_X missing", "500 - blue"]
    assert diff.ranked()[-1].change == "vanished"


def test_small_or_insignificant_growth_is_not_grown() -> None:
    stable = demo_lines(200, "blue", 1000) + demo_lines(500, "blue", 10)
    canary = demo_lines(200, "blue", 1000) + demo_lines(500, "blue", 14)  # +40 %: below min_ratio
    assert diff_signatures(entries(stable), entries(canary)).grown == []
    stable = demo_lines(200, "blue", 1000) + demo_lines(500, "blue", 1)
    canary = demo_lines(200, "blue", 1000) + demo_lines(500, "blue", 2)  # x2 but two occurrences
    assert diff_signatures(entries(stable), entries(canary)).grown == []


def test_rates_are_per_thousand_entries_of_each_role() -> None:
    stable = demo_lines(200, "blue", 4000) + demo_lines(503, "blue", 40)
    canary = demo_lines(200, "blue", 1000) + demo_lines(503, "blue", 40)  # same count, 4x the rate
    diff = diff_signatures(entries(stable), entries(canary))
    [grown] = diff.grown
    assert grown.stable_rate == pytest.approx(1000 * 40 / 4040)
    assert grown.canary_rate == pytest.approx(1000 * 40 / 1040)
    assert grown.significant


def test_rare_canary_only_error_ranks_above_common_new_info_lines() -> None:
    # 100k entries per role; the canary prints a new, very common info line and 30 panics.
    blue = LogEntry(None, "2026/01/01 12:00:00 200 - blue", status=200, kind=KIND_REQUEST, message="200 - blue")
    green = LogEntry(None, "2026/01/01 12:00:00 200 - green", status=200, kind=KIND_REQUEST, message="200 - green")
    started = LogEntry(None, "feature flags loaded: 12", level="info")
    panic_text = (
        "2026/01/01 12:00:00 http: panic serving 10.244.0.{n}:5{n}: runtime error: index out of range [4] with length 4\n"
        "goroutine {n} [running]:\nmain.colorHandler(0xc000{n})\n\t/app/main.go:88 +0x1c"
    )
    panics = parse_log("\n".join(panic_text.format(n=n) for n in range(30)))
    assert len(panics) == 30
    stable = [blue] * 100_000
    canary = [blue] * 60_000 + [green] * 39_970
    canary[5_000:5_000] = panics
    canary.append(started)
    diff = diff_signatures(stable, canary)
    top = diff.ranked()[0]
    assert top.change == "new"
    assert top.canary_count == 30
    assert top.kind == "go_panic"
    assert top.template.startswith("http: panic serving <IP>: runtime error: index out of range")
    assert top.template.endswith("in main.colorHandler")
    assert top.significant and top.p_value < 1e-8
    assert [c.template for c in diff.new][1:] == ["200 - green", "feature flags loaded: <NUM>"]
    assert top.importance > diff.new[1].importance


def test_importance_orders_traces_before_errors_before_warnings_before_info() -> None:
    stable = [LogEntry(None, "steady state")] * 1000
    canary = (
        [LogEntry(None, "steady state")] * 1000
        + [LogEntry(None, "INFO new banner", level="info")] * 500
        + [LogEntry(None, "WARN disk 91% full", level="warn")] * 50
        + [LogEntry(None, "ERROR db timeout", level="error")] * 5
        + parse_log("panic: boom\ngoroutine 1 [running]:\nmain.main()")
    )
    diff = diff_signatures(stable, canary)
    assert [c.template for c in diff.new] == ["panic: boom in main.main", "ERROR db timeout", "WARN disk <NUM>% full", "INFO new banner"]
    importances = [c.importance for c in diff.new]
    assert importances == sorted(importances, reverse=True)


def test_diff_with_an_empty_role_and_limit() -> None:
    miner = SignatureMiner()
    miner.add_all(entries(demo_lines(200, "blue", 10) + demo_lines(500, "red", 5)), "stable")
    diff = miner.diff()
    assert diff.canary_entries == 0
    assert {c.template for c in diff.vanished} == {"200 - blue", "500 - red"}
    assert all(c.canary_rate == 0.0 for c in diff.vanished)
    assert len(miner.diff(limit=1).vanished) == 1
    assert SignatureMiner().diff().signatures == 0


def test_signatures_of_one_role_prefer_that_roles_example() -> None:
    miner = SignatureMiner()
    miner.add(LogEntry(None, "request took 10ms"), "stable")
    miner.add(LogEntry(None, "request took 99ms"), "canary")
    [sig] = miner.signatures("canary")
    assert sig.example == "request took 99ms"
    assert miner.signatures("nobody") == []


def test_signature_of_looks_up_without_counting() -> None:
    miner = SignatureMiner()
    known = miner.add(LogEntry(None, "request took 10ms"), "stable")
    assert miner.signature_of(LogEntry(None, "request took 10ms")) == known  # same text
    assert miner.signature_of(LogEntry(None, "request took 75ms")) == known  # same masked text
    assert miner.signature_of(LogEntry(None, "something else entirely")) is None
    assert miner.signatures()[0].count == 1


def test_tap_counts_while_streaming() -> None:
    miner = SignatureMiner()
    passed = list(miner.tap(iter(entries(demo_lines(200, "blue", 5) + demo_lines(500, "blue", 2))), "canary"))
    assert len(passed) == 7
    assert miner.entries("canary") == 7
    assert {s.template: s.count for s in miner.signatures()} == {"200 - blue": 5, "500 - blue": 2}


def test_tiny_caches_give_the_same_signatures() -> None:
    lines = [f"2026/01/01 12:00:00 job {i} took {i % 7}ms on node-{i % 3}" for i in range(300)]
    lines += demo_lines(200, "blue", 50) + demo_lines(500, "blue", 5)
    small, large = SignatureMiner(cache_size=4), SignatureMiner()
    for miner in (small, large):
        miner.add_all(entries(lines), "stable")
    assert [(s.template, s.count) for s in small.signatures()] == [(s.template, s.count) for s in large.signatures()]
    assert len(small._raw) <= 4 and len(small._masked) <= 4
