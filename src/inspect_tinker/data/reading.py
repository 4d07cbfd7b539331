"""Read a training file of any supported format into raw records, each with where it came from.

Formats:
- JSON Lines (`.jsonl`, `.ndjson`, or `.json` whose first character is not `[`): streamed
  line by line with the standard `json` module. Columnar readers (pyarrow's JSON reader, HF
  `datasets`) reject a whole block for one bad line or one field whose type differs from
  the line before; reading per line keeps every good record and names each bad one's line.
- JSON arrays (`.json` starting with `[`): read whole with `json`; the format has no record
  boundary to stream on, so use JSON Lines or Parquet for files larger than memory.
- CSV (`.csv`): streamed with the standard `csv` module, every cell a string (no type
  guessing that would turn an answer "42" into a number), with the line each row starts on.
- Parquet (`.parquet`, `.pq`): streamed in row batches with pyarrow.

Nothing here raises on a bad record: a record that cannot be read is yielded with its
`error`, so the caller decides whether to drop it or stop. A file that cannot be read at
all (missing, not Parquet, a JSON array that does not parse, a JSON array named .jsonl) raises
UsageError.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from inspect_tinker.errors import UsageError
from inspect_tinker.data.text_encoding import decode_utf8, not_utf8_error

FileFormat = Literal["jsonl", "json", "csv", "parquet"]
_SUFFIXES: dict[str, FileFormat] = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
}
_PARQUET_BATCH_ROWS = 4096


@dataclass(frozen=True)
class SourceRecord:
    """One record as read from the file.

    `where` is how a person finds it: "line 4" (JSONL, CSV), "record 4" (JSON array) or
    "row 4" (Parquet), all 1-based. `error` says why it could not be read; then `value` is None.
    """

    where: str
    value: Any = None
    error: str | None = None


def cite(path: Path | str, where: str) -> str:
    """`path:4` for a line (the form editors jump to), else `path (row 4)`."""
    unit, _, number = where.partition(" ")
    return f"{path}:{number}" if unit == "line" else f"{path} ({where})"


@dataclass
class RecordSource:
    """A training file opened for reading: its format, about how many records, and the records."""

    path: Path
    format: FileFormat
    estimated_records: int

    def __iter__(self) -> Iterator[SourceRecord]:
        readers = {"jsonl": _jsonl_records, "json": _json_array_records, "csv": _csv_records, "parquet": _parquet_records}
        return readers[self.format](self.path)


def open_records(path: Path, file_format: str = "auto") -> RecordSource:
    """Open `path` for reading; `file_format` is `auto` (from the suffix) or one of jsonl/json/csv/parquet.

    Raises UsageError when the file is missing or its format cannot be told.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"training file {path} does not exist.")
    if file_format == "auto":
        detected = _SUFFIXES.get(path.suffix.lower())
        if detected is None:
            raise UsageError(
                f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
                "name the file .jsonl, .json, .csv or .parquet, or set data.format."
            )
        file_format = detected
    if file_format != "parquet":
        with path.open("rb") as f:
            head = f.read(4096)
        # A UTF-16 file would otherwise give one "not valid UTF-8" per line, with no word of why.
        error = not_utf8_error(path, head)
        if error is not None:
            raise error
        if file_format == "json" and head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] != b"[":
            file_format = "jsonl"  # JSON Lines saved as .json, as HF datasets also accepts
        if file_format == "jsonl" and _is_json_array(path):
            # Read as lines, every line of it would be "invalid JSON", with no word of why.
            raise UsageError(f"{path}: this is a JSON array; name it .json or set data.format: json.")
    return RecordSource(path, file_format, _estimate_records(path, file_format))


def _is_json_array(path: Path) -> bool:
    """Whether a file read as JSON Lines holds one JSON array instead: it opens with `[`, and its
    first line is not a whole JSON value followed by more lines (JSON Lines whose records are
    lists, each then an invalid record)."""
    with path.open("rb") as f:
        first = f.readline().removeprefix(b"\xef\xbb\xbf")
        if first.lstrip()[:1] != b"[":
            return False
        try:
            json.loads(first)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return True  # the array goes on past its first line
        return next((line for line in f if line.strip()), None) is None


def _estimate_records(path: Path, file_format: FileFormat) -> int:
    # Only for the progress bar: counting newlines is fast and needs no parsing.
    if file_format == "parquet":
        return _parquet_file(path).metadata.num_rows
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
    return max(lines - (file_format == "csv"), 1)


def _jsonl_records(path: Path) -> Iterator[SourceRecord]:
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            where = f"line {line_no}"
            if line_no == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield SourceRecord(where, error=f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})")
                continue
            if not line.strip():
                continue
            try:
                yield SourceRecord(where, json.loads(line))
            except json.JSONDecodeError as err:
                yield SourceRecord(where, error=f"invalid JSON ({err.msg.removesuffix(' at')}, column {err.colno})")
            except RecursionError:
                yield SourceRecord(where, error="invalid JSON (nested too deeply)")


def _json_array_records(path: Path) -> Iterator[SourceRecord]:
    text = decode_utf8(path.read_bytes(), path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(
            f"{path}:{err.lineno}: invalid JSON ({err.msg.removesuffix(' at')}, column {err.colno}); "
            "a JSON array must parse as a whole (JSON Lines keeps the good records of a damaged file)."
        ) from None
    except RecursionError:
        raise UsageError(f"{path}: invalid JSON (nested too deeply).") from None
    if not isinstance(data, list):
        raise UsageError(f"{path}: expected a JSON array of records (or one JSON object per line), got a {type(data).__name__}.")
    for index, value in enumerate(data, start=1):
        yield SourceRecord(f"record {index}", value)


def _csv_records(path: Path) -> Iterator[SourceRecord]:
    # Long documents exceed the csv module's default 128 KiB cell limit.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    # surrogateescape keeps undecodable bytes as lone surrogates, which records.py rejects
    # per record, instead of a decoding error that would end the whole file.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise UsageError(f"{path}:1: the CSV header cannot be read ({err}).") from None
        if len(set(header)) != len(header) or not all(h.strip() for h in header):
            raise UsageError(f"{path}:1: the CSV header needs distinct, non-empty column names; got {header}.")
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                yield SourceRecord(f"line {start}", error=f"unreadable CSV row ({err})")
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                yield SourceRecord(f"line {start}", error=f"row has {len(row)} cells, the header has {len(header)}")
                continue
            # An empty cell is an absent field: CSV cannot tell "" from missing.
            yield SourceRecord(f"line {start}", {k: v for k, v in zip(header, row) if v != ""})


def _parquet_file(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise UsageError(f"{path}: not a readable Parquet file ({err}).") from None


def _parquet_records(path: Path) -> Iterator[SourceRecord]:
    import pyarrow as pa

    row = 0
    try:
        for batch in _parquet_file(path).iter_batches(batch_size=_PARQUET_BATCH_ROWS):
            for value in batch.to_pylist():
                row += 1
                yield SourceRecord(f"row {row}", value)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: Parquet data after row {row} cannot be read ({err}).") from None
