"""Prediction files: parse a participant's CSV into (ids, values), refusing malformed files early.

Why here and strict: a file that is cut short, has a stray column or a typo in a number should be
refused on the participant's machine (the client calls this before uploading) with the line to
fix, not turned into a confusing "missing ids" error after the upload. Accepted, for
compatibility with every Numerai era: headers ``t_id,probability`` (2016), ``id,probability``
(2017-2019) and ``id,prediction`` (today), in either column order, any case, surrounding spaces
ignored; a UTF-8 BOM; LF, CRLF or CR line ends; trailing blank lines. Values may be anything
Python's ``float`` reads; NaN/inf pass here and are refused by the upload checks with their ids.
Parquet predictions need the optional ``pyarrow`` and fail with a clear message without it.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import io
from pathlib import Path
from types import ModuleType

import numpy as np

from shared.errors import FailedPrecondition

from .errors import MalformedFile

ID_COLUMNS = ("id", "t_id")
VALUE_COLUMNS = ("prediction", "probability")
_HEADERS = " or ".join(f"{i},{v}" for i in ID_COLUMNS for v in VALUE_COLUMNS)


def decode(data: bytes, source: str) -> str:
    """UTF-8 text without a BOM; a bad byte is reported with its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MalformedFile(source, line, f"not UTF-8 text (byte {data[exc.start]:#04x})") from None


def _header_columns(header: list[str], source: str) -> tuple[int, int]:
    """Positions of the id and value columns in the header row (line 1)."""
    names = [cell.strip().lower() for cell in header]
    if not any(names):
        raise MalformedFile(source, 1, f"missing header: line 1 is empty; expected {_HEADERS}")
    if len(names) != 2:
        raise MalformedFile(
            source, 1, f"header has {len(names)} columns {names}; expected exactly {_HEADERS}"
        )
    id_at = next((i for i, name in enumerate(names) if name in ID_COLUMNS), None)
    value_at = next((i for i, name in enumerate(names) if name in VALUE_COLUMNS), None)
    if id_at is None or value_at is None:
        try:
            float(names[1])
            looks_like_data = True
        except ValueError:
            looks_like_data = False
        if looks_like_data:
            raise MalformedFile(source, 1, f"missing header: line 1 looks like data {header}; add {_HEADERS}")
        raise MalformedFile(source, 1, f"unrecognised header {header}; expected {_HEADERS}")
    return id_at, value_at


def _blank(row: list[str]) -> bool:
    return not row or (len(row) == 1 and not row[0].strip())


def _first_problem(text: str, source: str, id_at: int, value_at: int) -> MalformedFile:
    """Walk the rows again, tracking physical lines, to name the first problem's line.

    Only runs when the fast path found something wrong, so the common case pays nothing for it.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    blank_at = 0
    for row in reader:
        if _blank(row):
            blank_at = blank_at or reader.line_num
            continue
        if blank_at:
            return MalformedFile(source, blank_at, "empty line between rows")
        if len(row) != 2:
            return MalformedFile(
                source, reader.line_num, f"expected 2 columns (id, prediction), found {len(row)}"
            )
        if not row[id_at].strip():
            return MalformedFile(source, reader.line_num, "empty id")
        try:
            float(row[value_at])
        except ValueError:
            return MalformedFile(source, reader.line_num, f"prediction {row[value_at]!r} is not a number")
    return MalformedFile(source, 0, "malformed rows")


def _columns(text: str, source: str) -> tuple[list[str], list[str]]:
    """(id column, value column) as strings, each row checked to have exactly two fields.

    Files without quotes (all that numpy/pandas/our client write) take a fast path of plain
    string splits that creates no per-row lists (those make the garbage collector run and cost
    more than the parsing); anything else goes through the csv module.
    """
    if '"' in text or "\x00" in text:
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise MalformedFile(source, reader.line_num, f"not valid CSV ({exc})") from None
        id_at, value_at = _header_columns(rows[0], source)
        body = rows[1:]
        while body and _blank(body[-1]):  # trailing blank lines are harmless
            body.pop()
        if not body:
            raise MalformedFile(source, 0, "no prediction rows after the header")
        if any(len(row) != 2 for row in body):
            raise _first_problem(text, source, id_at, value_at)
        columns = list(zip(*body, strict=True))
        return list(columns[id_at]), list(columns[value_at])
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    id_at, value_at = _header_columns(lines[0].split(","), source)
    body = lines[1:]
    while body and not body[-1].strip():
        body.pop()
    if not body:
        raise MalformedFile(source, 0, "no prediction rows after the header")
    if (np.char.count(np.array(body, dtype=str), ",") != 1).any():
        raise _first_problem(text, source, id_at, value_at)
    fields = ",".join(body).split(",")  # exactly one comma per line: fields alternate id, value
    return fields[id_at::2], fields[value_at::2]


def parse_predictions_csv(
    data: bytes | str, *, source: str = "predictions.csv"
) -> tuple[np.ndarray, np.ndarray]:
    """CSV bytes/text -> (ids as a numpy str array, values as float64), in file order.

    Raises ``MalformedFile`` (INVALID_ARGUMENT) with the 1-based line of the first problem.
    The rows are parsed in bulk; only a file with a problem is walked row by row to find its line.
    """
    text = decode(data, source) if isinstance(data, bytes | bytearray) else data.removeprefix("\ufeff")
    if not text.strip():
        raise MalformedFile(source, 0, f"file is empty; expected a header ({_HEADERS}) and one row per id")
    id_column, value_column = _columns(text, source)
    ids = np.char.strip(np.array(id_column, dtype=str))
    id_at, value_at = _header_columns(next(csv.reader(io.StringIO(text, newline=""))), source)
    if (ids == "").any():
        raise _first_problem(text, source, id_at, value_at)
    try:
        values = np.array(value_column, dtype=np.float64)
    except ValueError:
        raise _first_problem(text, source, id_at, value_at) from None
    return ids, values


def read_predictions_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and parse a predictions CSV from ``path`` (see ``parse_predictions_csv``)."""
    path = Path(path)
    return parse_predictions_csv(path.read_bytes(), source=path.name)


def parquet_available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def pyarrow_modules() -> tuple[ModuleType, ModuleType]:
    """(pyarrow, pyarrow.parquet), or FAILED_PRECONDITION saying how to get them."""
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise FailedPrecondition(
            "Parquet support needs the optional package pyarrow (pip install 'pyarrow>=14'); "
            "CSV works without it",
            reason="PARQUET_UNAVAILABLE",
        ) from None


def read_predictions_parquet(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Predictions from a Parquet file with the same column names as the CSV (needs pyarrow)."""
    _, parquet = pyarrow_modules()
    path = Path(path)
    table = parquet.read_table(path)
    id_at, value_at = _header_columns(list(table.column_names), path.name)
    ids = np.array([str(v) for v in table.column(id_at).to_pylist()], dtype=str)
    return ids, np.asarray(table.column(value_at).to_numpy(zero_copy_only=False), dtype=np.float64)


def read_predictions(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """CSV or Parquet by the file's suffix."""
    if Path(path).suffix.lower() in (".parquet", ".pq"):
        return read_predictions_parquet(path)
    return read_predictions_csv(path)
