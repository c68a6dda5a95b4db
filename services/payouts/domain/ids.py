"""Deterministic ids: every ledger entry, reservation and batch id is derived from what caused it.

A retried request (after a timeout, a crash, a restart) therefore writes to the same entry ids and
the ledger's idempotency returns the first result instead of booking the money twice. UUIDv5 over a
readable name keeps the derivation auditable: anyone can recompute an entry's id from its cause.
"""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6f1c8c4e-2b7e-5b1a-9a51-63726f776471")
"""Fixed namespace of crowdquant payouts ids (never change it: stored ids depend on it)."""


def derive(*parts: object) -> uuid.UUID:
    """A UUIDv5 of the parts joined by '/' (parts must not contain '/' ambiguously: ids and numbers)."""
    return uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts))


def deposit_entry(subject: str, request_id: str) -> uuid.UUID:
    return derive("deposit", subject, request_id)


def stake_entry(subject: str, request_id: str) -> uuid.UUID:
    return derive("stake", subject, request_id)


def allocation(tournament_id: str, round_number: int, policy: str) -> uuid.UUID:
    """One allocation per round and policy: the id itself is the idempotency key."""
    return derive("allocation", tournament_id, round_number, policy)


def allocation_entry(allocation_id: uuid.UUID) -> uuid.UUID:
    return derive("allocation-entry", allocation_id)


def batch(subject: str, request_id: str, index: int) -> uuid.UUID:
    return derive("batch", subject, request_id, index)


def reservation(batch_id: uuid.UUID, model_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    """(pending id, reserve entry id) of one output of a batch."""
    return derive("pending", batch_id, model_id), derive("reserve-entry", batch_id, model_id)


def settlement_entry(batch_id: uuid.UUID, model_id: str, outcome: str) -> uuid.UUID:
    """The post or void entry of one output's reservation (``outcome`` is "post" or "void")."""
    return derive("settle", outcome, batch_id, model_id)


def fee_entry(batch_id: uuid.UUID) -> uuid.UUID:
    return derive("fee", batch_id)


def funding_entry(network: str, txid: str, vout: int) -> uuid.UUID:
    """A coin received by the platform wallet is booked once, keyed by its outpoint."""
    return derive("funding", network, txid, vout)
