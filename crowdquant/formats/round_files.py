"""Round data files: write what participants download, read what operators bring.

Layout (the 2017 Numerai layout, which also reads as the 2016 one): one row per round row, in
row order, columns ``id, era, data_type, feature1 .. featureN, target``; ``era`` as ``era12``,
``data_type`` one of ``train``, ``validation``, ``live``; ``target`` empty where it is not
known to the holder (hidden validation targets, unresolved live targets). Features are written
with 9 significant digits, which round-trips float32 exactly. Operators' files may use ``t_id``
for ``id``, plain numbers for eras, ``training`` for ``train``, any case, and may omit ``target``.

Parquet (same columns, ``era`` as int32) needs the optional ``pyarrow``; without it the Parquet
functions raise FAILED_PRECONDITION saying so, and CSV keeps working.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from crowdquant.formats.dataset import Dataset, Split, TargetKind
from crowdquant.formats.errors import MalformedFile
from crowdquant.formats.predictions import decode, pyarrow_modules

SPLIT_NAMES = {Split.TRAINING: "train", Split.VALIDATION: "validation", Split.LIVE: "live"}
_SPLIT_BY_NAME = {
    "train": Split.TRAINING,
    "training": Split.TRAINING,
    "validation": Split.VALIDATION,
    "live": Split.LIVE,
}


def _columns(dataset: Dataset) -> list[str]:
    return ["id", "era", "data_type", *(f"feature{j + 1}" for j in range(dataset.n_features)), "target"]


def _known_targets(dataset: Dataset, include_targets: bool) -> np.ndarray:
    return dataset.targets if include_targets else np.full(dataset.n_rows, np.nan, dtype=np.float32)


def write_round_csv(path: str | Path, dataset: Dataset, *, include_targets: bool = True) -> None:
    """Write ``dataset`` as CSV; ``include_targets=False`` leaves every target empty."""
    targets = _known_targets(dataset, include_targets)
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(_columns(dataset))
        for row_id, era, split, features, target in zip(
            dataset.ids.tolist(),
            dataset.eras.tolist(),
            dataset.split.tolist(),
            dataset.features.tolist(),
            targets.tolist(),
            strict=True,
        ):
            writer.writerow(
                [
                    row_id,
                    f"era{era}",
                    SPLIT_NAMES[Split(split)],
                    *map("{:.9g}".format, features),
                    "" if target != target else f"{target:.9g}",
                ]
            )  # target != target: NaN


def _infer_kind(targets: np.ndarray) -> TargetKind:
    known = targets[~np.isnan(targets)]
    return TargetKind.BINARY if np.isin(known, (0.0, 1.0)).all() else TargetKind.GRADED


def _parse_era(value: str) -> int:
    text = value.strip().lower().removeprefix("era")
    era = int(text)
    if era < 0:
        raise ValueError(value)
    return era


def _header(names: list[str], source: str) -> tuple[int, int, int, list[int], int | None]:
    lowered = [name.strip().lower() for name in names]
    positions = {name: i for i, name in enumerate(lowered)}
    id_at = positions.get("id", positions.get("t_id"))
    missing = [
        name
        for name, at in (
            ("id", id_at),
            ("era", positions.get("era")),
            ("data_type", positions.get("data_type")),
        )
        if at is None
    ]
    features = [i for i, name in enumerate(lowered) if name.startswith("feature")]
    if id_at is None or missing or not features:
        raise MalformedFile(
            source,
            1,
            f"round data header lacks {missing or ['feature columns']}; "
            "expected id, era, data_type, feature1..featureN[, target]",
        )
    return id_at, positions["era"], positions["data_type"], features, positions.get("target")


def parse_round_csv(data: bytes | str, *, source: str = "round.csv", target_kind: TargetKind | None = None) -> Dataset:
    """Round data CSV -> ``Dataset`` (targets NaN where empty); ``MalformedFile`` names the line."""
    text = decode(data, source) if isinstance(data, bytes | bytearray) else data.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise MalformedFile(source, 0, "file is empty")
    id_at, era_at, type_at, feature_at, target_at = _header(header, source)
    width = len(header)
    ids, eras, splits, features, targets = [], [], [], [], []
    for row in reader:
        line = reader.line_num
        if not row:
            continue
        if len(row) != width:
            raise MalformedFile(source, line, f"expected {width} columns, found {len(row)}")
        ids.append(row[id_at].strip())
        try:
            eras.append(_parse_era(row[era_at]))
        except ValueError:
            raise MalformedFile(source, line, f"era {row[era_at]!r} is not like 'era12' or '12'") from None
        split = _SPLIT_BY_NAME.get(row[type_at].strip().lower())
        if split is None:
            raise MalformedFile(source, line, f"data_type {row[type_at]!r} is not train, validation or live")
        splits.append(split)
        try:
            features.append([float(row[i]) for i in feature_at])
            target = row[target_at].strip() if target_at is not None else ""
            targets.append(float(target) if target else np.nan)
        except ValueError:
            raise MalformedFile(source, line, "a feature or target is not a number") from None
    if not ids:
        raise MalformedFile(source, 0, "no rows after the header")
    target_array = np.asarray(targets, dtype=np.float32)
    return Dataset(
        ids=np.asarray(ids, dtype=str),
        eras=np.asarray(eras, dtype=np.int32),
        split=np.asarray(splits, dtype=np.int8),
        features=np.asarray(features, dtype=np.float32),
        targets=target_array,
        target_kind=target_kind or _infer_kind(target_array),
    )


def read_round_csv(path: str | Path, *, target_kind: TargetKind | None = None) -> Dataset:
    path = Path(path)
    return parse_round_csv(path.read_bytes(), source=path.name, target_kind=target_kind)


def write_round_parquet(path: str | Path, dataset: Dataset, *, include_targets: bool = True) -> None:
    """Same columns as the CSV (needs pyarrow; FAILED_PRECONDITION without it)."""
    pyarrow, parquet = pyarrow_modules()
    columns = {
        "id": pyarrow.array(dataset.ids.tolist(), type=pyarrow.string()),
        "era": pyarrow.array(dataset.eras.astype(np.int32)),
        "data_type": pyarrow.array([SPLIT_NAMES[Split(s)] for s in dataset.split.tolist()]),
    }
    for j in range(dataset.n_features):
        columns[f"feature{j + 1}"] = pyarrow.array(dataset.features[:, j])
    columns["target"] = pyarrow.array(_known_targets(dataset, include_targets), from_pandas=True)
    parquet.write_table(pyarrow.table(columns), str(path))


def read_round_parquet(path: str | Path, *, target_kind: TargetKind | None = None) -> Dataset:
    """Round data from Parquet (needs pyarrow; FAILED_PRECONDITION without it)."""
    _, parquet = pyarrow_modules()
    path = Path(path)
    table = parquet.read_table(str(path))
    id_at, era_at, type_at, feature_at, target_at = _header(list(table.column_names), path.name)

    def column(i: int) -> np.ndarray:
        return np.asarray(table.column(i).to_numpy(zero_copy_only=False))

    names = [str(v).strip().lower() for v in column(type_at).tolist()]
    unknown = sorted({name for name in names if name not in _SPLIT_BY_NAME})
    if unknown:
        raise MalformedFile(path.name, 0, f"data_type values {unknown[:10]} are not train, validation or live")
    targets = (
        column(target_at).astype(np.float32) if target_at is not None else np.full(len(names), np.nan, dtype=np.float32)
    )
    eras = column(era_at)
    return Dataset(
        ids=column(id_at).astype(str),
        eras=np.array([_parse_era(str(e)) for e in eras.tolist()], dtype=np.int32),
        split=np.array([_SPLIT_BY_NAME[name] for name in names], dtype=np.int8),
        features=np.column_stack([column(i) for i in feature_at]).astype(np.float32),
        targets=targets,
        target_kind=target_kind or _infer_kind(targets),
    )


def write_round(path: str | Path, dataset: Dataset, *, include_targets: bool = True) -> None:
    """CSV or Parquet by the file's suffix (``.parquet``/``.pq`` -> Parquet)."""
    if Path(path).suffix.lower() in (".parquet", ".pq"):
        write_round_parquet(path, dataset, include_targets=include_targets)
    else:
        write_round_csv(path, dataset, include_targets=include_targets)


def read_round(path: str | Path, *, target_kind: TargetKind | None = None) -> Dataset:
    if Path(path).suffix.lower() in (".parquet", ".pq"):
        return read_round_parquet(path, target_kind=target_kind)
    return read_round_csv(path, target_kind=target_kind)
