"""Parsing of each log format, multi-line folding, and the per-pod / per-role statistics."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tools.logs import (
    KIND_ACCESS,
    KIND_ENVOY,
    KIND_GO_LOG,
    KIND_GO_PANIC,
    KIND_JAVA_EXCEPTION,
    KIND_JSON,
    KIND_KLOG,
    KIND_LOGFMT,
    KIND_PYTHON_TRACEBACK,
    KIND_REQUEST,
    KIND_TEXT,
    MAX_ENTRY_LINES,
    LogEntry,
    LogStats,
    merge_stats,
    normalize_level,
    parse_duration_ms,
    parse_lines,
    parse_log,
    summarize,
)


def one(text: str) -> LogEntry:
    entries = parse_log(text)
    assert len(entries) == 1, entries
    return entries[0]


# --- rollouts-demo and Go log lines ------------------------------------------------------------


def test_rollouts_demo_request_line() -> None:
    entry = one("2026/01/01 12:00:00 200 - blue")
    assert entry.kind == KIND_REQUEST
    assert entry.status == 200
    assert entry.latency_ms is None
    assert entry.level is None
    assert entry.message == "200 - blue"
    assert entry.timestamp == datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def test_rollouts_demo_slow_error_line_with_kubectl_timestamp() -> None:
    entry = one("2026-01-01T12:00:05.123456789Z 2026/01/01 12:00:05 500 - red (2.000000s)")
    assert entry.kind == KIND_REQUEST
    assert entry.status == 500
    assert entry.latency_ms == pytest.approx(2000.0)
    # The kubectl timestamp wins over the logger's own date (nanoseconds truncated to micro).
    assert entry.timestamp == datetime(2026, 1, 1, 12, 0, 5, 123456, tzinfo=timezone.utc)
    assert entry.text == "2026/01/01 12:00:05 500 - red (2.000000s)"


def test_go_log_lines_and_levels() -> None:
    entries = parse_log(
        "2026/01/01 12:00:00 Started server on :8080\n"
        "2026/01/01 12:00:01.250000 ERROR: could not reach db\n"
        "2026/01/01 12:00:02 [warn] 31#31: upstream slow\n"
        "2026/01/01 12:00:03 error: config missing\n"
    )
    assert [e.kind for e in entries] == [KIND_GO_LOG] * 4
    assert [e.level for e in entries] == [None, "error", "warn", "error"]
    assert entries[0].message == "Started server on :8080"
    assert entries[1].timestamp == datetime(2026, 1, 1, 12, 0, 1, 250000, tzinfo=timezone.utc)
    assert all(e.status is None for e in entries)


def test_go_http_panic_trace_is_one_entry() -> None:
    text = (
        "2026-01-01T12:00:00Z 2026/01/01 12:00:00 http: panic serving 10.244.0.1:53422: runtime error: "
        "invalid memory address or nil pointer dereference\n"
        "2026-01-01T12:00:00Z goroutine 35 [running]:\n"
        "2026-01-01T12:00:00Z net/http.(*conn).serve.func1()\n"
        "2026-01-01T12:00:00Z \t/usr/local/go/src/net/http/server.go:1868 +0xb9\n"
        "2026-01-01T12:00:00Z panic({0x6b8f40?, 0x9b4b50?})\n"
        "2026-01-01T12:00:00Z \t/usr/local/go/src/runtime/panic.go:920 +0x270\n"
        "2026-01-01T12:00:00Z main.(*api).color({0x7a1e38, 0xc0001b4000}, 0xc0001a2000)\n"
        "2026-01-01T12:00:00Z \t/app/main.go:42 +0x1c\n"
        "2026-01-01T12:00:00Z net/http.HandlerFunc.ServeHTTP(...)\n"
        "2026-01-01T12:00:00Z created by net/http.(*Server).Serve in goroutine 1\n"
        "2026-01-01T12:00:00Z \t/usr/local/go/src/net/http/server.go:3086 +0x5cb\n"
        "2026-01-01T12:00:01Z 2026/01/01 12:00:01 200 - blue\n"
    )
    entries = parse_log(text)
    assert [e.kind for e in entries] == [KIND_GO_PANIC, KIND_REQUEST]
    panic = entries[0]
    assert panic.lines == 11
    assert panic.level == "error"
    assert panic.is_trace
    assert "goroutine 35 [running]:" in panic.text
    assert panic.message.startswith("http: panic serving 10.244.0.1:53422: runtime error: invalid memory address")
    assert panic.message.endswith(" in main.(*api).color")


def test_go_fatal_panic_with_blank_lines() -> None:
    entries = parse_log(
        "panic: assignment to entry in nil map\n"
        "\n"
        "goroutine 1 [running]:\n"
        "main.loadConfig(...)\n"
        "\t/app/config.go:17\n"
        "main.main()\n"
        "\t/app/main.go:9 +0x2c\n"
        "exit status 2\n"
        "starting again\n"
    )
    assert [e.kind for e in entries] == [KIND_GO_PANIC, KIND_TEXT]
    assert entries[0].lines == 7  # blank lines are not counted
    assert entries[0].level == "fatal"
    assert entries[0].message == "panic: assignment to entry in nil map in main.loadConfig"


# --- access logs -------------------------------------------------------------------------------


def test_nginx_combined_with_request_time() -> None:
    entry = one(
        '10.0.0.1 - - [01/Jan/2026:12:00:00 +0100] "GET /api/users/42?token=abc HTTP/1.1" 502 157 '
        '"-" "curl/8.5.0" 0.123'
    )
    assert entry.kind == KIND_ACCESS
    assert entry.status == 502
    assert entry.latency_ms == pytest.approx(123.0)
    assert entry.message == "GET /api/users/42 502"  # query string left out
    assert entry.timestamp == datetime(2026, 1, 1, 11, 0, 0, tzinfo=timezone.utc)


def test_apache_common_log() -> None:
    entry = one('127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326')
    assert entry.kind == KIND_ACCESS
    assert entry.status == 200
    assert entry.latency_ms is None
    assert entry.timestamp == datetime(2000, 10, 10, 20, 55, 36, tzinfo=timezone.utc)


def test_apache_combined_with_microseconds_and_host_name_client() -> None:
    entry = one(
        'client.example - - [10/Oct/2000:13:55:36 +0000] "POST /login HTTP/1.1" 404 - '
        '"http://ref/" "Mozilla/5.0 (X11)" 2500'
    )
    assert entry.kind == KIND_ACCESS
    assert entry.status == 404
    assert entry.latency_ms == pytest.approx(2.5)  # %D microseconds


def test_uvicorn_access_log() -> None:
    entry = one('INFO:     10.0.0.1:54321 - "GET /orders/7?expand=items HTTP/1.1" 503 Service Unavailable')
    assert entry.kind == KIND_ACCESS
    assert entry.status == 503
    assert entry.level == "info"
    assert entry.message == "GET /orders/7 503"


def test_envoy_default_access_log() -> None:
    entry = one(
        '[2026-01-01T12:00:00.000Z] "GET /color HTTP/1.1" 200 - 0 12 35 34 "-" "Go-http-client/1.1" '
        '"5b1d4b3f-4c5a-4b8e-9d3c-1a2b3c4d5e6f" "canary-demo" "127.0.0.1:8080"'
    )
    assert entry.kind == KIND_ENVOY
    assert entry.status == 200
    assert entry.latency_ms == 35.0
    assert entry.message == "GET /color 200"
    assert entry.timestamp == datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_istio_proxy_access_log() -> None:
    entry = one(
        '[2026-01-01T12:00:00.000Z] "GET /color HTTP/1.1" 503 UF upstream_reset_before_response_started{connection_failure} '
        '- "-" 0 91 25 - "-" "curl/8" "abc" "canary-demo" "10.0.0.2:8080" outbound|80||canary-demo 10.0.0.3:40000 '
        '10.0.0.4:80 10.0.0.5:50000 - default'
    )
    assert entry.kind == KIND_ENVOY
    assert entry.status == 503
    assert entry.latency_ms == 25.0
    assert entry.message.startswith("GET /color 503 UF upstream_reset")


def test_envoy_status_zero_is_not_an_http_status() -> None:
    entry = one('[2026-01-01T12:00:00.000Z] "- - -" 0 UF 0 0 1 - "-" "-" "-" "-" "10.0.0.2:8080"')
    assert entry.kind == KIND_ENVOY
    assert entry.status is None


# --- tracebacks --------------------------------------------------------------------------------


def test_python_traceback_is_one_entry() -> None:
    entries = parse_log(
        "INFO:app:starting\n"
        "Traceback (most recent call last):\n"
        '  File "/app/main.py", line 10, in <module>\n'
        "    main()\n"
        '  File "/app/main.py", line 7, in main\n'
        '    config["db"]\n'
        "KeyError: 'db'\n"
        "INFO:app:stopped\n"
    )
    assert [e.kind for e in entries] == [KIND_TEXT, KIND_PYTHON_TRACEBACK, KIND_TEXT]
    trace = entries[1]
    assert trace.lines == 6
    assert trace.level == "error"
    assert trace.message == "KeyError: 'db'"
    assert entries[0].level == "info"


def test_python_chained_traceback_keeps_the_last_exception() -> None:
    entry = one(
        "Traceback (most recent call last):\n"
        '  File "a.py", line 1, in f\n'
        "ValueError: bad value\n"
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "a.py", line 3, in g\n'
        "RuntimeError: could not load config\n"
    )
    assert entry.kind == KIND_PYTHON_TRACEBACK
    assert entry.lines == 7
    assert entry.message == "RuntimeError: could not load config"


def test_java_stack_trace_with_caused_by_is_one_entry() -> None:
    entries = parse_log(
        'Exception in thread "main" java.lang.IllegalStateException: Failed to start\n'
        "\tat com.example.App.run(App.java:12)\n"
        "\tat com.example.App.main(App.java:5)\n"
        "Caused by: java.sql.SQLException: Connection refused\n"
        "\tat com.example.Db.connect(Db.java:40)\n"
        "\t... 2 more\n"
        "2026-01-01 12:00:00.000  INFO 1 --- [main] c.e.App : retrying\n"
    )
    assert [e.kind for e in entries] == [KIND_JAVA_EXCEPTION, KIND_TEXT]
    trace = entries[0]
    assert trace.lines == 6
    assert trace.level == "error"
    assert trace.message == (
        'Exception in thread "main" java.lang.IllegalStateException: Failed to start'
        " | Caused by: java.sql.SQLException: Connection refused"
    )
    assert entries[1].level == "info"
    assert entries[1].timestamp == datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_java_exception_after_a_log_line() -> None:
    entries = parse_log(
        "2026-01-01 12:00:00.000 ERROR 1 --- [main] o.s.boot.SpringApplication : Application run failed\n"
        "org.springframework.beans.factory.BeanCreationException: Error creating bean 'db'\n"
        "\tat org.springframework.beans.factory.support.Factory.create(Factory.java:1)\n"
    )
    assert [e.kind for e in entries] == [KIND_TEXT, KIND_JAVA_EXCEPTION]
    assert entries[0].level == "error"
    assert entries[1].lines == 2


def test_indented_lines_continue_the_previous_entry() -> None:
    entries = parse_log("ERROR request failed\n  detail one\n\tat com.x.Y.z(Y.java:3)\nnext line\n")
    assert len(entries) == 2
    assert entries[0].lines == 3
    assert entries[0].kind == KIND_JAVA_EXCEPTION  # an `at` frame makes it a Java trace
    assert entries[0].level == "error"


def test_long_trace_text_is_capped_but_lines_are_counted() -> None:
    frames = "".join(f"\tat com.example.F{i}.call(F.java:{i})\n" for i in range(200))
    entry = one('Exception in thread "main" java.lang.StackOverflowError\n' + frames)
    assert entry.lines == 201
    assert entry.text.count("\n") == MAX_ENTRY_LINES
    assert entry.text.endswith(f"... {201 - MAX_ENTRY_LINES} more lines")


def test_pem_block_is_folded_into_one_entry() -> None:
    entries = parse_log(
        "loading key\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2\nq8Hw9ZkLm\n-----END RSA PRIVATE KEY-----\ndone\n"
    )
    assert [e.text.splitlines()[0] for e in entries] == ["loading key", "-----BEGIN RSA PRIVATE KEY-----", "done"]
    assert entries[1].lines == 4


# --- JSON and logfmt ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "level", "status", "latency"),
    [
        ({"level": "info", "msg": "served", "status": 200, "latency": "150ms"}, "info", 200, 150.0),
        ({"severity": "ERROR", "message": "upstream", "status_code": "503", "duration": "2.01s"}, "error", 503, 2010.0),
        ({"lvl": "warn", "msg": "slow", "code": 429, "latency_ms": 12.5}, "warn", 429, 12.5),
        ({"level": "debug", "msg": "tick", "duration_ms": 3}, "debug", None, 3.0),
        ({"level": "info", "msg": "zap", "elapsed": 0.25}, "info", None, 250.0),
        ({"level": 50, "msg": "pino", "res": {"statusCode": 500}, "responseTime": 12}, "error", 500, 12.0),
        ({"level": "INFO", "msg": "slog", "duration": 1500000000}, "info", None, 1500.0),
        ({"level": "info", "msg": "grpc", "code": 2}, "info", None, None),
        ({"log": {"level": "warning"}, "message": "ecs", "http": {"response": {"status_code": 404}}}, "warn", 404, None),
    ],
)
def test_json_variants(record: dict, level: str, status: int | None, latency: float | None) -> None:
    entry = one(json.dumps(record))
    assert entry.kind == KIND_JSON
    assert entry.level == level
    assert entry.status == status
    if latency is None:
        assert entry.latency_ms is None
    else:
        assert entry.latency_ms == pytest.approx(latency)


def test_json_message_and_error_and_time() -> None:
    entry = one('{"ts": 1767268800.5, "level": "error", "error": "dial tcp 10.0.0.5:5432: refused", "msg": "db"}')
    assert entry.message == "error db dial tcp 10.0.0.5:5432: refused"
    assert entry.timestamp == datetime(2026, 1, 1, 12, 0, 0, 500000, tzinfo=timezone.utc)
    entry = one('{"time": "2026-01-01T12:00:00Z", "level": "info", "msg": "request", "method": "GET", '
                '"path": "/x?a=1", "status": 500}')
    assert entry.message == "info request GET /x 500"
    assert entry.timestamp == datetime(2026, 1, 1, 12, tzinfo=timezone.utc)


def test_json_with_embedded_python_traceback_counts_as_trace() -> None:
    record = {
        "level": "error",
        "message": "unhandled",
        "exc_info": 'Traceback (most recent call last):\n  File "x.py", line 1, in f\nZeroDivisionError: division by zero',
    }
    entry = one(json.dumps(record))
    assert entry.kind == KIND_PYTHON_TRACEBACK
    assert entry.message == "error unhandled ZeroDivisionError: division by zero"


def test_invalid_json_is_text() -> None:
    entry = one('{"level": "error", broken')
    assert entry.kind == KIND_TEXT
    assert entry.level is None  # lowercase level words only count at the start or as level=


def test_logfmt_line() -> None:
    entry = one('time=2026-01-01T12:00:00Z level=warn msg="slow query took long" duration=1m2.5s status=200')
    assert entry.kind == KIND_LOGFMT
    assert entry.level == "warn"
    assert entry.status == 200
    assert entry.latency_ms == pytest.approx(62_500.0)
    assert entry.message == "warn slow query took long 200"


def test_klog_line() -> None:
    entry = one("E0101 12:00:00.000000       1 controller.go:123] sync failed: timeout")
    assert entry.kind == KIND_KLOG
    assert entry.level == "error"
    assert entry.message == "controller.go] sync failed: timeout"


# --- helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("2.01s", None, 2010.0),
        ("150ms", None, 150.0),
        ("1m2s", None, 62_000.0),
        ("250µs", None, 0.25),
        ("100ns", None, 0.0001),
        ("1h", None, 3_600_000.0),
        (0.5, None, 500.0),
        (40, None, 40.0),
        (2_000_000, None, 2.0),
        ("0.123", None, 123.0),
        (7, 1000.0, 7000.0),
        ("abc", None, None),
        (-1, None, None),
        (True, None, None),
    ],
)
def test_parse_duration_ms(value: object, unit: float | None, expected: float | None) -> None:
    result = parse_duration_ms(value, unit)
    assert result == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("WARNING", "warn"), ("Err", "error"), ("CRITICAL", "fatal"), ("notice", "info"), ("E", "error"),
     (30, "info"), (40, "warn"), (60, "fatal"), (20, "debug"), ("bogus", None), (None, None)],
)
def test_normalize_level(value: object, expected: str | None) -> None:
    assert normalize_level(value) == expected


def test_timestamp_only_and_blank_lines_are_skipped_and_crlf_is_handled() -> None:
    entries = parse_log("2026-01-01T12:00:00Z\r\n\r\n   \r\nhello\r\n")
    assert [e.text for e in entries] == ["hello"]


def test_plain_text_does_not_get_a_level_from_words_inside() -> None:
    assert one("no error found in 3 files").level is None
    assert one("Error: something broke").level == "error"
    assert one("[2026-01-01 12:00:00] WARNING disk almost full").level == "warn"


def test_parse_lines_accepts_an_iterable() -> None:
    entries = parse_lines(iter(["2026/01/01 12:00:00 200 - blue", "2026/01/01 12:00:01 500 - blue"]))
    assert [e.status for e in entries] == [200, 500]


# --- statistics --------------------------------------------------------------------------------


def test_summarize_counts() -> None:
    text = "\n".join(
        ["2026/01/01 12:00:00 200 - blue"] * 6
        + ["2026/01/01 12:00:01 500 - blue (1.500000s)"] * 3
        + ['10.0.0.1 - - [01/Jan/2026:12:00:02 +0000] "GET /x HTTP/1.1" 404 0 "-" "c" 0.010']
        + ["2026/01/01 12:00:03 ERROR: boom", "panic: x", "goroutine 1 [running]:", "main.main()"]
    )
    stats = summarize(parse_log(text))
    assert stats.entries == 12
    assert stats.lines == 14
    assert stats.requests == 10
    assert stats.status_counts == {"200": 6, "404": 1, "500": 3}
    assert stats.server_errors == 3
    assert stats.client_errors == 1
    assert stats.error_ratio == pytest.approx(0.3)
    assert stats.level_counts == {"error": 1, "fatal": 1}
    assert stats.traces == 1 and stats.panics == 1
    assert stats.latency_count == 4
    assert stats.latency_samples_ms == [1500.0, 1500.0, 1500.0, 10.0]
    assert stats.latency_max_ms == 1500.0
    assert stats.latency_mean_ms == pytest.approx(1127.5)
    assert stats.latency_p50_ms == 1500.0
    assert stats.kind_counts["request"] == 9
    assert stats.first_timestamp == datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert stats.last_timestamp == datetime(2026, 1, 1, 12, 0, 3, tzinfo=timezone.utc)
    dumped = stats.model_dump(mode="json")
    assert dumped["error_ratio"] == pytest.approx(0.3)
    json.dumps(dumped)


def test_summarize_zero_requests() -> None:
    stats = summarize(parse_log("2026/01/01 12:00:00 Started server on :8080\n"))
    assert stats.requests == 0
    assert stats.error_ratio is None
    assert stats.latency_mean_ms is None and stats.latency_p95_ms is None
    empty = summarize([])
    assert empty.entries == 0 and empty.lines == 0 and empty.first_timestamp is None


def test_summarize_all_errors() -> None:
    stats = summarize(parse_log("\n".join(["2026/01/01 12:00:00 500 - red"] * 20)))
    assert stats.requests == 20
    assert stats.server_errors == 20
    assert stats.error_ratio == 1.0


def test_latency_reservoir_is_capped_and_deterministic() -> None:
    entries = [LogEntry(None, "x", status=200, latency_ms=float(i), kind=KIND_REQUEST) for i in range(5000)]
    first = summarize(entries, latency_cap=100)
    second = summarize(entries, latency_cap=100)
    assert first.latency_sampled
    assert len(first.latency_samples_ms) == 100
    assert first.latency_samples_ms == second.latency_samples_ms
    assert first.latency_count == 5000
    assert first.latency_max_ms == 4999.0
    assert first.latency_mean_ms == pytest.approx(2499.5)
    # A uniform sample of 0..4999: its median is near the middle.
    assert 1500 < first.latency_p50_ms < 3500
    with pytest.raises(ValueError):
        summarize(entries, latency_cap=0)


def test_merge_stats_adds_up_roles() -> None:
    a = summarize(parse_log("2026/01/01 12:00:00 200 - blue (0.100000s)\n2026/01/01 12:00:09 500 - blue"))
    b = summarize(parse_log("2026/01/01 11:00:00 200 - blue (0.300000s)\nERROR: x"))
    merged = merge_stats([a, b])
    assert merged.entries == 4 and merged.requests == 3 and merged.server_errors == 1
    assert merged.status_counts == {"200": 2, "500": 1}
    assert merged.level_counts == {"error": 1}
    assert sorted(merged.latency_samples_ms) == [100.0, 300.0]
    assert not merged.latency_sampled
    assert merged.first_timestamp == datetime(2026, 1, 1, 11, tzinfo=timezone.utc)
    assert merged.last_timestamp == datetime(2026, 1, 1, 12, 0, 9, tzinfo=timezone.utc)
    assert merge_stats([]) == LogStats()


def test_merge_stats_samples_in_proportion_when_over_the_cap() -> None:
    big = summarize([LogEntry(None, "x", latency_ms=1.0) for _ in range(900)], latency_cap=300)
    small = summarize([LogEntry(None, "x", latency_ms=2.0) for _ in range(100)], latency_cap=300)
    merged = merge_stats([big, small])
    assert merged.latency_sampled
    assert merged.latency_count == 1000
    assert len(merged.latency_samples_ms) == 300
    assert merged.latency_samples_ms.count(2.0) == 30  # 10 % of the latencies, 10 % of the sample
    assert merged == merge_stats([big, small])
