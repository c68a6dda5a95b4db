"""Fixtures for the submissions service: a tournament with a small generated round, models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowdquant.common.v1 import common_pb2
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as pb_grpc
from tests.integration.conftest import md
from tests.support import upload_stream

SMALL = pb.GeneratedDatasetSpec(
    seed=7, n_train=2000, n_validation=1200, n_live=600, n_features=8, n_training_eras=10, n_tournament_eras=5
)


def blt_address(seed: int = 0) -> str:
    from bitcoinlib.keys import HDKey

    return HDKey(bytes([seed % 256 + 1]) * 32, network="bitcoinlib_test", witness_type="segwit").address()


def upload_requests(header: pb.UploadHeader, ids, values, chunk: int = 500):
    return upload_stream(header, ids, values, chunk_rows=chunk)


@dataclass
class Round:
    tournament_id: str
    number: int
    ids: list[str]
    eras: list[str]
    splits: list[int]
    features: np.ndarray
    train_x: np.ndarray
    train_y: np.ndarray

    def ref(self) -> common_pb2.RoundRef:
        return common_pb2.RoundRef(tournament_id=self.tournament_id, round_number=self.number)


async def download(stub: pb_grpc.SubmissionsServiceStub, ref: common_pb2.RoundRef, key: str):
    ids, eras, splits, feats, targets = [], [], [], [], []
    header = None
    async for message in stub.DownloadRoundData(
        pb.DownloadRoundDataRequest(round=ref, chunk_rows=700), metadata=md(key)
    ):
        if message.WhichOneof("kind") == "header":
            header = message.header
            continue
        c = message.chunk
        ids += c.ids.decode().split("\n")
        eras += c.eras.decode().split("\n")
        splits += list(c.splits)
        feats.append(np.frombuffer(c.features, dtype="<f4").reshape(c.row_count, -1))
        targets.append(np.frombuffer(c.targets, dtype="<f4"))
    return header, ids, eras, np.asarray(splits), np.concatenate(feats), np.concatenate(targets)
