"""Use cases of tournaments, datasets and rounds: open with a commitment, close, resolve, mark."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import re
import secrets
from dataclasses import replace
from typing import Any

import numpy as np

from crowdquant.common.v1 import common_pb2
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from services.submissions.api import rules as tournament_rules
from services.submissions.domain import commitment, obfuscation
from services.submissions.domain import dataset as datagen
from services.submissions.domain.checks import align_to_rows
from services.submissions.domain.dataset import Split, TargetKind
from services.submissions.domain.row_index import RoundRows
from services.submissions.domain.state import RoundState, Transition, transition
from services.submissions.store import rounds as repo
from services.submissions.store.round_data import F32, PackedRound, unpack_strings
from shared.errors import FailedPrecondition, InvalidArgument, NotFound

STATE_NAMES = {s: s.name.lower() for s in RoundState}
STATE_BY_NAME = {v: k for k, v in STATE_NAMES.items()}
TARGET_KINDS = {common_pb2.TARGET_KIND_BINARY: "binary", common_pb2.TARGET_KIND_GRADED: "graded"}
NETWORKS = {
    common_pb2.BITCOIN_NETWORK_BITCOINLIB_TEST: "bitcoinlib_test",
    common_pb2.BITCOIN_NETWORK_TESTNET: "testnet",
    common_pb2.BITCOIN_NETWORK_REGTEST: "regtest",
    common_pb2.BITCOIN_NETWORK_MAINNET: "mainnet",
}
_TOURNAMENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_GENERATED_ROWS = 2_000_000


def require_tournament_id(value: str) -> str:
    if not _TOURNAMENT_ID.match(value or ""):
        raise InvalidArgument(
            "tournament_id must be a lower-case slug [a-z0-9-], 1-63 characters", metadata={"field": "tournament_id"}
        )
    return value


async def create_tournament(conn: Any, request: pb.CreateTournamentRequest) -> Any:
    require_tournament_id(request.tournament_id)
    kind = TARGET_KINDS.get(request.target_kind)
    if kind is None:
        raise InvalidArgument(
            "target_kind: choose TARGET_KIND_BINARY or TARGET_KIND_GRADED", metadata={"field": "target_kind"}
        )
    network = NETWORKS.get(request.network or common_pb2.BITCOIN_NETWORK_BITCOINLIB_TEST)
    if network is None:
        raise InvalidArgument("network: unknown Bitcoin network", metadata={"field": "network"})
    name = request.display_name.strip() or request.tournament_id
    if len(name) > 100:
        raise InvalidArgument("display_name must be at most 100 characters", metadata={"field": "display_name"})
    rules = tournament_rules.with_defaults(request.rules, request.target_kind)
    return await repo.insert_tournament(
        conn,
        tournament_id=request.tournament_id,
        display_name=name,
        target_kind=kind,
        network=network,
        rules=rules.SerializeToString(deterministic=True),
    )


async def require_tournament(conn: Any, tournament_id: str) -> Any:
    if not tournament_id:
        raise InvalidArgument("tournament_id is required", metadata={"field": "tournament_id"})
    row = await repo.get_tournament(conn, tournament_id)
    if row is None:
        raise NotFound(f"tournament {tournament_id!r} not found", metadata={"tournament_id": tournament_id})
    return row


def rules_of(tournament: Any) -> pb.TournamentRules:
    return pb.TournamentRules.FromString(bytes(tournament.rules))


def target_kind_of(tournament: Any) -> TargetKind:
    return TargetKind.BINARY if tournament.target_kind == "binary" else TargetKind.GRADED


async def require_round(conn: Any, ref: common_pb2.RoundRef, *, for_update: bool = False, counts: bool = True) -> Any:
    require_tournament_id(ref.tournament_id)
    if ref.round_number < 0:
        raise InvalidArgument("round.round_number must be >= 0 (0 = latest)", metadata={"field": "round"})
    row = await repo.get_round(conn, ref.tournament_id, ref.round_number, for_update=for_update, counts=counts)
    if row is None:
        which = ref.round_number or "latest"
        raise NotFound(
            f"round {which} of tournament {ref.tournament_id!r} not found",
            metadata={"tournament_id": ref.tournament_id, "round_number": str(ref.round_number)},
        )
    return row


def spec_from_proto(spec: pb.GeneratedDatasetSpec, kind: TargetKind) -> datagen.DatasetSpec:
    base = datagen.DatasetSpec(target_kind=kind, seed=int(spec.seed))
    values: dict[str, Any] = {}
    for proto_name, field in (
        ("n_train", "n_training"),
        ("n_validation", "n_validation"),
        ("n_live", "n_live"),
        ("n_features", "n_features"),
        ("n_training_eras", "n_training_eras"),
    ):
        value = getattr(spec, proto_name)
        if value < 0:
            raise InvalidArgument(f"generated.{proto_name} must not be negative", metadata={"field": proto_name})
        if value:
            values[field] = value
    if spec.n_tournament_eras < 0:
        raise InvalidArgument("generated.n_tournament_eras must not be negative")
    if spec.signal_strength:
        if not 0 < spec.signal_strength < 10:
            raise InvalidArgument("generated.signal_strength must be in (0, 10)")
        values["signal"] = spec.signal_strength
    spec_out = replace(base, **values)
    n_val, n_live = spec_out.n_validation, spec_out.n_live
    if "n_validation" in values and "n_live" not in values:
        spec_out = replace(spec_out, n_live=max(1, datagen.NUMERAI_2016_TOURNAMENT_ROWS - n_val))
    if "n_live" in values and "n_validation" not in values:
        spec_out = replace(spec_out, n_validation=max(1, datagen.NUMERAI_2016_TOURNAMENT_ROWS - n_live))
    n_val, n_live = spec_out.n_validation, spec_out.n_live
    if spec.n_tournament_eras:
        spec_out = replace(spec_out, **datagen.tournament_eras(spec.n_tournament_eras, n_val, n_live))
    if spec_out.n_validation_eras > spec_out.n_validation:
        spec_out = replace(spec_out, n_validation_eras=spec_out.n_validation)
    if spec_out.n_live_eras > spec_out.n_live:
        spec_out = replace(spec_out, n_live_eras=spec_out.n_live)
    if spec_out.n_training_eras > spec_out.n_training:
        spec_out = replace(spec_out, n_training_eras=spec_out.n_training)
    total = spec_out.n_training + spec_out.n_validation + spec_out.n_live
    if total > MAX_GENERATED_ROWS or spec_out.n_features > 512:
        raise InvalidArgument(f"generated dataset too large: at most {MAX_GENERATED_ROWS} rows and 512 features")
    spec_out.validate()
    return spec_out


def generated_round(spec: datagen.DatasetSpec) -> PackedRound:
    """Generate, then obfuscate: the raw features are never stored.

    The obfuscation key is derived from the seed, so a seed reproduces the published round exactly
    (the same data, the same scores). The seed is the operator's secret: whoever knows it can
    regenerate the hidden targets too, so rounds show it only to operators and services.
    """
    raw = datagen.generate(spec)
    key = hmac.new(b"crowdquant generated round obfuscation", str(spec.seed).encode(), hashlib.sha256).digest()
    published, _ = obfuscation.obfuscate_dataset(raw, key)
    names = [f"feature{i + 1}" for i in range(published.n_features)]
    return PackedRound.from_dataset(published, names)


def dataset_payload(packed: PackedRound) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        ids=packed.ids,
        eras=packed.eras,
        splits=packed.splits,
        features=packed.features,
        targets=packed.targets,
        names=np.asarray(packed.feature_names),
    )
    return buffer.getvalue()


def packed_from_payload(payload: bytes) -> PackedRound:
    with np.load(io.BytesIO(payload), allow_pickle=False) as data:
        return PackedRound(
            list(data["names"]), data["ids"], data["eras"], data["splits"], data["features"], data["targets"]
        )


def commit_round(packed: PackedRound, salt: bytes) -> tuple[str, list[int]]:
    """Commit to the hidden targets known at open: validation, and live when already known."""
    splits = [Split.VALIDATION]
    live = packed.splits == Split.LIVE
    if live.any() and np.isfinite(packed.targets[live]).all():
        splits.append(Split.LIVE)
    mask = np.isin(packed.splits, splits)
    if not np.isfinite(packed.targets[packed.splits == Split.VALIDATION]).all():
        raise InvalidArgument("every validation row needs a target at open (they are committed to)")
    return commitment.commit(packed.ids[mask], packed.targets[mask], salt), [int(s) for s in splits]


async def open_round(conn: Any, request: pb.OpenRoundRequest) -> tuple[int, Any]:
    tournament = await require_tournament(conn, request.tournament_id)
    kind = target_kind_of(tournament)
    source = request.WhichOneof("dataset")
    if source == "dataset_id":
        dataset = await repo.get_dataset(conn, request.dataset_id)
        if dataset is None or dataset.tournament_id != request.tournament_id:
            raise NotFound(
                f"dataset {request.dataset_id!r} not found in tournament {request.tournament_id!r}",
                metadata={"field": "dataset_id"},
            )
        packed = await asyncio.to_thread(packed_from_payload, bytes(dataset.payload))
        generated = None
    else:
        spec = spec_from_proto(request.generated, kind)
        packed = await asyncio.to_thread(generated_round, spec)
        generated = request.generated
    await repo.lock_tournament(conn, request.tournament_id)
    number = await repo.next_round_number(conn, request.tournament_id)
    if request.round_number and request.round_number != number:
        raise FailedPrecondition(
            f"round_number {request.round_number} is not the next round ({number})",
            metadata={"next_round_number": str(number)},
        )
    salt = secrets.token_bytes(commitment.SALT_BYTES)
    digest, committed = commit_round(packed, salt)
    n_train, n_val, n_live = packed.counts()
    scheduled = request.scheduled_close_time.ToDatetime() if request.HasField("scheduled_close_time") else None
    await repo.insert_round(
        conn,
        tournament_id=request.tournament_id,
        round_number=number,
        scheduled_close_at=scheduled,
        training_rows=n_train,
        validation_rows=n_val,
        live_rows=n_live,
        feature_count=len(packed.feature_names),
        era_count=len(np.unique(packed.eras)),
        dataset_id=request.dataset_id or None,
        generated_spec=generated.SerializeToString() if generated is not None else None,
        commitment_sha256=digest,
        committed_splits=committed,
        salt=salt,
    )
    await repo.insert_round_data(conn, tournament_id=request.tournament_id, round_number=number, **packed.columns())
    return number, await repo.get_round(conn, request.tournament_id, number)


async def move_round(conn: Any, ref: common_pb2.RoundRef, target: RoundState, **extra: Any) -> Any:
    """Move a round one step along its lifecycle; a repeat of the same move is a no-op."""
    row = await require_round(conn, ref, for_update=True)
    if transition(STATE_BY_NAME[row.state], target) is Transition.CHANGED:
        column = {
            RoundState.CLOSED: "closed_at",
            RoundState.RESOLVED: "resolved_at",
            RoundState.SCORED: "scored_at",
            RoundState.PAID: "paid_at",
        }[target]
        await repo.set_round_state(conn, row.tournament_id, row.round_number, STATE_NAMES[target], column, **extra)
    return await repo.get_round(conn, row.tournament_id, row.round_number)


def parse_targets(ids_blob: bytes, values_blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    if len(values_blob) % 4:
        raise InvalidArgument(
            "targets.values must be little-endian float32 (length a multiple of 4)",
            metadata={"field": "targets.values"},
        )
    ids = unpack_strings(ids_blob)
    values = np.frombuffer(values_blob, dtype=F32)
    if len(ids) != len(values):
        raise InvalidArgument(
            f"targets: {len(ids)} ids but {len(values)} values; they must pair up", metadata={"field": "targets"}
        )
    return ids, values


def check_target_values(values: np.ndarray, kind: TargetKind, ids: np.ndarray) -> None:
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if kind is TargetKind.BINARY:
        bad |= (values != 0) & (values != 1)
    if bad.any():
        rows = ", ".join(repr(str(i)) for i in ids[np.flatnonzero(bad)[:10]])
        allowed = "0 or 1" if kind is TargetKind.BINARY else "in [0, 1]"
        raise InvalidArgument(
            f"targets must be {allowed}: {int(bad.sum())} bad value(s), first rows {rows}",
            metadata={"field": "targets.values"},
        )


async def resolve_round(conn: Any, request: pb.ResolveRoundRequest) -> Any:
    row = await require_round(conn, request.round, for_update=True)
    if transition(STATE_BY_NAME[row.state], RoundState.RESOLVED) is Transition.UNCHANGED:
        return row
    tournament = await require_tournament(conn, row.tournament_id)
    data = await repo.get_round_data(conn, row.tournament_id, row.round_number)
    packed = PackedRound.from_row(data)
    tournament_rows = packed.tournament_mask
    if request.WhichOneof("targets_source") == "use_generated_targets" and request.use_generated_targets:
        if row.generated_spec is None:
            raise FailedPrecondition("use_generated_targets needs a round opened from a generated dataset")
        targets = packed.targets
    elif request.WhichOneof("targets_source") == "targets":
        ids, values = parse_targets(request.targets.ids, request.targets.values)
        universe = RoundRows.from_ids(packed.ids[tournament_rows])
        aligned = align_to_rows(universe, ids, values.astype(np.float64))
        check_target_values(aligned, target_kind_of(tournament), universe.ids)
        targets = packed.targets.copy()
        targets[tournament_rows] = aligned
    else:
        raise InvalidArgument(
            "targets: send the targets, or use_generated_targets for a generated round",
            metadata={"field": "targets_source"},
        )
    committed = np.isin(packed.splits, list(row.committed_splits))
    commitment.verify(
        row.commitment_sha256,
        packed.ids[committed],
        targets[committed],
        bytes(row.salt),
        expected_ids=packed.ids[committed],
    )
    await repo.set_round_targets(conn, row.tournament_id, row.round_number, targets.astype(F32).tobytes())
    await repo.set_round_state(conn, row.tournament_id, row.round_number, "resolved", "resolved_at", revealed=True)
    return await repo.get_round(conn, row.tournament_id, row.round_number)


def content_sha256(packed: PackedRound) -> str:
    digest = hashlib.sha256()
    for part in packed.columns().values():
        digest.update(part if isinstance(part, bytes) else "\n".join(part).encode())
    return digest.hexdigest()
