"""The batch's output folder: one Parquet timeline per input, written atomically, read as one dataset.

Layout of ``--out DIR`` (a local path or an fsspec URL such as ``s3://bucket/run``)::

    DIR/timelines/<input id>.parquet    one file per input: `emolens analyze`'s columns + input_id, input
    DIR/timelines/_common_metadata      the dataset's schema (Parquet summary file, no rows)
    DIR/csv/<input id>.csv              with --csv: the same rows as `emolens analyze` writes them
    DIR/manifest.parquet                one row per input: status, error, counts, timings (see manifest.py)
    DIR/.emolens-batch.lock             held (flock) by the batch writing DIR, on a local DIR

``timelines/`` is a flat directory of Parquet files with one schema, plus a ``_common_metadata``
summary file: pandas ``pd.read_parquet("DIR/timelines")``, pyarrow ``pq.read_table("DIR/timelines")``,
DuckDB ``read_parquet('DIR/timelines/*.parquet')`` and Spark ``spark.read.parquet("DIR/timelines")``
read it as it is (all of them skip names starting with ``_`` or ``.``, which is where temporary files go).

A timeline is first written to ``timelines/.<id>.parquet.tmp-<random>`` and renamed over the final
name only once complete (an atomic rename on a local or shared POSIX filesystem), so a crash or a
killed worker never leaves a partial file under a final name. Each file's Parquet footer holds the
*fingerprint* it was made from (input size and mtime, model sha256, options): a later run skips an
input whose file exists and whose footer fingerprint matches, so the files themselves are the
record of what is done, even if the manifest was lost.

Example::

    store = DatasetStore("out/")
    store.prepare(timeline_schema(card.labels))
    store.is_done(item.input_id, fingerprint)
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from emolens.errors import EmolensError, SettingError
from emolens.record import lock_holder, timeline_columns

try:
    import fcntl
except ImportError:  # Windows: no flock; one batch per --out is then the user's to keep
    fcntl = None

FINGERPRINT_KEY = b"emolens.batch.fingerprint"
_TEMP_MARK = ".tmp-"
_INTEGER_COLUMNS = frozenset({"frame", "face_id", "full_search"})
_TEXT_COLUMNS = frozenset({"source", "dominant", "marker", "stimulus"})


def timeline_schema(labels: tuple[str, ...], keypoints: bool = False, behaviour: bool = False) -> pa.Schema:
    """``input_id``, ``input``, then `emolens analyze`'s CSV columns with their natural types."""
    fields = [pa.field("input_id", pa.string()), pa.field("input", pa.string())]
    for column in timeline_columns(labels, keypoints, behaviour):
        if column == "timestamp":
            kind = pa.timestamp("ms", tz="UTC")
        elif column in _INTEGER_COLUMNS:
            kind = pa.int64()
        elif column in _TEXT_COLUMNS:
            kind = pa.string()
        else:  # time_s, the box, det_score, the probabilities, keypoints, behaviour
            kind = pa.float64()
        fields.append(pa.field(column, kind))
    return _with_pandas_integers(pa.schema(fields))


def _with_pandas_integers(schema: pa.Schema) -> pa.Schema:
    """``schema`` with pandas metadata that reads the integer columns as pandas' nullable ``Int64``:
    ``face_id`` is empty on a frame with no face, and pandas turns an int64 column with gaps into floats."""
    frame = schema.empty_table().to_pandas().astype({name: "Int64" for name in _INTEGER_COLUMNS})
    return schema.with_metadata(pa.Schema.from_pandas(frame, preserve_index=False).metadata)


class DatasetStore:
    """Paths and atomic writes under ``--out`` on any fsspec filesystem (local paths included)."""

    def __init__(self, out: str):
        self.url = str(out)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as error:
            raise SettingError(f"cannot use {{out}} {self.url}: {error}") from None
        self.local = isinstance(self.fs, LocalFileSystem)
        self.timelines = posixpath.join(self.root, "timelines")
        self.csvs = posixpath.join(self.root, "csv")
        self.manifest = posixpath.join(self.root, "manifest.parquet")
        self.lock = posixpath.join(self.root, ".emolens-batch.lock")

    def timeline(self, input_id: str) -> str:
        return posixpath.join(self.timelines, f"{input_id}.parquet")

    def csv(self, input_id: str) -> str:
        return posixpath.join(self.csvs, f"{input_id}.csv")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold ``DIR/.emolens-batch.lock`` while the batch runs (a local DIR; the kernel drops it if the
        process dies), so that a second batch on DIR cannot remove the first's temporary files or
        overwrite its manifest.

        Raises:
            EmolensError: another batch holds it (naming its pid), or DIR cannot be written.
        """
        if not self.local or fcntl is None:
            yield
            return
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise SettingError(f"cannot write to {{out}} {self.url}: {error.strerror or error}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = lock_holder(fd)
                raise EmolensError(f"another emolens batch{f' (pid {holder})' if holder else ''} is writing to "
                                   f"--out {self.url}; wait for it to end, or choose another --out") from None
            yield
        finally:
            os.close(fd)

    def prepare(self, schema: pa.Schema, with_csv: bool = False) -> int:
        """Create the folders, check they can be written, write ``_common_metadata`` and remove the
        temporary files of an earlier run that was killed; returns how many were removed.

        Raises:
            EmolensError: the folder cannot be created or written.
        """
        try:
            for folder in (self.timelines, *([self.csvs] if with_csv else [])):
                self.fs.makedirs(folder, exist_ok=True)
            with self._atomic(posixpath.join(self.timelines, "_common_metadata")) as file:
                pq.write_metadata(schema, file)
        except OSError as error:
            raise SettingError(f"cannot write to {{out}} {self.url}: {error.strerror or error}") from None
        return self.remove_temporary()

    def remove_temporary(self) -> int:
        """Remove the temporary files that a stopped run's workers left behind; returns how many."""
        stale = [path for folder in (self.timelines, self.csvs) if self.fs.isdir(folder)
                 for path in self.fs.ls(folder, detail=False) if _TEMP_MARK in posixpath.basename(path)]
        for path in stale:
            self.fs.rm(path)
        return len(stale)

    def is_done(self, input_id: str, fingerprint: dict, with_csv: bool = False) -> bool:
        """True when the input's timeline exists, is a complete Parquet file and was made from
        ``fingerprint`` (same input size and mtime, model and options), and, ``with_csv``, its CSV exists."""
        if with_csv and not self.fs.exists(self.csv(input_id)):
            return False
        return self._fingerprint(input_id) == fingerprint

    def foreign_outputs(self, input_id: str, with_csv: bool, listed: bool) -> list[str]:
        """The input's timeline and CSV where they exist but no emolens batch wrote them: neither the manifest
        lists the input (``listed``) nor does a timeline of ours (its footer holds a fingerprint) stand for it."""
        if listed or self._fingerprint(input_id) is not None:
            return []
        paths = (self.timeline(input_id), *([self.csv(input_id)] if with_csv else []))
        return [path for path in paths if self.fs.exists(path)]

    def _fingerprint(self, input_id: str) -> dict | None:
        """The fingerprint in the footer of the input's timeline (None: absent, not a complete Parquet file,
        or not written by a batch)."""
        try:
            with self.fs.open(self.timeline(input_id), "rb") as file:
                metadata = pq.ParquetFile(file).schema_arrow.metadata or {}
        except (OSError, pa.ArrowException):
            return None
        return json.loads(metadata.get(FINGERPRINT_KEY, b"null"))

    @contextmanager
    def timeline_writer(self, input_id: str, schema: pa.Schema, fingerprint: dict) -> Iterator[pq.ParquetWriter]:
        """A Parquet writer of ``timelines/<id>.parquet`` with ``fingerprint`` in its footer, writing under a
        temporary name that is renamed to the final one only when the block ends without an error."""
        schema = schema.with_metadata({**schema.metadata, FINGERPRINT_KEY: json.dumps(fingerprint).encode()})
        with self._atomic(self.timeline(input_id)) as file, pq.ParquetWriter(file, schema) as writer:
            yield writer

    def copy_csv(self, csv_path: Path, input_id: str) -> None:
        """Copy a finished timeline CSV to ``csv/<id>.csv`` (atomically, as every file here)."""
        with self._atomic(self.csv(input_id)) as file, open(csv_path, "rb") as source:
            while chunk := source.read(1 << 20):
                file.write(chunk)

    def read_bytes(self, path: str) -> bytes | None:
        try:
            with self.fs.open(path, "rb") as file:
                return file.read()
        except (FileNotFoundError, OSError):
            return None

    def write_bytes(self, path: str, data: bytes) -> None:
        with self._atomic(path) as file:
            file.write(data)

    def _atomic(self, path: str) -> _AtomicFile:
        return _AtomicFile(self, path)


class _AtomicFile:
    """A file written under a hidden temporary name and renamed to ``path`` on success (removed on error)."""

    def __init__(self, store: DatasetStore, path: str):
        self.store, self.path = store, path
        folder, name = posixpath.split(path)
        self.temporary = posixpath.join(folder, f".{name}{_TEMP_MARK}{uuid.uuid4().hex[:12]}")

    def __enter__(self):
        self.file = self.store.fs.open(self.temporary, "wb")
        return self.file

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if kind is None and self.store.local:  # durable before it is visible
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if kind is None:
                if self.store.local:
                    os.replace(self.temporary, self.path)  # atomic, replaces an older file
                else:
                    self.store.fs.mv(self.temporary, self.path)
        finally:
            if self.store.fs.exists(self.temporary):
                self.store.fs.rm(self.temporary)
