"""A synchronous gRPC client for data scientists, with retries that keep the request id.

Uploads are built from a CSV path (``t_id,probability`` or ``id,prediction``; BOM and CRLF are
fine), a pandas DataFrame, or numpy arrays. A malformed file is refused here, before anything is
sent, with its line number. UNAVAILABLE and DEADLINE_EXCEEDED are retried with backoff, reusing
the same request id, so a retried upload never makes a second version.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from crowdquant.common.v1 import common_pb2
from crowdquant.formats import predictions as files
from crowdquant.formats import receipts
from crowdquant.formats.dataset import Dataset, Split, TargetKind
from crowdquant.formats.round_files import write_round
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as pb_grpc
from shared.errors import InvalidArgument, NotFound
from shared.rpc.client import RECONNECT_OPTIONS, RETRYABLE
from shared.rpc.status import error_info

CHUNK_ROWS = 8192


@dataclass(frozen=True)
class Receipt:
    """An accepted upload, verified against the service's published key."""

    tournament_id: str
    round_number: int
    model_id: str
    version: int
    content_sha256: str
    row_count: int
    accept_time: str
    key_id: str
    verified: bool
    submission: pb.Submission


@dataclass(frozen=True)
class DownloadedRound:
    tournament_id: str
    round_number: int
    target_kind: int
    feature_names: list[str]
    dataset: Dataset


def as_predictions(predictions: Any) -> tuple[np.ndarray, np.ndarray]:
    """Ids and values from a path, a DataFrame or an ``(ids, values)`` pair."""
    if isinstance(predictions, str | Path):
        return files.read_predictions(predictions)
    if hasattr(predictions, "columns"):
        frame = predictions
        lower = {str(c).lower(): c for c in frame.columns}
        value_col = next((lower[c] for c in files.VALUE_COLUMNS if c in lower), None)
        if value_col is None:
            raise InvalidArgument("the DataFrame needs a 'prediction' or 'probability' column")
        id_col = next((lower[c] for c in files.ID_COLUMNS if c in lower), None)
        ids = frame[id_col] if id_col is not None else frame.index
        return np.asarray(ids, dtype=str), np.asarray(frame[value_col], dtype=np.float64)
    ids, values = predictions
    return np.asarray(ids, dtype=str), np.asarray(values, dtype=np.float64)


def retry_after(error: grpc.RpcError) -> float | None:
    """Seconds a RESOURCE_EXHAUSTED answer asks to wait before trying again (its ErrorInfo's
    ``retry_after_seconds``, at most a minute); None when it does not say."""
    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    info = error_info(error)
    try:
        seconds = float(info.metadata["retry_after_seconds"]) if info is not None else None
    except (KeyError, ValueError):
        return None
    return min(max(seconds, 0.05), 60.0) if seconds is not None else None


class Client:
    def __init__(
        self,
        address: str = "127.0.0.1:50051",
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 5,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.api_key = api_key or os.environ.get("CROWDQUANT_API_KEY")
        self.timeout = timeout
        self.retries = retries
        options = [
            ("grpc.max_receive_message_length", 256 << 20),
            ("grpc.max_send_message_length", 256 << 20),
            *RECONNECT_OPTIONS,
        ]
        self.channel = (
            grpc.secure_channel(address, credentials, options=options)
            if credentials
            else grpc.insecure_channel(address, options=options)
        )
        self.stub = pb_grpc.SubmissionsServiceStub(self.channel)
        self._public_keys: dict[str, Any] = {}

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),) if self.api_key else ()

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Call, retrying while the service is down and waiting as long as a rate limit says."""
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except grpc.RpcError as exc:
                wait = retry_after(exc)
                if (exc.code() not in RETRYABLE and wait is None) or attempt == self.retries:
                    raise
                time.sleep(wait if wait is not None else min(10.0, 0.2 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    # --- rounds and models -----------------------------------------------------------------

    def round(self, tournament_id: str, number: int = 0) -> pb.Round:
        ref = common_pb2.RoundRef(tournament_id=tournament_id, round_number=number)
        return self._call(
            lambda: self.stub.GetRound(pb.GetRoundRequest(round=ref), metadata=self.metadata, timeout=self.timeout)
        ).round

    def rounds(self, tournament_id: str, limit: int = 20) -> list[pb.Round]:
        request = pb.ListRoundsRequest(tournament_id=tournament_id, page_size=limit)
        return list(
            self._call(lambda: self.stub.ListRounds(request, metadata=self.metadata, timeout=self.timeout)).rounds
        )

    def models(self, tournament_id: str = "") -> list[pb.Model]:
        out: list[pb.Model] = []
        token = ""
        while True:
            request = pb.ListModelsRequest(tournament_id=tournament_id, page_size=500, page_token=token)
            resp = self._call(lambda r=request: self.stub.ListModels(r, metadata=self.metadata, timeout=self.timeout))
            out += resp.models
            token = resp.next_page_token
            if not token:
                return out

    def create_model(
        self,
        tournament_id: str,
        name: str,
        payout_address: str,
        *,
        participant_id: str = "",
        request_id: str | None = None,
    ) -> pb.Model:
        request = pb.CreateModelRequest(
            request_id=request_id or uuid.uuid4().hex,
            tournament_id=tournament_id,
            participant_id=participant_id,
            display_name=name,
            payout_address=payout_address,
        )
        return self._call(lambda: self.stub.CreateModel(request, metadata=self.metadata, timeout=self.timeout)).model

    def model_id(self, tournament_id: str, model: str) -> str:
        """A model id from an id or a display name of the caller's models."""
        if model.startswith("m_"):
            return model
        for m in self.models(tournament_id):
            if m.display_name == model:
                return m.model_id
        raise NotFound(f"no model named {model!r} among your models in tournament {tournament_id!r}")

    # --- data ------------------------------------------------------------------------------

    def fetch_data(
        self, tournament_id: str, number: int = 0, progress: Callable[[int, int], None] | None = None
    ) -> DownloadedRound:
        ref = common_pb2.RoundRef(tournament_id=tournament_id, round_number=number)

        def fetch() -> DownloadedRound:
            header = None
            ids, eras, splits, feats, targets = [], [], [], [], []
            for message in self.stub.DownloadRoundData(
                pb.DownloadRoundDataRequest(round=ref), metadata=self.metadata, timeout=self.timeout * 10
            ):
                if message.WhichOneof("kind") == "header":
                    header = message.header
                    continue
                c = message.chunk
                ids.append(np.asarray(c.ids.decode().split("\n")))
                eras.append(np.char.replace(np.asarray(c.eras.decode().split("\n")), "era", "").astype(np.int32))
                splits.append(np.asarray(c.splits, dtype=np.int8))
                feats.append(np.frombuffer(c.features, dtype="<f4").reshape(c.row_count, -1))
                targets.append(np.frombuffer(c.targets, dtype="<f4"))
                if progress:
                    progress(sum(map(len, ids)), header.row_count)
            assert header is not None
            kind = TargetKind.BINARY if header.target_kind == common_pb2.TARGET_KIND_BINARY else TargetKind.GRADED
            data = Dataset(
                np.concatenate(ids),
                np.concatenate(eras),
                np.concatenate(splits),
                np.concatenate(feats),
                np.concatenate(targets),
                kind,
            )
            return DownloadedRound(
                header.round.tournament_id,
                header.round.round_number,
                header.target_kind,
                list(header.feature_names),
                data,
            )

        return self._call(fetch)

    def download_data(
        self,
        tournament_id: str,
        dest: str | Path,
        number: int = 0,
        *,
        fmt: str = "csv",
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Path]:
        """Write ``training_data`` and ``tournament_data`` files (CSV, or Parquet with pyarrow)."""
        fetched = self.fetch_data(tournament_id, number, progress)
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        suffix = {"csv": "csv", "parquet": "parquet"}[fmt]
        data = fetched.dataset
        training = dest / f"training_data.{suffix}"
        tournament = dest / f"tournament_data.{suffix}"
        write_round(training, data.select(data.mask(Split.TRAINING)))
        write_round(tournament, data.select(data.mask(Split.VALIDATION, Split.LIVE)), include_targets=False)
        return [training, tournament]

    # --- uploads ---------------------------------------------------------------------------

    def submit(
        self,
        tournament_id: str,
        predictions: Any,
        *,
        model: str,
        round_number: int = 0,
        request_id: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Receipt:
        """Upload predictions; returns the receipt after checking its signature."""
        ids, values = as_predictions(predictions)
        model_id = self.model_id(tournament_id, model)
        if round_number == 0:
            round_number = self.round(tournament_id).round.round_number
        header = pb.UploadHeader(
            request_id=request_id or uuid.uuid4().hex,
            model_id=model_id,
            round=common_pb2.RoundRef(tournament_id=tournament_id, round_number=round_number),
        )
        values32 = np.asarray(values, dtype="<f4")

        def requests() -> Iterator[pb.UploadPredictionsRequest]:
            yield pb.UploadPredictionsRequest(header=header)
            for start in range(0, len(ids), CHUNK_ROWS):
                part = slice(start, start + CHUNK_ROWS)
                yield pb.UploadPredictionsRequest(
                    chunk=pb.PredictionsChunk(
                        ids="\n".join(ids[part].tolist()).encode(), values=values32[part].tobytes()
                    )
                )
                if progress:
                    progress(min(start + CHUNK_ROWS, len(ids)), len(ids))

        response = self._call(
            lambda: self.stub.UploadPredictions(requests(), metadata=self.metadata, timeout=self.timeout)
        )
        return self.verify(response)

    def verify(self, response: pb.UploadPredictionsResponse) -> Receipt:
        """Check the receipt's Ed25519 signature with the published key (raises if it fails)."""
        r = response.receipt
        public = self._public_keys.get(r.key_id)
        if public is None:
            key = self._call(
                lambda: self.stub.GetReceiptPublicKey(
                    pb.GetReceiptPublicKeyRequest(key_id=r.key_id), timeout=self.timeout
                )
            )
            public = self._public_keys[r.key_id] = receipts.load_public_key_raw(key.public_key)
        fields = receipts.ReceiptFields.from_payload(r.signed_payload)
        receipts.verify_receipt(public, receipts.Receipt(fields, r.signature), r.signed_payload)
        shown = (r.round.tournament_id, r.round.round_number, r.model_id, r.version, r.content_sha256, r.row_count)
        signed = (
            fields.tournament_id,
            fields.round_number,
            fields.model_id,
            fields.version,
            fields.content_sha256,
            fields.row_count,
        )
        if shown != signed:
            raise receipts.ReceiptInvalid("receipt fields differ from what was signed")
        return Receipt(
            fields.tournament_id,
            fields.round_number,
            fields.model_id,
            fields.version,
            fields.content_sha256,
            fields.row_count,
            fields.accept_time,
            fields.key_id,
            True,
            response.submission,
        )
