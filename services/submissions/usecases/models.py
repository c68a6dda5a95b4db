"""Use cases of models: a participant's named model with a payout address valid on the network."""

from __future__ import annotations

import secrets
import unicodedata
from typing import Any

from services.submissions.domain.names import name_skeleton
from services.submissions.store import identity as identity_repo
from services.submissions.store import models as repo
from services.submissions.usecases.identity import require_participant_row
from services.submissions.usecases.rounds import require_tournament
from shared.auth import Principal, Role
from shared.bitcoin_address import validate_address
from shared.errors import InvalidArgument, NotFound, PermissionDenied, ResourceExhausted


def clean_model_name(value: str) -> str:
    name = unicodedata.normalize("NFC", value).strip()
    if not name or len(name) > 64 or any(unicodedata.category(c).startswith(("C", "Z")) and c != " " for c in name):
        raise InvalidArgument("display_name must be 1-64 printable characters", metadata={"field": "display_name"})
    return name


def check_address(address: str, network: str) -> str:
    address = address.strip()
    if not address:
        raise InvalidArgument("payout_address is required", metadata={"field": "payout_address"})
    try:
        validate_address(address, network)
    except InvalidArgument as exc:
        raise InvalidArgument(f"payout_address: {exc.message}", metadata={"field": "payout_address"}) from None
    return address


async def create_model(
    conn: Any,
    caller: Principal,
    tournament_id: str,
    participant_id: str,
    display_name: str,
    payout_address: str,
    max_models: int | None = None,
) -> Any:
    if caller.role is Role.PARTICIPANT:
        if participant_id and participant_id != caller.participant_id:
            raise PermissionDenied("a participant creates models for itself only", metadata={"field": "participant_id"})
        participant_id = caller.participant_id
    elif not participant_id:
        raise InvalidArgument(
            "participant_id is required when an operator creates a model", metadata={"field": "participant_id"}
        )
    tournament = await require_tournament(conn, tournament_id)
    await require_participant_row(conn, participant_id)
    if max_models is not None:
        await identity_repo.lock_participant(conn, participant_id)
        count = await repo.count_models(conn, participant_id)
        if count >= max_models:
            raise ResourceExhausted(
                f"participant {participant_id!r} already has {count} models, the limit "
                f"(CROWDQUANT_MAX_MODELS_PER_PARTICIPANT={max_models})",
                reason="MODEL_LIMIT",
                metadata={"limit": str(max_models)},
            )
    name = clean_model_name(display_name)
    return await repo.insert_model(
        conn,
        model_id="m_" + secrets.token_hex(6),
        tournament_id=tournament_id,
        participant_id=participant_id,
        display_name=name,
        payout_address=check_address(payout_address, tournament.network),
        name_skeleton=name_skeleton(name),
    )


async def require_model(
    conn: Any, model_id: str, caller: Principal | None = None, *, for_update: bool = False, owner_only: bool = False
) -> Any:
    if not model_id:
        raise InvalidArgument("model_id is required", metadata={"field": "model_id"})
    row = await repo.get_model(conn, model_id, for_update=for_update)
    hidden = (
        owner_only
        and caller is not None
        and caller.role is Role.PARTICIPANT
        and row is not None
        and row.participant_id != caller.participant_id
    )
    if row is None or hidden:
        raise NotFound(
            f"model {model_id!r} not found" + (" among your models" if hidden else ""), metadata={"model_id": model_id}
        )
    return row


async def update_address(conn: Any, caller: Principal, model_id: str, address: str) -> Any:
    model = await require_model(conn, model_id, caller, for_update=True, owner_only=True)
    tournament = await require_tournament(conn, model.tournament_id)
    return await repo.set_payout_address(conn, model_id, check_address(address, tournament.network))
