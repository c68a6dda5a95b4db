"""Entry ids made by ``new_entry_id`` are version-7 UUIDs that sort in the order they were made."""

from __future__ import annotations

import time

from services.payouts.ledger import new_entry_id


def test_ids_are_uuid7_and_time_ordered():
    earlier = [new_entry_id() for _ in range(50)]
    time.sleep(0.002)  # the next millisecond, so the order is decided by the timestamp bits
    later = new_entry_id()
    assert {i.version for i in [*earlier, later]} == {7}
    assert all(i.variant == "specified in RFC 4122" for i in earlier)
    assert max(earlier) < later
    assert len(set(earlier)) == 50
