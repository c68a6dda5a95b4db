"""Prediction CSV parsing: every accepted header and line ending; malformed files name the line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdquant.formats import predictions as files
from crowdquant.formats.errors import MalformedFile
from shared.errors import FailedPrecondition, InvalidArgument


@pytest.mark.parametrize(
    "header", ["t_id,probability", "id,prediction", "id,probability", " ID , Prediction ", "prediction,id"]
)
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_accepted_headers_line_ends_and_bom(header: str, newline: str, bom: str) -> None:
    swap = header.strip().startswith("prediction")
    rows = ["0.25,t2", "0.75,t1"] if swap else ["t2,0.25", "t1 , 0.75"]
    text = bom + newline.join([header, *rows]) + newline + newline
    ids, values = files.parse_predictions_csv(text.encode("utf-8"))
    assert ids.tolist() == ["t2", "t1"] and values.tolist() == [0.25, 0.75]
    assert values.dtype == np.float64


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 0, "file is empty"),
        ("\n\n", 0, "file is empty"),
        ("t1,0.5\nt2,0.6\n", 1, "missing header: line 1 looks like data"),
        ("name,score\nt1,0.5\n", 1, "unrecognised header"),
        ("id,prediction,extra\nt1,0.5,1\n", 1, "header has 3 columns"),
        ("id,prediction\n", 0, "no prediction rows"),
        ("id,prediction\nt1,0.5\nt2,0.5,0.1\n", 3, "expected 2 columns"),
        ("id,prediction\nt1,0.5\nt2\n", 3, "expected 2 columns"),
        ("id,prediction\nt1,0.5\n\nt3,0.1\n", 3, "empty line between rows"),
        ("id,prediction\nt1,0.5\nt2,abc\n", 3, "'abc' is not a number"),
        ("id,prediction\r\nt1,0.5\r\nt2,\r\n", 3, "'' is not a number"),
        ("id,prediction\nt1,0.5\n ,0.2\n", 3, "empty id"),
    ],
)
def test_malformed_files_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(MalformedFile, match=message) as info:
        files.parse_predictions_csv(text.encode(), source="preds.csv")
    assert info.value.line == line and isinstance(info.value, InvalidArgument)
    assert info.value.message.startswith(f"preds.csv, line {line}: " if line else "preds.csv: ")


def test_bad_utf8_is_named_with_its_line() -> None:
    with pytest.raises(MalformedFile, match=r"line 3: not UTF-8 text \(byte 0xff\)"):
        files.parse_predictions_csv(b"id,prediction\nt1,0.5\nt\xff,0.5\n", source="p")


def test_non_finite_values_pass_the_parser_for_the_checks_to_name() -> None:
    _, values = files.parse_predictions_csv("id,prediction\nt1,nan\nt2,inf\nt3,1e-3\n")
    assert np.isnan(values[0]) and np.isinf(values[1]) and values[2] == 0.001


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(0, 1), min_size=1, max_size=50),
    header=st.sampled_from(["t_id,probability", "id,prediction", "id,probability"]),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_round_trip_of_written_files(values: list[float], header: str, newline: str) -> None:
    ids = [f"t{i:06d}" for i in range(len(values))]
    text = newline.join([header, *(f"{i},{v!r}" for i, v in zip(ids, values, strict=True))]) + newline
    parsed_ids, parsed = files.parse_predictions_csv(text)
    assert parsed_ids.tolist() == ids and parsed.tolist() == values


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(st.tuples(st.text("t0123456789", min_size=1, max_size=7), st.floats(0, 1)), min_size=1, max_size=20),
    broken_at=st.data(),
    breakage=st.sampled_from(["extra", "missing", "word", "blank"]),
)
def test_any_single_breakage_is_refused_with_its_line(
    rows: list[tuple[str, float]], broken_at: st.DataObject, breakage: str
) -> None:
    lines = ["id,prediction", *(f"{i},{v!r}" for i, v in rows)]
    index = broken_at.draw(st.integers(1, len(lines) - 1))
    lines[index] = {
        "extra": lines[index] + ",1",
        "missing": rows[index - 1][0],
        "word": f"{rows[index - 1][0]},x1",
        "blank": "",
    }[breakage]
    if breakage == "blank" and index == len(lines) - 1:
        lines.append("t9,0.5")  # a blank line only counts as an error between rows
    with pytest.raises(MalformedFile) as info:
        files.parse_predictions_csv("\n".join(lines) + "\n")
    assert info.value.line == index + 1


def test_reading_paths_and_parquet_without_pyarrow(tmp_path: Path) -> None:
    path = tmp_path / "preds.csv"
    path.write_bytes(b"\xef\xbb\xbfid,prediction\r\nt1,0.5\r\n")
    ids, values = files.read_predictions(path)
    assert ids.tolist() == ["t1"] and values.tolist() == [0.5]
    assert files.parquet_available() is False  # not installed in this environment
    with pytest.raises(FailedPrecondition, match="pip install 'pyarrow"):
        files.read_predictions(tmp_path / "preds.parquet")


def test_full_size_file_parses(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ids = [f"t{i:06d}" for i in rng.permutation(36_072)]
    values = rng.uniform(0, 1, len(ids))
    path = tmp_path / "big.csv"
    path.write_text("t_id,probability\n" + "".join(f"{i},{v:.6f}\n" for i, v in zip(ids, values, strict=True)))
    parsed_ids, parsed = files.read_predictions_csv(path)
    assert parsed_ids.tolist() == ids and np.allclose(parsed, values, atol=1e-6)
