"""The one bearer-token check the JSON API, the email webhook and /metrics share."""

from __future__ import annotations

import pytest

from api.rest.common import bearer_matches


@pytest.mark.parametrize(
    ("header", "expected", "ok"),
    [
        ("Bearer s3cret", "s3cret", True),
        ("bearer s3cret", "s3cret", True),
        ("Bearer s3cret", "s3cret\n", True),  # a token pasted with its newline
        ("Bearer s3cret ", "s3cret", True),
        (None, "s3cret", False),
        ("", "s3cret", False),
        ("Basic s3cret", "s3cret", False),
        ("Bearer s3cre", "s3cret", False),
        ("Bearer s3cretX", "s3cret", False),
        ("Bearer", "s3cret", False),
        ("Bearer ", "", False),  # an empty token configured opens nothing
        ("Bearer x", "   ", False),
    ],
)
def test_bearer_matches(header: str | None, expected: str, ok: bool) -> None:
    assert bearer_matches(header, expected) is ok
