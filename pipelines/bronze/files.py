"""Raw files: finding them (files, folders, globs, local or object storage), hashing them, reading headers."""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import io
import os
import re
import zlib
from dataclasses import dataclass

import pyarrow.parquet as pq
from pyarrow import fs as pafs

from lake.errors import MissingInputError

TRIP_FILE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
HASH_CHUNK_BYTES = 8 * 1024 * 1024
HEADER_PEEK_BYTES = 64 * 1024
PARQUET_CHECK_ROWS = 256 * 1024
# yyyy-MM (or yyyy_MM, or yyyy-MM-dd) in a file name, not part of a longer number.
SOURCE_MONTH = re.compile(r"(?<!\d)((?:19|20)\d{2})[-_](0[1-9]|1[0-2])(?!\d)")
DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
TAXI_WORD = re.compile(r"(?<![a-z])(yellow|green|fhvhv|fhv)(?![a-z])")
ENCODINGS = (".gz", ".csv", ".parquet")  # stripped, in this order, from a name to compare files across encodings


def source_month(location: str) -> str | None:
    """yyyy-MM from the file NAME (yellow_tripdata_2019-03.csv, ..._2019-03-05.csv), never from a folder: files
    under a dated landing folder (<landing>/2019-05-01/green_tripdata.csv) carry no month of their own."""
    name = location.rstrip("/").rsplit("/", 1)[-1]
    matches = SOURCE_MONTH.findall(name)
    return f"{matches[-1][0]}-{matches[-1][1]}" if matches else None


def file_identity(location: str | None) -> str | None:
    """Which file a landed file is a version of, across republications.

    A name that says which taxi and which period (yellow_tripdata_2019-03.csv, green_tripdata_2019-01-05.parquet) is
    that file wherever it lands: TLC republishes a month under the same name, often into another dated landing
    folder, and .csv, .csv.gz and .parquet of it are one file in other encodings. Any other name
    (green_tripdata.csv under 2018/10/ and 2018/11/, or 2019-01.csv under yellow/ and green/) is a version of the
    file at the same place only: its folder is part of what it is.
    """
    if location is None:
        return None
    folder, _, name = location.rstrip("/").rpartition("/")
    stem = name.lower()
    for suffix in ENCODINGS:
        stem = stem.removesuffix(suffix)
    if SOURCE_MONTH.search(stem) and TAXI_WORD.search(stem):
        return stem
    return f"{folder}/{stem}"


@dataclass(frozen=True)
class SourceFile:
    """One raw file: where it is, what it holds, and its content hash."""

    location: str  # absolute local path or URI, as stored in bronze._source_file
    size_bytes: int
    content_hash: str
    file_format: str  # csv or parquet

    @property
    def source_month(self) -> str | None:
        """yyyy-MM from the file name (2019-01 in yellow_tripdata_2019-01.csv), None when the name has none."""
        return source_month(self.location)

    @property
    def gzipped(self) -> bool:
        return self.location.lower().endswith(".gz")


def _filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    if "://" in location and not location.startswith("file://"):
        return pafs.FileSystem.from_uri(location.replace("s3a://", "s3://"))
    return pafs.LocalFileSystem(), os.path.abspath(location.removeprefix("file://"))


def _is_trip_file(name: str) -> bool:
    return name.lower().endswith(TRIP_FILE_SUFFIXES)


def expand_paths(paths: list[str]) -> list[str]:
    """Files named, trip files below folders, and glob matches; sorted, unique. Missing paths raise."""
    found: list[str] = []
    for raw in paths:
        if "://" in raw and not raw.startswith("file://"):
            filesystem, root = _filesystem(raw)
            info = filesystem.get_file_info(root)
            if info.type == pafs.FileType.Directory:
                selector = pafs.FileSelector(root, recursive=True)
                scheme = raw.split("://", 1)[0]
                found += [
                    f"{scheme}://{i.path}"
                    for i in filesystem.get_file_info(selector)
                    if i.type == pafs.FileType.File and _is_trip_file(i.path)
                ]
            elif info.type == pafs.FileType.File:
                found.append(raw)
            else:
                raise MissingInputError(f"{raw}: no such file or folder")
            continue
        local = raw.removeprefix("file://")
        matches = sorted(glob.glob(local, recursive=True)) if glob.has_magic(local) else [local]
        if not matches or not all(os.path.exists(m) for m in matches):
            raise MissingInputError(f"{raw}: no such file or folder")
        for match in matches:
            if os.path.isdir(match):
                for folder, _, names in os.walk(match):
                    found += [os.path.join(folder, n) for n in names if _is_trip_file(n)]
            else:
                found.append(match)
    return sorted({os.path.abspath(p) if "://" not in p else p for p in found})


class TruncatedGzip(ValueError):
    """A .gz file whose compressed stream ends early or is corrupt (Spark would fail the whole batch on it)."""


def describe(location: str) -> SourceFile:
    """Size, SHA-256 of the content, and format of one file, in one pass; a .gz stream is also checked whole."""
    filesystem, path = _filesystem(location)
    digest = hashlib.sha256()
    size = 0
    check = GzipCheck() if location.lower().endswith(".gz") else None
    with filesystem.open_input_stream(path, compression=None) as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
            if check is not None:
                check.feed(chunk)
    if check is not None and size and not check.complete:
        raise TruncatedGzip(f"truncated gzip stream ({size:,} bytes; the compressed data ends early)")
    file_format = "parquet" if location.lower().endswith(".parquet") else "csv"
    return SourceFile(location, size, digest.hexdigest(), file_format)


class GzipCheck:
    """Decompresses a .gz stream chunk by chunk only to check it is whole (output discarded, memory bounded)."""

    def __init__(self) -> None:
        self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, chunk: bytes) -> None:
        try:
            while chunk:
                self.inflater.decompress(chunk, HASH_CHUNK_BYTES)
                chunk = self.inflater.unconsumed_tail
                if self.inflater.eof and self.inflater.unused_data:  # a file of several gzip members
                    chunk = self.inflater.unused_data
                    self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        except zlib.error as exc:
            raise TruncatedGzip(f"corrupt gzip stream: {exc}") from exc

    @property
    def complete(self) -> bool:
        return self.inflater.eof


def parquet_rows(source: SourceFile) -> int:
    """The rows of a Parquet file, decoded once in batches (a corrupt page fails here, naming this file, rather
    than failing the whole batch's Spark job); the count must equal the footer's."""
    filesystem, path = _filesystem(source.location)
    with filesystem.open_input_file(path) as handle:
        parquet = pq.ParquetFile(handle)
        rows = sum(batch.num_rows for batch in parquet.iter_batches(batch_size=PARQUET_CHECK_ROWS))
        if rows != parquet.metadata.num_rows:
            raise ValueError(f"footer declares {parquet.metadata.num_rows:,} rows, pages hold {rows:,}")
        return rows


def delimiter_hint(header: list[str]) -> str | None:
    """'semicolon'/'tab'/'pipe' when a one-field header is really split by another delimiter."""
    if len(header) != 1:
        return None
    found = [name for mark, name in DELIMITERS.items() if header[0].count(mark) >= 2]
    return found[0] if found else None


def read_header(source: SourceFile) -> list[str]:
    """The column names of a CSV (its first line) or a Parquet file (its schema)."""
    filesystem, path = _filesystem(source.location)
    if source.file_format == "parquet":
        with filesystem.open_input_file(path) as handle:
            return list(pq.read_schema(handle).names)
    with filesystem.open_input_stream(path, compression=None) as stream:
        head = stream.read(HEADER_PEEK_BYTES)
    if source.location.lower().endswith(".gz"):
        head = gzip.GzipFile(fileobj=io.BytesIO(head)).read1(HEADER_PEEK_BYTES)
    first_line = head.decode("utf-8", errors="replace").splitlines()[0] if head else ""
    return next(csv.reader([first_line]), [])
