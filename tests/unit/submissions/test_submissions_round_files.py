"""Round data files: exact CSV round trip, operators' variants, Parquet degrading clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crowdquant.formats import round_files
from crowdquant.formats.errors import MalformedFile
from services.submissions.domain.dataset import Dataset, Split, TargetKind
from services.submissions.domain.obfuscation import obfuscate_dataset
from shared.errors import FailedPrecondition


def _same(a: Dataset, b: Dataset) -> None:
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.eras, b.eras) and np.array_equal(a.split, b.split)
    assert np.array_equal(a.features, b.features)
    assert np.array_equal(a.targets, b.targets, equal_nan=True)


def test_csv_round_trip_is_exact(tmp_path: Path, small_round: Dataset) -> None:
    published, _ = obfuscate_dataset(small_round, b"k" * 32)
    path = tmp_path / "round.csv"
    round_files.write_round(path, published)
    back = round_files.read_round(path)
    _same(published, back)
    assert back.target_kind is TargetKind.BINARY
    header = path.read_text().splitlines()[0]
    assert header == "id,era,data_type," + ",".join(f"feature{j}" for j in range(1, 7)) + ",target"


def test_participant_copy_has_empty_hidden_targets(tmp_path: Path, small_round: Dataset) -> None:
    path = tmp_path / "round.csv"
    round_files.write_round_csv(path, small_round.with_hidden_targets())
    back = round_files.read_round_csv(path)
    assert np.isnan(back.targets[back.split != Split.TRAINING]).all()
    assert not np.isnan(back.targets[back.split == Split.TRAINING]).any()
    round_files.write_round_csv(path, small_round, include_targets=False)
    assert np.isnan(round_files.read_round_csv(path).targets).all()


def test_operator_variants_are_read() -> None:
    text = "T_ID,Era,Data_Type,feature1,feature2\r\nt1,3,Training,0.1,0.2\r\nt2,era4,LIVE,0.3,0.4\r\n"
    data = round_files.parse_round_csv(text.encode())
    assert data.ids.tolist() == ["t1", "t2"] and data.eras.tolist() == [3, 4]
    assert data.split.tolist() == [Split.TRAINING, Split.LIVE] and np.isnan(data.targets).all()
    graded = round_files.parse_round_csv("id,era,data_type,feature1,target\na,1,train,0.5,0.25\n")
    assert graded.target_kind is TargetKind.GRADED


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("id,era,feature1\n", 1, "lacks"),
        ("id,era,data_type,target\n", 1, "feature columns"),
        ("id,era,data_type,feature1\na,1,train\n", 2, "expected 4 columns"),
        ("id,era,data_type,feature1\na,x1,train,0.1\n", 2, "era 'x1'"),
        ("id,era,data_type,feature1\na,1,test,0.1\n", 2, "data_type 'test'"),
        ("id,era,data_type,feature1\na,1,train,0.1\nb,1,train,zz\n", 3, "not a number"),
        ("id,era,data_type,feature1\n", 0, "no rows"),
    ],
)
def test_malformed_round_files_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(MalformedFile, match=message) as info:
        round_files.parse_round_csv(text)
    assert info.value.line == line


def test_parquet_degrades_with_a_clear_message(tmp_path: Path, small_round: Dataset) -> None:
    for call in (
        lambda: round_files.write_round(tmp_path / "r.parquet", small_round),
        lambda: round_files.read_round(tmp_path / "r.parquet"),
    ):
        with pytest.raises(FailedPrecondition, match="needs the optional package pyarrow") as info:
            call()
        assert info.value.reason == "PARQUET_UNAVAILABLE"
