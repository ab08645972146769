"""How far a KPI is from its target, in words on the executive page: one point, not "1 percentage points"."""

from __future__ import annotations

import pytest

from api.pages.analytics import against_target
from api.pages.common import Formats

FORMATS = Formats("Europe/Berlin", "en_GB", "EUR")


@pytest.mark.parametrize(
    ("rate", "words"),
    [
        (0.94, "off target by 1 percentage point"),  # delivery rate, target 95%
        (0.93, "off target by 2 percentage points"),
        (0.9495, "off target by 0.05 percentage points"),
        (0.96, "on target"),
    ],
)
def test_a_rate_off_target_says_its_points_in_the_right_number(rate: float, words: str) -> None:
    assert against_target(rate, "delivery_rate", FORMATS)[0] == words
