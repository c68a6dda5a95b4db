"""A round's packed data (as stored and streamed) and the per-round cache the upload path uses.

Row order is the dataset's: training rows, then validation, then live. The *tournament rows*
(validation then live) are the ones every upload predicts and every score uses.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from services.submissions.domain.dataset import Dataset, Split, TargetKind
from services.submissions.domain.originality import EARLIER_ARRAYS, EarlierSubmissions
from services.submissions.domain.row_index import RoundRows
from services.submissions.domain.upload_stream import longest_id_bytes
from shared.errors import InvalidArgument

F32 = np.dtype("<f4")


def pack_strings(values: np.ndarray) -> bytes:
    return "\n".join(map(str, values.tolist())).encode()


def unpack_strings(data: bytes, what: str = "ids") -> np.ndarray:
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start)
        raise InvalidArgument(
            f"{what}: entry {row} is not UTF-8 text (byte {data[exc.start]:#04x})", metadata={"field": what}
        ) from None
    return np.asarray(text.split("\n")) if data else np.asarray([], dtype=str)


def era_labels(eras: np.ndarray) -> np.ndarray:
    return np.char.add("era", eras.astype(str))


@dataclass(frozen=True, eq=False)
class PackedRound:
    """The stored columns of a round, decoded."""

    feature_names: list[str]
    ids: np.ndarray
    eras: np.ndarray  # int32
    splits: np.ndarray  # int8
    features: np.ndarray  # float32 (n, f), as published
    targets: np.ndarray  # float32, NaN where unknown

    @classmethod
    def from_dataset(cls, dataset: Dataset, feature_names: list[str]) -> PackedRound:
        return cls(
            feature_names,
            np.asarray(dataset.ids, dtype=str),
            dataset.eras.astype(np.int32),
            dataset.split.astype(np.int8),
            dataset.features.astype(np.float32),
            dataset.targets.astype(np.float32),
        )

    @classmethod
    def from_row(cls, row: Any) -> PackedRound:
        splits = np.frombuffer(bytes(row.splits), dtype=np.int8)
        n = len(splits)
        features = np.frombuffer(bytes(row.features), dtype=F32)
        width = len(row.feature_names)
        return cls(
            list(row.feature_names),
            unpack_strings(bytes(row.ids)),
            np.frombuffer(bytes(row.eras), dtype=np.int32),
            splits,
            features.reshape(n, width) if n else features.reshape(0, width),
            np.frombuffer(bytes(row.targets), dtype=F32),
        )

    def columns(self) -> dict[str, Any]:
        return {
            "feature_names": self.feature_names,
            "ids": pack_strings(self.ids),
            "eras": self.eras.astype(np.int32).tobytes(),
            "splits": self.splits.astype(np.int8).tobytes(),
            "features": np.ascontiguousarray(self.features, dtype=F32).tobytes(),
            "targets": self.targets.astype(F32).tobytes(),
        }

    @property
    def tournament_mask(self) -> np.ndarray:
        return self.splits != Split.TRAINING

    def counts(self) -> tuple[int, int, int]:
        return tuple(int(np.count_nonzero(self.splits == s)) for s in Split)  # type: ignore[return-value]

    def dataset(self, kind: TargetKind) -> Dataset:
        return Dataset(self.ids, self.eras, self.splits, self.features, self.targets, kind)


@dataclass(eq=False)
class RoundView:
    """What the upload path needs of one round, built once per process and kept warm.

    It holds no targets: nothing an upload is told may depend on them (see SECURITY.md).
    """

    rows: RoundRows
    eras: np.ndarray
    splits: np.ndarray
    features: np.ndarray
    earlier: EarlierSubmissions
    models: list[str] = field(default_factory=list)  # the model of each earlier submission
    last_seq: int = 0
    clusters: dict[int, np.ndarray] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    max_id_bytes: int = 1  # the round's longest id in UTF-8 bytes: no uploaded id may be longer

    @classmethod
    def build(cls, packed: PackedRound) -> RoundView:
        mask = packed.tournament_mask
        ids = packed.ids[mask]
        return cls(
            rows=RoundRows.from_ids(ids),
            eras=packed.eras[mask],
            splits=packed.splits[mask],
            features=packed.features[mask],
            earlier=EarlierSubmissions.empty(int(mask.sum())),
            max_id_bytes=longest_id_bytes(ids),
        )

    buffers: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, seq: int, label: str, model_id: str, predictions: np.ndarray) -> None:
        """Append one accepted submission; amortised O(n) per add (buffers grow by doubling)."""
        if seq <= self.last_seq:
            return
        one = EarlierSubmissions.build(
            [label], np.asarray(predictions, dtype=np.float32)[None, :], sketch_points=self.earlier.sketch_points
        )
        m = len(self.earlier)
        for name in EARLIER_ARRAYS:
            row = getattr(one, name)
            buffer = self.buffers.get(name)
            if buffer is None or buffer.shape[0] <= m:
                grown = np.empty((max(8, 2 * (m + 1)), *row.shape[1:]), dtype=row.dtype)
                if m:
                    grown[:m] = getattr(self.earlier, name)
                self.buffers[name] = buffer = grown
            buffer[m] = row[0]
        self.earlier = EarlierSubmissions.from_arrays(
            (*self.earlier.labels, label),
            self.earlier.sketch_points,
            *(self.buffers[name][: m + 1] for name in EARLIER_ARRAYS),
            previous=self.earlier,
        )
        self.models.append(model_id)
        self.last_seq = seq


class RoundCache:
    """Least-recently-used views of the rounds being uploaded to."""

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self._views: OrderedDict[tuple[str, int], RoundView] = OrderedDict()

    def get(self, key: tuple[str, int]) -> RoundView | None:
        view = self._views.get(key)
        if view is not None:
            self._views.move_to_end(key)
        return view

    def put(self, key: tuple[str, int], view: RoundView) -> RoundView:
        self._views[key] = view
        self._views.move_to_end(key)
        while len(self._views) > self.capacity:
            self._views.popitem(last=False)
        return view

    def drop(self, key: tuple[str, int]) -> None:
        self._views.pop(key, None)
