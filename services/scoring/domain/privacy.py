"""Who may read a scored round's results before and after the leaderboard publishes it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reader:
    """The caller as the privacy rule sees it: a participant (with its id) or anyone else with a key."""

    participant_id: str | None = None  # set for a participant's key only

    @property
    def is_participant(self) -> bool:
        return self.participant_id is not None


def may_read(reader: Reader, owner: str | None, published: bool) -> bool:
    """Operators, auditors and services read everything; a participant reads its own models' scores,
    and everyone's (``owner`` None: round-wide results) once the round is published."""
    return not reader.is_participant or published or (owner is not None and owner == reader.participant_id)
