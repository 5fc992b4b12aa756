"""Warnings about checks that are valid but probably not what their author meant. Pure.

``version: {v2: 1.0}`` reads like "every response from v2", but a mapping is a split: judged with a
tolerance (delta, 0.05 by default), so a leak of a few percent to v1 still passes. ``version: v2`` is
the every-response form, which fails on the first response from elsewhere. Both are valid (a split
that tolerates a small leak can be meant), so this is a warning, printed by ``validate`` and ``run``.
"""

from __future__ import annotations

from harness.case import Case
from harness.errors import Issue
from harness.expect.base import Expectation


def split_form_warnings(case: Case) -> list[Issue]:
    """A warning per expectation written as a split with a single category at 1 (``{v2: 1.0}``)."""
    issues = []
    for i, check in enumerate(case.checks):
        for e in check.expectations:
            if not isinstance(e, Expectation) or e.fractions is None or "." in e.field:
                continue
            fractions = e.fractions
            nonzero = [name for name, share in fractions.items() if share > 0]
            if len(nonzero) != 1:
                continue
            value = nonzero[0]
            written = ", ".join(f"{k}: {v:g}" for k, v in fractions.items())
            issues.append(Issue(
                f"{{{written}}} is a split, judged with a tolerance (delta), so a small share of responses with "
                f"another {e.field} still passes; write `{e.field}: {value}` to claim every response",
                file=case.file, line=check.line, path=f"checks[{i}].expect.{e.field}",
            ))
    return issues
