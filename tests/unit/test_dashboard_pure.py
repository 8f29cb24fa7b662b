"""The dashboard's pure parts, from tables: the gate's rules, form parsing, notices,
chart geometry, formatting and the throughput buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tomqueue.admin_results import bucket_start, throughput_from
from tomqueue.dashboard import charts, formatting, forms, notices
from tomqueue.dashboard.security import Guard, host_name, is_loopback, safe_next
from tomqueue.filters import State
from tomqueue.store.values import ThroughputRow

TOKEN = "x" * 20
T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("client", "host", "ok"),
    [
        ("127.0.0.1", "127.0.0.1:8089", True),
        ("127.0.0.1", "localhost", True),
        ("::1", "[::1]:8089", True),
        ("10.0.0.2", "127.0.0.1", False),  # not a loopback client
        ("127.0.0.1", "evil.example", False),  # DNS rebinding
        ("127.0.0.1", None, False),
        (None, "localhost", False),
    ],
)
def test_without_a_token_loopback_only(client, host, ok):
    assert Guard(None).local_request_ok(client, host) is ok


def test_trusted_hosts_extend_the_loopback_names():
    assert Guard(None, frozenset({"queue.internal"})).local_request_ok(
        "127.0.0.1", "queue.internal"
    )


@pytest.mark.parametrize(
    ("header", "ok"),
    [(f"Bearer {TOKEN}", True), (f"bearer {TOKEN}", True), ("Bearer nope", False),
     (f"Basic {TOKEN}", False), ("", False), (None, False)],
)  # fmt: skip
def test_bearer(header, ok):
    assert Guard(TOKEN).bearer_ok(header) is ok


def test_sessions_are_signed_with_the_token():
    guard = Guard(TOKEN)
    cookie = guard.new_session()
    assert guard.session_ok(cookie)
    assert not Guard("y" * 20).session_ok(cookie)  # another token: every session ends
    assert not guard.session_ok(cookie + "x") and not guard.session_ok(None)
    assert not Guard(None).session_ok(cookie)


def test_form_tokens_match_only_their_nonce():
    guard = Guard(TOKEN)
    nonce, other = guard.new_nonce(), guard.new_nonce()
    token = guard.form_token(nonce)
    assert guard.form_ok(nonce, token)
    assert not guard.form_ok(other, token)
    assert not guard.form_ok(nonce, None) and not guard.form_ok(None, token)
    assert not Guard("z" * 20).form_ok(nonce, token)


def test_a_short_token_is_refused():
    with pytest.raises(ValueError, match="16"):
        Guard("short")


@pytest.mark.parametrize(
    ("value", "name"),
    [("LocalHost:80", "localhost"), ("[::1]:8089", "[::1]"), ("::1", "::1"), ("", ""),
     (None, ""), ("a.b", "a.b")],
)  # fmt: skip
def test_host_name(value, name):
    assert host_name(value) == name


@pytest.mark.parametrize(
    ("path", "target"),
    [("/jobs?x=1", "/jobs?x=1"), ("//evil", "/"), ("http://evil", "/"), ("/\\evil", "/"),
     (None, "/"), ("", "/")],
)  # fmt: skip
def test_safe_next(path, target):
    assert safe_next(path, "/") == target


def test_is_loopback():
    assert is_loopback("127.0.0.5") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("10.0.0.1") and not is_loopback(None) and not is_loopback("x")


def test_parse_filter_and_its_fields_round_trip():
    fields = {"state": "failed", "class": "Send", "queue": "", "error": " boom ", "priority": "3"}
    where = forms.parse_filter(fields)
    assert (where.state, where.class_name, where.queue, where.error, where.priority) == (
        State.FAILED, "Send", None, "boom", 3)  # fmt: skip
    assert forms.parse_filter(forms.filter_fields(where)) == where
    assert forms.parse_list_query({"after": "40"}).params(90) == "after=90"


@pytest.mark.parametrize(
    "fields",
    [{"state": "bogus"}, {"priority": "x"}, {"priority": str(2**40)}],
)
def test_parse_filter_refuses_bad_values(fields):
    with pytest.raises(forms.FormError):
        forms.parse_filter(fields)


def test_parse_reschedule():
    assert forms.parse_reschedule("", "90") == timedelta(seconds=90)
    assert forms.parse_reschedule("2026-12-31T09:30", "") == datetime(2026, 12, 31, 9, 30,
                                                                       tzinfo=UTC)  # fmt: skip
    offset = forms.parse_reschedule("2026-12-31T09:30+01:00", "")
    assert offset == datetime(2026, 12, 31, 8, 30, tzinfo=UTC)
    for at, seconds in (("", ""), ("2026-01-01T00:00", "5"), ("soon", ""), ("", "-1"),
                        ("", "x"), ("", str(10**12))):  # fmt: skip
        with pytest.raises(forms.FormError):
            forms.parse_reschedule(at, seconds)


def test_parse_job_id():
    assert forms.parse_job_id("42") == 42
    for bad in ("", "-1", "4x", "9" * 20):
        with pytest.raises(forms.FormError):
            forms.parse_job_id(bad)


@pytest.mark.parametrize(
    ("query", "kind", "text"),
    [
        ({"notice": "retried", "job": "5"}, "ok", "Job 5 will run again now"),
        ({"notice": "running", "job": "5"}, "refused", "Refused: job 5 is running"),
        ({"notice": "bulk_deleted", "n": "3", "skipped": "1"}, "ok", "Deleted 3 job(s). 1 running"),
        ({"notice": "ran", "job": "<b>", "broker": "down"}, "ok", "Job 0 is due now. RabbitMQ"),
    ],
)
def test_notices_are_fixed_sentences_with_numbers(query, kind, text):
    found = notices.notice_from(query)
    assert found is not None and found.kind == kind and found.text.startswith(text)


def test_unknown_notice_codes_show_nothing():
    assert notices.notice_from({"notice": "<script>"}) is None and notices.notice_from({}) is None


@pytest.mark.parametrize(("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (12, 20),
                                                (50, 50), (51, 100), (999, 1000)])  # fmt: skip
def test_nice_ceiling(value, ceiling):
    assert charts.nice_ceiling(value) == ceiling


def test_bar_chart_scales_to_the_tallest_bar():
    points = [(T0 + timedelta(minutes=i), count) for i, count in enumerate([0, 5, 10, 2])]
    chart = charts.bar_chart(points, timedelta(minutes=1), labels=2)
    assert chart.total == 17 and chart.peak == 10 and len(chart.bars) == 4
    tallest = chart.bars[2]
    assert tallest.y == charts.TOP and tallest.height == charts.HEIGHT - charts.BOTTOM - charts.TOP
    assert chart.bars[0].height == 0 and chart.bars[1].height == tallest.height / 2
    assert [t.label for t in chart.time_labels] == ["10:00", "10:02"]
    assert [t.label for t in chart.count_ticks] == ["0", "5", "10"]
    assert chart.bars[1].title == "10:01 UTC, 1 min: 5"
    assert charts.bar_chart([], timedelta(minutes=1)).bars == ()


@pytest.mark.parametrize(
    ("span", "text"),
    [(0.25, "250 ms"), (4.25, "4.2 s"), (42, "42 s"), (185, "3 min 5 s"), (7440, "2 h 4 min"),
     (3 * 86400 + 7200, "3 d 2 h"), (-5, "-5.0 s"), (None, "—"), (timedelta(minutes=2), "2 min")],
)  # fmt: skip
def test_duration(span, text):
    assert formatting.duration(span) == text


def test_when_relative_handler_and_class():
    assert formatting.when(T0) == "2026-12-05 10:00:00 UTC" and formatting.when(None) == "—"
    assert formatting.relative(T0 + timedelta(minutes=5), T0) == "in 5 min"
    assert formatting.relative(T0 - timedelta(seconds=30), T0) == "30 s ago"
    assert formatting.relative(T0, T0) == "now"
    assert formatting.pretty_handler('{"b":1,"a":2}') == '{\n  "a": 2,\n  "b": 1\n}'
    assert formatting.pretty_handler("not json") == "not json"
    assert formatting.short_class("myapp.jobs.SendInvoice") == "SendInvoice"


def test_throughput_buckets_fill_the_window():
    bucket = timedelta(minutes=5)
    at = T0 + timedelta(minutes=12)
    assert bucket_start(at, bucket) == T0 + timedelta(minutes=10)
    rows = [ThroughputRow(T0 + timedelta(minutes=5), 3, 1)]
    flow = throughput_from(rows, at, timedelta(minutes=15), bucket)
    # from the bucket holding (at - window) to the one holding at, the last one partial
    assert [p.bucket for p in flow.points] == [T0 + timedelta(minutes=m) for m in (-5, 0, 5, 10)]
    assert [(p.succeeded, p.failed) for p in flow.points] == [(0, 0), (0, 0), (3, 1), (0, 0)]
    assert (flow.succeeded, flow.failed) == (3, 1)
