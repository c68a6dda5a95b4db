"""Display-name skeletons (TR39 via ICU): lookalikes share one, different names don't."""

from __future__ import annotations

import pytest

from services.submissions.domain.names import name_skeleton


@pytest.mark.parametrize("lookalike", ["b\u043e-linear", "bo-Iinear", "\uff42\uff4f-linear", "bo-linear"])
def test_lookalikes_share_the_skeleton(lookalike: str) -> None:
    assert name_skeleton(lookalike) == name_skeleton("bo-linear")


@pytest.mark.parametrize("other", ["bob-linear", "bo-linear2", "BO-LINEAR", "b-olinear"])
def test_different_names_differ(other: str) -> None:
    assert name_skeleton(other) != name_skeleton("bo-linear")
