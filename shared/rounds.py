"""A round's key as use cases and domain code hold it (the contracts' ``RoundRef`` stays at the edge)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class RoundKey:
    tournament_id: str
    number: int

    def __str__(self) -> str:
        return f"round {self.number} of {self.tournament_id!r}"
