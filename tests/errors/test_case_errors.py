"""Pinned user-facing messages of the case loader: file:line: case/object: field path: what is wrong; the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.case import load_case_file
from harness.errors import CaseSyntaxError, ValidationError

CHECK = '  - name: c\n    send: {url: "http://reviews:9080/"}\n    expect: {status: 200}\n'


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Case files are written to a temp dir and named relative to it, as a user names them."""
    monkeypatch.chdir(tmp_path)


def issues(text: str, name: str = "case.yaml") -> list[str]:
    Path(name).write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load_case_file(name)
    return [str(i) for i in info.value.issues]


def syntax_error(text: str) -> str:
    Path("case.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(CaseSyntaxError) as info:
        load_case_file("case.yaml")
    return str(info.value)


def test_error_invalid_yaml_names_line_and_column() -> None:
    text = 'name: a\nchecks:\n  - name: c\n    send: {url: "http://reviews:9080/"\n'
    assert syntax_error(text) == "case.yaml:5, column 1: not valid YAML: expected ',' or '}', but got '<stream end>'"


def test_error_tab_indentation_gives_the_hint() -> None:
    assert syntax_error("name: a\nchecks:\n\t- name: c\n") == (
        "case.yaml:3, column 1: not valid YAML: found character '\\t' that cannot start any token; "
        "indent with spaces, not tabs"
    )


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_error_empty_file(text: str) -> None:
    assert syntax_error(text) == "case.yaml: empty file; a case needs a name and checks (see README, 'Writing cases')"


def test_error_document_not_a_mapping() -> None:
    assert issues("- name: a\n- name: b\n") == [
        "case.yaml:1: expected a case (a mapping with name, config and checks), got a list; start the document with 'name:'"
    ]


def test_error_unknown_fields_suggest_the_closest() -> None:
    text = 'name: a\nchecks:\n  - name: c\n    send: {url: "http://reviews:9080/", concurency: 4}\n    expct: {status: 200}\n'
    assert issues(text) == [  # "expect is missing" would repeat what the did-you-mean says
        "case.yaml:4: case a: checks[0].send.concurency: unknown field; did you mean concurrency?",
        "case.yaml:5: case a: checks[0].expct: unknown field; did you mean expect?",
    ]


def test_error_unknown_top_level_field_without_close_match_lists_known() -> None:
    assert issues("name: a\nzzz: 1\nchecks:\n" + CHECK) == [
        "case.yaml:2: case a: zzz: unknown field; known fields here: about, checks, clients, config, load, meshConfig, name, services"
    ]


def test_error_wrong_types_say_what_was_expected() -> None:
    text = ('name: a\nchecks:\n  - name: c\n    send: {url: "http://reviews:9080/", concurrency: lots}\n'
            '    expect: {status: "200"}\n    alpha: high\n')
    assert issues(text) == [
        'case.yaml:4: case a: checks[0].send.concurrency: expected an integer, got "lots"',
        ('case.yaml:5: case a: checks[0].expect.status: expected a status code (200), a list of them ([200, 503]) or fractions '
        '({200: 0.5, 503: 0.5}) (got "200")'),
        'case.yaml:6: case a: checks[0].alpha: expected a number, got "high"',
    ]


def test_error_name_must_be_a_string_quote_hint() -> None:
    assert issues("name: 42\nchecks:\n" + CHECK) == ['case.yaml:1: name: expected a string, got 42; quote it: "42"']


def test_error_bad_duration() -> None:
    text = 'name: a\nchecks:\n  - name: c\n    send: {url: "http://reviews:9080/", timeout: 5x}\n    expect: {status: 200}\n'
    assert issues(text) == [
        ('case.yaml:4: case a: checks[0].send.timeout: not a valid duration (got "5x"); '
        "use a number with a unit (ns, us, ms, s, m, h), e.g. 500ms, 1.5s, 1m30s")
    ]


def test_error_fractions_not_summing_to_one() -> None:
    text = 'name: a\nchecks:\n  - name: c\n    send: {url: "http://reviews:9080/"}\n    expect: {version: {v1: 0.9, v2: 0.2}}\n'
    assert issues(text) == [
        ("case.yaml:5: case a: checks[0].expect.version: fractions must add up to 1 (got 1.1); "
        "list every category, e.g. {v1: 0.9, v2: 0.1}")
    ]


def test_error_fraction_above_one() -> None:
    text = 'name: a\nchecks:\n  - name: c\n    send: {url: "http://reviews:9080/"}\n    expect: {status: {200: 90, 503: 10}}\n'
    assert issues(text) == [
        ("case.yaml:5: case a: checks[0].expect.status: each fraction must be between 0 and 1 (got 200: 90); "
        "write 0.9 for 90%")
    ]


def test_error_empty_expect() -> None:
    text = 'name: a\nchecks:\n  - name: c\n    send: {url: "http://reviews:9080/"}\n    expect: {}\n'
    assert issues(text) == [
        ("case.yaml:5: case a: checks[0].expect: nothing to check; add an expectation such as version, status, "
        "flags or headers (e.g. version: v2, or version: {v1: 0.9, v2: 0.1})")
    ]


def test_error_check_without_send() -> None:
    assert issues("name: a\nchecks:\n  - name: c\n    expect: {status: 200}\n") == [
        "case.yaml:3: case a: checks[0].send: required field is missing; add send (a mapping)"
    ]


def test_error_case_without_checks() -> None:
    assert issues("name: a\nchecks: []\n") == [
        "case.yaml:2: case a: checks: a case needs at least one check (send + expect)"
    ]


def test_error_duplicate_check_names_point_at_the_second() -> None:
    assert issues("name: a\nchecks:\n" + CHECK + CHECK) == [
        "case.yaml:6: case a: checks[1].name: check name used twice (got 'c', first at line 3); give each check its own name"
    ]


def test_error_duplicate_case_names_point_at_the_second() -> None:
    case = "name: a\nchecks:\n" + CHECK
    assert issues(case + "---\n" + case) == [
        "case.yaml:7: case a: name: case name used twice in one file (got 'a', first at line 1); give each case its own name"
    ]


def test_error_missing_referenced_manifest() -> None:
    Path("cases").mkdir()
    assert issues("name: a\nconfig:\n  - file: manifests/nope.yaml\nchecks:\n" + CHECK, "cases/a.yaml") == [
        "cases/a.yaml:3: case a: config[0].file: no such file 'cases/manifests/nope.yaml'; paths are relative to the case file"
    ]


def test_error_url_without_host() -> None:
    text = 'name: a\nchecks:\n  - name: c\n    send: {url: "http:///x"}\n    expect: {status: 200}\n'
    assert issues(text) == [
        'case.yaml:4: case a: checks[0].send.url: expected a URL like "http://reviews:9080/path" (got "http:///x")'
    ]


def test_error_url_without_scheme() -> None:
    text = 'name: a\nchecks:\n  - name: c\n    send: {url: "reviews:9080/"}\n    expect: {status: 200}\n'
    assert issues(text) == [
        'case.yaml:4: case a: checks[0].send.url: expected a URL like "http://reviews:9080/path" (got "reviews:9080/")'
    ]


def test_error_url_names_a_service_not_in_the_topology() -> None:
    text = 'name: a\nchecks:\n  - name: c\n    send: {url: "http://ratings.default:9080/"}\n    expect: {status: 200}\n'
    assert issues(text) == [
        ("case.yaml:4: case a: checks[0].send.url: no service 'ratings' in this case's topology (services: reviews); "
        "add it under services:")
    ]


def test_error_unknown_client_workload() -> None:
    text = 'name: a\nchecks:\n  - name: c\n    send:\n      url: "http://reviews:9080/"\n      from: frontend\n    expect: {status: 200}\n'
    assert issues(text) == [
        "case.yaml:6: case a: checks[0].send.from: no client workload 'frontend' (clients: client); send from one of them"
    ]


def test_error_istio_object_in_config_uses_the_case_file_lines() -> None:
    text = (
        "name: a\nconfig:\n  - apiVersion: networking.istio.io/v1\n    kind: VirtualService\n"
        "    metadata: {name: reviews}\n    spec:\n      hosts: [reviews]\n      http:\n"
        "        - route: [{destination: {host: reviews}, weight: ninety}]\n          timeout: 5x\n"
        "checks:\n" + CHECK
    )
    assert issues(text) == [
        'case.yaml:9: VirtualService/reviews: spec.http[0].route[0].weight: expected an integer, got "ninety"',
        ('case.yaml:10: VirtualService/reviews: spec.http[0].timeout: not a valid duration (got "5x"); '
        "use a number with a unit (ns, us, ms, s, m, h), e.g. 500ms, 1.5s, 1m30s"),
    ]


def test_error_every_problem_is_reported_at_once_in_line_order() -> None:
    text = (
        "name: a\nconfig:\n  - file: nope.yaml\nchecks:\n"
        '  - name: c\n    send: {url: "http://reviews:9080/"}\n    expect: {version: {v1: 0.9, v2: 0.2}}\n'
        "  - name: d\n    expect: {status: 200}\n"
        '  - name: c\n    send: {url: "http://ratings:9080/", concurency: 2}\n    expect: {status: 200}\n'
        '  - name: e\n    send: {url: "http://ratings:9080/"}\n    expect: {status: 200}\n'
        "---\nname: b\nchecks: {}\n"
    )
    assert issues(text) == [
        "case.yaml:3: case a: config[0].file: no such file 'nope.yaml'; paths are relative to the case file",
        ("case.yaml:7: case a: checks[0].expect.version: fractions must add up to 1 (got 1.1); "
        "list every category, e.g. {v1: 0.9, v2: 0.1}"),
        "case.yaml:8: case a: checks[1].send: required field is missing; add send (a mapping)",
        "case.yaml:10: case a: checks[2].name: check name used twice (got 'c', first at line 5); give each check its own name",
        "case.yaml:11: case a: checks[2].send.concurency: unknown field; did you mean concurrency?",
        ("case.yaml:14: case a: checks[3].send.url: no service 'ratings' in this case's topology (services: reviews); "
        "add it under services:"),
        "case.yaml:18: case b: checks: expected a list, got a mapping",
    ]


def expect_issues(expect: str, send: str = "", top: str = "") -> list[str]:
    return issues(f'name: a\n{top}checks:\n  - name: c\n    send: {{url: "http://reviews:9080/"{send}}}\n    expect: {expect}\n')


AT = "case.yaml:5: case a: checks[0].expect"


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("{grpc_status: UNAVAIL}", (".grpc_status: unknown gRPC status (got \"UNAVAIL\"); use a name such as UNAVAILABLE "
                                   "or a number 0-16; did you mean UNAVAILABLE?")),
        ("{grpc_status: 99}", ".grpc_status: unknown gRPC status (got 99); use a name such as UNAVAILABLE or a number 0-16"),
        ("{grpc_status: [1]}", (".grpc_status: expected a gRPC status (UNAVAILABLE or 14) or fractions "
                               "({OK: 0.5, UNAVAILABLE: 0.5}) (got a list)")),
        ("{flags: OU}", ('.flags: unknown Envoy response flag (got "OU"); write flags as Envoy logs them '
                        '(UO, NR, FI, "-" for none); did you mean UO?')),
        ("{flags: {FI: 0.5, '-': 0.6}}", ".flags: fractions must add up to 1 (got 1.1); list every category, e.g. {v1: 0.9, v2: 0.1}"),
        ("{headers: {location: [a]}}", (".headers.location: expected a header value: a string (exact), "
                                       "true (present with any value) or null (absent) (got a list)")),
        ("{upstream: {}}", ".upstream: nothing to check; add path, host, method or headers"),
        ("{latency: {}}", ".latency: nothing to check; add at_least, below, fraction_at_least or a quantile such as p99"),
        ("{latency: {at_least: 2s, below: 1s}}", ".latency: at_least must be less than below (got at_least 2s, below 1s)"),
        ("{latency: {below: -1s}}", ".latency.below: a latency bound cannot be negative (got -1s)"),
        ("{latency: {fraction_at_least: {bound: 200ms, expected: 1}}}",
         (".latency.fraction_at_least.expected: must be strictly between 0 and 1 (got 1); "
         "for every request write latency: {at_least: ...} or {below: ...}")),
        ("{latency: {p99: {}}}", ".latency.p99: give exactly one of below and at_least, e.g. p99: {below: 1s}"),
        ("{latency: {p98: {below: 1s}}}", ".latency.p98: unknown field; did you mean p99?"),
        ("{attempts: 0}", ".attempts: attempts count from 1 (got 0); for requests that no app received write received: none"),
        ("{attempts: {1: 0.5, 2: 0.6}}", ".attempts: fractions must add up to 1 (got 1.1); list every category, e.g. {1: 0.5, 2: 0.5}"),
        ("{mirror: {service: reviews, fraction: 50}}", ".mirror.fraction: expected a fraction between 0 and 1 (got 50); write 0.5 for 50%"),
        ("{mirror: {service: ratings}}", (".mirror.service: no service 'ratings' in this case's topology (services: reviews); "
                                         "add it under services:")),
        ("{mirror: [{service: reviews, version: v3}]}", (".mirror[0].version: reviews has no version 'v3' (versions: v1, v2); "
                                                        "add it under services:")),
        ("{received: all}", ('.received: expected none (no app received any request) or the share of requests that '
                             'reached an app, between 0 and 1 (e.g. 0.7) (got "all")')),
        ("{received: 1.5}", ('.received: expected none (no app received any request) or the share of requests that '
                             'reached an app, between 0 and 1 (e.g. 0.7) (got 1.5)')),
        ("{status: []}", ".status: expected at least one value, e.g. [200, 503]"),
        ("{status: [200, 503, 200]}", ".status: 200 is listed twice; list each value once"),
        ("{version: [v1, v3]}", ".version: no service in this case's topology has version 'v3' (versions: v1, v2); add it under services:"),
        ("{body: {}}", '.body: give exactly one of contains and matches, e.g. {contains: "no healthy upstream"}'),
        ("{body: {contains: a, matches: b}}", '.body: give exactly one of contains and matches, e.g. {contains: "no healthy upstream"}'),
        ("{body: {contains: ''}}", ".body.contains: an empty text is in every body and checks nothing; give the text to look for"),
        ('{body: {matches: "a(b"}}', ('.body.matches: not a regular expression: missing ), unterminated subpattern at position 1 '
                                     '(got "a(b"); escape special characters with a backslash, or use contains for plain text')),
        ("{stats: {upstream_rq_retry: {}}}", ".stats.upstream_rq_retry: give at_least, at_most or equal, e.g. {at_least: 1}"),
        ("{stats: {'a||b': {at_least: 1}}}", ('.stats.a||b: expected counter names joined by "|" (got "a||b"), '
                                            'e.g. "upstream_rq_pending_overflow|upstream_rq_active_overflow"')),
        ("{stats: {x: {equal: 1, at_least: 1}}}", ".stats.x: equal cannot be combined with at_least or at_most"),
        ("{stats: {x: {at_least: 3, at_most: 1}}}", ".stats.x: at_least must not exceed at_most (got 3 > 1)"),
        ("{same_instance: false}", (".same_instance: same_instance: false checks nothing; write true, "
                                   "or for a spread use instances: {at_least: 2}")),
        ("{instances: {}}", ".instances: give at_least, at_most or exclude, e.g. {at_least: 2} or {exclude: [reviews-v1-1]}"),
        ("{instances: {exclude: [reviews-v1-7]}}", (".instances.exclude[0]: no instance 'reviews-v1-7' in this case's topology "
                                                  "(instances: reviews-v1-0, reviews-v2-0); name one as <service>-<version>-<replica>")),
        ("{instances: {at_least: 3, at_most: 2}}", ".instances: at_least must not exceed at_most (got 3 > 2)"),
    ],
)
def test_error_bad_expect_values(expect: str, message: str) -> None:
    assert expect_issues(expect) == [AT + message]


def test_error_count_refuses_statistical_expectations() -> None:
    assert expect_issues("{version: {v1: 0.5, v2: 0.5}, latency: {p99: {below: 1s}}, status: 200}", send=", count: 10") == [
        (f"{AT}.version: a split or quantile is judged statistically with its own request plan, but send.count fixes "
        "the requests at 10; remove count, or expect one value for every response"),
        (f"{AT}.latency.p99: a split or quantile is judged statistically with its own request plan, but send.count fixes "
        "the requests at 10; remove count, or expect one value for every response"),
    ]


def test_error_expect_none_needs_a_count_and_no_expect_where() -> None:
    check = 'name: a\nchecks:\n  - name: c\n    send: {url: "http://reviews:9080/"%s}\n    expect: %s\n'
    assert issues(check % ("", "none")) == [
        "case.yaml:4: case a: checks[0].send: a check without a claim sends exactly send.count requests; add count, "
        "e.g. send: {url: ..., count: 20}"]
    assert issues(check % (", count: 5", "none\n    expect_where: [{where: {status: 503}, expect: {flags: UO}}]")) == [
        "case.yaml:6: case a: checks[0].expect_where: expect: none makes no claim, but expect_where does; write the "
        "claims under expect, or remove expect_where"]
    for written, got in (("", "null"), ("nothing", '"nothing"')):
        assert issues(check % (", count: 5", written)) == [
            "case.yaml:5: case a: checks[0].expect: expected a mapping of expectations such as {version: v2}, or none "
            f"to send traffic without a claim (warm-up) (got {got})"]


def test_error_body_of_grpc_responses_is_refused() -> None:
    text = ('name: a\nchecks:\n  - name: c\n    send: {url: "grpc://reviews:7070", protocol: grpc}\n'
            '    expect: {body: {contains: x}}\n')
    assert issues(text) == [
        "case.yaml:5: case a: checks[0].expect.body: a gRPC response's body is a protobuf message, not text; check "
        "grpc_status (or headers) instead, or send with protocol http"]


def test_error_app_log_expectations_refuse_a_fixed_request_id() -> None:
    assert expect_issues("{attempts: 1}", send=", headers: {X-Request-Id: abc}") == [
        ("case.yaml:4: case a: checks[0].send.headers.X-Request-Id: attempts, mirror, received and instances.exclude "
        "join app logs by request id, so each request needs its own; remove this header")
    ]


def test_error_header_both_fixed_and_cycled() -> None:
    assert expect_issues("{status: 200}", send=", headers: {x-user: a}, headers_cycle: {X-User: [b]}") == [
        "case.yaml:4: case a: checks[0].send.headers_cycle.X-User: this header is also in send.headers; give it in one of them"
    ]
    assert expect_issues("{status: 200}", send=", headers_cycle: {Host: [a, b]}") == [
        "case.yaml:4: case a: checks[0].send.headers_cycle.Host: cannot vary per request: each request gets its own "
        "request id, and the Host is the URL's (or one fixed value in send.headers)"
    ]


def test_error_services_knobs_ports_and_clients() -> None:
    top = ('services:\n  reviews:\n    ports: [{name: http, number: 80}, {name: grpc, number: 80}]\n'
           '    knobs: {v9: {status: "500"}, v1: {stauts: "5", delay: 5x}}\n'
           "clients: [{name: client}, {name: client}]\n")
    assert expect_issues("{status: 200}", top=top) == [
        "case.yaml:4: case a: services.reviews.ports[1].number: port number used twice (got 80); give each port its own number",
        ("case.yaml:5: case a: services.reviews.knobs.v1.delay: bad value for echo knob 'delay': '5x'; "
         "expected a duration with unit ms or s ('250ms', '1.5s'), at most 600s"),
        'case.yaml:5: case a: services.reviews.knobs.v1.stauts: unknown knob (got "stauts"); known knobs: status, delay, fail-first, grpc-status',
        ('case.yaml:5: case a: services.reviews.knobs.v9: expected a version (v1, v2) or an instance name '
         '(reviews-v1-0, reviews-v2-0), got "v9"'),
        "case.yaml:6: case a: clients[1].name: workload name used twice (got 'client'); give each client and service its own name",
    ]


def check_issues(extra: str) -> list[str]:
    """Issues of a check with ``expect: {status: 200}`` and the check-level YAML ``extra`` after it."""
    return issues(f'name: a\nchecks:\n  - name: c\n    send: {{url: "http://reviews:9080/"}}\n    expect: {{status: 200}}\n{extra}')


WAIT_HINT = ("wait is for policy time such as an ejection running out, never for config "
             "(apply already waits for the ACKs)")


@pytest.mark.parametrize(
    ("wait", "message"),
    [
        ("0s", f"must be above 0s and at most 60s (got 0s); {WAIT_HINT}"),
        ("-1s", f"must be above 0s and at most 60s (got -1s); {WAIT_HINT}"),
        ("61s", f"must be above 0s and at most 60s (got 61s); {WAIT_HINT}"),
        ("soon", 'not a valid duration (got "soon"); use a number with a unit (ns, us, ms, s, m, h), e.g. 500ms, 1.5s, 1m30s'),
    ],
)
def test_error_bad_wait(wait: str, message: str) -> None:
    assert check_issues(f"    wait: {wait}\n") == [f"case.yaml:6: case a: checks[0].wait: {message}"]


WHERE = "case a: checks[0].expect_where[0]"
EVERY_ONLY = ("only every-response expectations can be judged on the matching responses; "
              "put splits, quantiles, stats, same_instance and instances under the check's expect")


@pytest.mark.parametrize(
    ("entry", "messages"),
    [
        ("{where: {}, expect: {flags: UO}}", [f'case.yaml:7: {WHERE}.where: expected a filter such as {{status: 503}} or {{flags: "-"}}']),
        ("{where: {status: {200: 0.5, 503: 0.5}}, expect: {flags: UO}}", [
            (f'case.yaml:7: {WHERE}.where.status: a filter picks responses by one value per key, e.g. status: 503 or flags: "-" '
             "(got status 200=0.5, 503=0.5)")]),
        ("{where: {flags: OU}, expect: {flags: UO}}", [
            (f'case.yaml:7: {WHERE}.where.flags: unknown Envoy response flag (got "OU"); write flags as Envoy logs them '
             '(UO, NR, FI, "-" for none); did you mean UO?')]),
        ("{where: {status: 503}, expect: {version: {v1: 0.5, v2: 0.5}, stats: {x: {at_least: 1}}}}", [
            f"case.yaml:7: {WHERE}.expect.version: {EVERY_ONLY} (got version v1=0.5, v2=0.5)",
            f"case.yaml:7: {WHERE}.expect.stats.x: {EVERY_ONLY} (got stats x >= 1)"]),
        ("{where: {status: 503}, expect: {}}", [
            (f"case.yaml:7: {WHERE}.expect: nothing to check; add an expectation such as version, status, flags or headers "
             "(e.g. version: v2, or version: {v1: 0.9, v2: 0.1})")]),
        ("{wher: {status: 503}, expect: {flags: UO}}", [
            f"case.yaml:7: {WHERE}.wher: unknown field; did you mean where?"]),
    ],
)
def test_error_bad_expect_where(entry: str, messages: list[str]) -> None:
    assert check_issues(f"    expect_where:\n      - {entry}\n") == messages


def test_error_expect_where_must_be_a_list() -> None:
    assert check_issues("    expect_where: {where: {status: 503}, expect: {flags: UO}}\n") == [
        "case.yaml:6: case a: checks[0].expect_where: expected a list, got a mapping"
    ]
