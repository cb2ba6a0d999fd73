"""``DIR/manifest.parquet``: one row per input of the batch, the batch's progress and its record of failures.

Columns::

    input_id, input         the input's id (its timeline's file name) and absolute path (bytes of a name
                            that are not UTF-8 written as ``\\xff``)
    status                  pending | done | failed
    error                   one line, for a failed input
    size, mtime_ns          the input file when it was analysed (with the model and options: its fingerprint)
    content_sha256          sha256 of the file's first and last MiB (part of the fingerprint)
    duration_s              media duration (frame count / fps; 0 for an image)
    frames, faces, rows     processed frames, face rows and rows written
    wall_s                  seconds the worker spent on it (decode, analyse, publish)
    worker, worker_rss_mb   host:pid of the worker, and that process's peak memory so far in MiB
    model_sha256, options   the model and the result-shaping options (JSON) it was analysed with
    output                  the timeline, relative to DIR
    finished_at             UTC time the input finished (empty while pending)

The driver rewrites it atomically (temporary file + rename) as inputs finish, at most every
couple of seconds, and at the end; rows of inputs from earlier runs that this run does not
name are kept. The timelines' own footers, not this file, decide what is done (see dataset.py);
the manifest is what remembers failures, so that only ``--retry-failed`` runs them again.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

from emolens.batch.dataset import DatasetStore
from emolens.errors import EmolensError

COLUMNS = {
    "input_id": pa.string(), "input": pa.string(), "status": pa.string(), "error": pa.string(),
    "size": pa.int64(), "mtime_ns": pa.int64(), "content_sha256": pa.string(), "duration_s": pa.float64(),
    "frames": pa.int64(),
    "faces": pa.int64(), "rows": pa.int64(), "wall_s": pa.float64(), "worker": pa.string(),
    "worker_rss_mb": pa.float64(), "model_sha256": pa.string(), "options": pa.string(), "output": pa.string(),
    "finished_at": pa.timestamp("ms", tz="UTC"),
}
SCHEMA = pa.schema(list(COLUMNS.items()))


def read_manifest(store: DatasetStore) -> dict[str, dict]:
    """The rows of an existing manifest by input id ({} when there is none or it is unreadable).

    Raises:
        EmolensError: the file is not a Parquet file, or a Parquet table but not a batch manifest (no
            ``input_id`` column): it is not ours to replace.
    """
    data = store.read_bytes(store.manifest)
    if data is None:
        return {}
    if not data.startswith(b"PAR1"):  # every Parquet file opens so, a damaged one of ours too
        raise EmolensError(f"{store.manifest} is not the manifest of an emolens batch (not a Parquet file); "
                           f"choose another --out, or move that file away")
    try:
        # ParquetFile, not read_table: read_table's dataset scanner may drop its last reference to the bytes on
        # one of Arrow's threads after it returns, which needs the GIL; at exit that thread aborted the process
        # ("terminate called without an active exception") after the error line of a refused manifest.
        table = pq.ParquetFile(pa.BufferReader(data)).read()
    except pa.ArrowException:
        return {}  # a damaged manifest only forgets failures; the timelines still say what is done
    if "input_id" not in table.column_names:
        raise EmolensError(f"{store.manifest} is not the manifest of an emolens batch (it has no input_id "
                           f"column); choose another --out, or move that file away")
    return {row["input_id"]: row for row in table.to_pylist() if row["input_id"] is not None}


def write_manifest(store: DatasetStore, rows: dict[str, dict]) -> None:
    """Replace the manifest with ``rows`` (atomically)."""
    records = [{column: row.get(column) for column in COLUMNS} for row in rows.values()]
    table = pa.Table.from_pylist(records, schema=SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    store.write_bytes(store.manifest, buffer.getvalue())


def options_json(options: dict) -> str:
    return json.dumps(options, sort_keys=True)


def failed_before(row: dict | None, fingerprint: dict) -> bool:
    """True when ``row`` records a failure of this same input file, model and options."""
    if not row or row.get("status") != "failed":
        return False
    return (row.get("size"), row.get("mtime_ns"), row.get("content_sha256"), row.get("model_sha256"),
            row.get("options")) == (fingerprint["size"], fingerprint["mtime_ns"], fingerprint["content_sha256"],
                                    fingerprint["model_sha256"], options_json(fingerprint["options"]))


def now_utc() -> datetime:
    return datetime.now(timezone.utc)

