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
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np

from crowdquant.formats.errors import MalformedFile
from shared.errors import FailedPrecondition

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
        raise MalformedFile(source, 1, f"header has {len(names)} columns {names}; expected exactly {_HEADERS}")
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


#: The longest row id a file may hold (every round's ids are far shorter); a longer one is refused
#: on the line where it appears, before the rest of the file is read.
MAX_ID_CHARS = 1024
#: Characters a line may have besides its id: the separator and the prediction.
_VALUE_CHARS = 128
_EOL = re.compile(rb"\r\n|\r|\n")
_BLOCK = 1 << 16


def _physical_lines(read: Callable[[int], bytes], limit: int, source: str) -> Iterator[bytes]:
    """The file's lines (LF, CRLF or CR ends), read in blocks; a line longer than ``limit`` bytes is
    refused as soon as it is, so memory never holds more than one block and one line."""
    pending = b""
    number = 0
    while block := read(_BLOCK):
        data = pending + block
        start = 0
        for match in _EOL.finditer(data):
            if match.group() == b"\r" and match.end() == len(data):
                break  # maybe the first half of a CRLF split between blocks
            number += 1
            if match.start() - start > limit:
                raise MalformedFile(
                    source,
                    number,
                    f"line is longer than {limit:,} bytes (an id may have at most {MAX_ID_CHARS:,} characters)",
                )
            yield data[start : match.start()]
            start = match.end()
        pending = data[start:]
        if len(pending) > limit + 1:
            raise MalformedFile(
                source,
                number + 1,
                f"line is longer than {limit:,} bytes (an id may have at most {MAX_ID_CHARS:,} characters)",
            )
    if pending:
        yield pending.removesuffix(b"\r")


def _fields(text: str, source: str, number: int) -> list[str]:
    if '"' not in text:
        return text.split(",")
    try:
        return next(csv.reader([text]), [])
    except csv.Error as exc:
        raise MalformedFile(source, number, f"not valid CSV ({exc})") from None


def _parse_stream(
    read: Callable[[int], bytes], source: str, max_id_chars: int, max_rows: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse line by line within bounds: ids of at most ``max_id_chars``, at most ``max_rows`` rows.

    What is held grows with the rows accepted so far (Python strings, each as long as its own id),
    never with the longest line an attacker could write.
    """
    limit = 4 * max_id_chars + _VALUE_CHARS  # UTF-8 takes at most 4 bytes a character
    ids: list[str] = []
    values: list[float] = []
    columns: tuple[int, int] | None = None
    blank_at = 0
    seen_text = False
    for number, raw in enumerate(_physical_lines(read, limit, source), start=1):
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedFile(source, number, f"not UTF-8 text (byte {raw[exc.start]:#04x})") from None
        if columns is None:
            if not text.strip():
                blank_at = blank_at or number
                continue
            if blank_at:
                raise MalformedFile(source, 1, f"missing header: line 1 is empty; expected {_HEADERS}")
            columns = _header_columns(_fields(text, source, number), source)
            seen_text = True
            continue
        if not text.strip():
            blank_at = blank_at or number
            continue
        if blank_at:
            raise MalformedFile(source, blank_at, "empty line between rows")
        row = _fields(text, source, number)
        if len(row) != 2:
            raise MalformedFile(source, number, f"expected 2 columns (id, prediction), found {len(row)}")
        id_at, value_at = columns
        row_id = row[id_at].strip()
        if not row_id:
            raise MalformedFile(source, number, "empty id")
        if len(row_id) > max_id_chars:
            raise MalformedFile(
                source, number, f"id is {len(row_id):,} characters long; ids have at most {max_id_chars:,}"
            )
        try:
            value = float(row[value_at])
        except ValueError:
            raise MalformedFile(source, number, f"prediction {row[value_at]!r} is not a number") from None
        if max_rows is not None and len(ids) >= max_rows:
            raise MalformedFile(source, number, f"more than {max_rows:,} prediction rows (the round has fewer)")
        ids.append(row_id)
        values.append(value)
    if not seen_text:
        raise MalformedFile(source, 0, f"file is empty; expected a header ({_HEADERS}) and one row per id")
    if not ids:
        raise MalformedFile(source, 0, "no prediction rows after the header")
    return np.array(ids, dtype=str), np.array(values, dtype=np.float64)


def parse_predictions_csv(
    data: bytes | str,
    *,
    source: str = "predictions.csv",
    max_id_chars: int = MAX_ID_CHARS,
    max_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """CSV bytes/text -> (ids as a numpy str array, values as float64), in file order.

    Raises ``MalformedFile`` (INVALID_ARGUMENT) with the 1-based line of the first problem.
    """
    raw = data.removeprefix("\ufeff").encode("utf-8") if isinstance(data, str) else bytes(data)
    return _parse_stream(io.BytesIO(raw).read, source, max_id_chars, max_rows)


def read_predictions_csv(
    path: str | Path, *, max_id_chars: int = MAX_ID_CHARS, max_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read and parse a predictions CSV from ``path`` as a stream (see ``parse_predictions_csv``):
    a file with an endless line or too many rows is refused having read little of it."""
    path = Path(path)
    with path.open("rb") as stream:
        return _parse_stream(stream.read, path.name, max_id_chars, max_rows)


def parquet_available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def pyarrow_modules() -> tuple[ModuleType, ModuleType]:
    """(pyarrow, pyarrow.parquet), or FAILED_PRECONDITION saying how to get them."""
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise FailedPrecondition(
            "Parquet support needs the optional package pyarrow (pip install 'pyarrow>=14'); CSV works without it",
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


def read_predictions(path: str | Path, *, max_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CSV or Parquet by the file's suffix."""
    if Path(path).suffix.lower() in (".parquet", ".pq"):
        return read_predictions_parquet(path)
    return read_predictions_csv(path, max_rows=max_rows)
