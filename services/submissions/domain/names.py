"""Confusable names: a display name's skeleton, so ``bо-linear`` (Cyrillic о) can't pose as ``bo-linear``.

The skeleton is Unicode TR39's, computed by ICU's SpoofChecker: two strings with the same skeleton
look alike (``bo-Iinear``, ``b0-linear``... map like ``bo-linear``/``bO-linear`` in the TR39 table).
It is taken of the NFKC form, so full-width ``ｂｏ-linear`` collides too. Case is left as TR39 has it:
``BO-LINEAR`` is visibly not ``bo-linear``. The database keeps the skeleton in a unique index, so
two concurrent creates can't both take lookalike names.
"""

from __future__ import annotations

import unicodedata

import icu

_CHECKER = icu.SpoofChecker()


def name_skeleton(name: str) -> str:
    """The key under which display names must be unique: the TR39 skeleton of the NFKC form."""
    return _CHECKER.getSkeleton(0, unicodedata.normalize("NFKC", name))
