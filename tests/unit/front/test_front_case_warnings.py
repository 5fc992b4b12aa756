"""Checks that are valid but probably not what their author meant: a split of one value."""

from __future__ import annotations

from harness.case_warnings import split_form_warnings
from tests.unit.front.front_builders import make_case, make_case_text, make_check


def test_split_of_one_value_warns_with_the_every_response_form() -> None:
    case = make_case(make_case_text(
        make_check("one", "{version: {v2: 1.0}}"),
        make_check("with a zero", "{version: {v1: 0, v2: 1}, status: {200: 0.5, 503: 0.5}}"),
        make_check("every", "{version: v2}"),
        make_check("split", "{version: {v1: 0.9, v2: 0.1}}"),
    ))
    assert [str(w) for w in split_form_warnings(case)] == [
        f"case.yaml:{case.checks[0].line}: checks[0].expect.version: {{v2: 1}} is a split, judged with a tolerance "
        "(delta), so a small share of responses with another version still passes; write `version: v2` to claim "
        "every response",
        f"case.yaml:{case.checks[1].line}: checks[1].expect.version: {{v1: 0, v2: 1}} is a split, judged with a "
        "tolerance (delta), so a small share of responses with another version still passes; write `version: v2` "
        "to claim every response",
    ]
