"""The batch driver: expand the inputs, skip what is done, run the rest on an engine, keep the manifest.

Per input, in this order:

1. a bad INPUT (missing, a folder with no media, ...) is recorded as failed at once;
2. an input whose timeline exists with a matching fingerprint (file size, mtime and a hash of its first
   and last MiB, model sha256, result-shaping options) is *done* and skipped;
3. an input that failed before with the same fingerprint is skipped too, unless ``retry_failed``;
4. everything else runs on the engine; its result updates the manifest as it arrives.

One batch at a time writes a local ``out``: a second is refused while the first holds its lock.
Stopped (Ctrl+C, an error), the engine stops its workers and the manifest is brought up to date
with every timeline on disk before the exception goes on.

Example::

    summary = run_batch(["archive/"], "out/", BatchSettings(AnalyzerOptions()), engine="ray")
    print(summary.format())
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tqdm import tqdm

from emolens.batch import engines
from emolens.batch.dataset import DatasetStore
from emolens.batch.inputs import BatchInput, expand_inputs
from emolens.batch.manifest import failed_before, now_utc, options_json, read_manifest, write_manifest
from emolens.batch.tasks import BatchSettings, Task, TaskResult, fingerprint
from emolens.card import ModelCard
from emolens.errors import EmolensError, SettingError
from emolens.sources import check_every

ENGINES = ("local", "ray")
_MANIFEST_EVERY_S = 2.0


@dataclass
class BatchSummary:
    """What a batch run did; ``failed`` lists (input, error) of every input now failed."""

    out: str
    inputs: int = 0
    ran: int = 0
    already_done: int = 0
    skipped_failed: int = 0
    frames: int = 0
    video_s: float = 0.0
    seconds: float = 0.0
    removed_temporary: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    failed_now: list[str] = field(default_factory=list)

    def format(self) -> str:
        if not self.ran and not self.failed:
            return (f"nothing to do: all {self.inputs} input(s) already done in {self.out} "
                    f"(inputs, model and options unchanged)")
        fps = self.frames / self.seconds if self.seconds else 0.0
        speed = self.video_s / self.seconds if self.seconds else 0.0
        lines = [f"batch: {self.inputs} input(s): {self.ran - len(self.failed_now)} analysed now, "
                 f"{self.already_done} already done, {len(self.failed)} failed",
                 f"frames {self.frames}, wall time {self.seconds:.1f} s, {fps:.1f} frames/s, "
                 f"{self.video_s / 3600:.3f} h of video ({speed:.1f}x real time)"]
        if self.removed_temporary:
            lines.append(f"removed {self.removed_temporary} unfinished temporary file(s) of an earlier run")
        if self.skipped_failed:
            lines.append(f"{self.skipped_failed} input(s) failed before and were not retried (--retry-failed)")
        lines += [f"failed: {path}: {error}" for path, error in self.failed]
        lines.append(f"dataset: {self.out}/timelines (manifest: {self.out}/manifest.parquet)")
        return "\n".join(lines)


def run_batch(specs: list[str], out: str, settings: BatchSettings, engine: str = "local", workers: int = 0,
              address: str | None = None, worker_gpus: float = 0.0, retry_failed: bool = False,
              log: Callable[[str], None] = print, progress: bool | None = None) -> BatchSummary:
    """Analyse every input the specs name into ``out``; see the module docstring for what is skipped.

    Args:
        progress: show a progress bar on stderr (None: only when stderr is a terminal).

    Raises:
        EmolensError: a bad engine, address, model, or an ``out`` that cannot be written. A bad
            *input* is not raised: it is recorded as failed.
    """
    if engine not in ENGINES:
        raise SettingError(f"{{engine}} must be one of {', '.join(ENGINES)}, got {engine}")
    check_every(settings.every)
    if workers < 0:
        raise SettingError(f"{{workers}} must be 0 (all cores) or more, got {workers}")
    started = time.perf_counter()
    card = ModelCard.load(settings.options.model)
    card.open_session()  # a card that does not fit its model stops the batch here, not in every worker
    store = DatasetStore(out)
    with store.locked():  # held to the end: one batch at a time writes this out
        summary = BatchSummary(out=store.url.rstrip("/"))
        summary.removed_temporary = store.prepare(settings.schema(card.labels), settings.write_csv)
        items = expand_inputs(specs)
        summary.inputs = len(items)
        manifest = read_manifest(store)
        _refuse_foreign_outputs(items, store, manifest, settings.write_csv)
        tasks: list[Task] = []
        for item in items:
            stamp = fingerprint(item, card.sha256, settings)
            row = _row(item, stamp)
            if item.error is not None:
                manifest[item.input_id] = {**row, "status": "failed", "error": item.error, "finished_at": now_utc()}
            elif store.is_done(item.input_id, stamp, settings.write_csv):
                summary.already_done += 1
                if manifest.get(item.input_id, {}).get("status") != "done":  # the manifest lagged behind a kill
                    manifest[item.input_id] = {**row, "status": "done", "output": _output(item)}
            elif failed_before(manifest.get(item.input_id), stamp) and not retry_failed:
                summary.skipped_failed += 1
            else:
                manifest[item.input_id] = {**row, "status": "pending"}
                # Workers get an absolute location: a Ray worker's working directory is not the driver's.
                tasks.append(Task(item, store.root if store.local else store.url, stamp, settings))
        write_manifest(store, manifest)
        if tasks:
            log(f"batch: {len(tasks)} of {len(items)} input(s) to analyse on the {engine} engine"
                + (f" ({summary.already_done} already done)" if summary.already_done else ""))
            _run(tasks, engine, workers, address, worker_gpus, store, manifest, summary, progress)
        summary.failed = [(row["input"], row["error"]) for row in (manifest[item.input_id] for item in items)
                          if row.get("status") == "failed"]
        summary.seconds = time.perf_counter() - started
        return summary


def _run(tasks: list[Task], engine: str, workers: int, address: str | None, worker_gpus: float,
         store: DatasetStore, manifest: dict, summary: BatchSummary, progress: bool | None) -> None:
    bar = tqdm(total=len(tasks), unit="input", file=sys.stderr, disable=None if progress is None else not progress,
               dynamic_ncols=True)
    last_write = time.monotonic()
    analysing_since = time.perf_counter()

    def on_result(task: Task, result: TaskResult) -> None:
        nonlocal last_write
        row = manifest[task.item.input_id]
        row.update(status=result.status, error=result.error or None, duration_s=result.duration_s,
                   frames=result.frames, faces=result.faces, rows=result.rows, wall_s=result.wall_s,
                   worker=result.worker, worker_rss_mb=result.worker_rss_mb, finished_at=now_utc(),
                   output=_output(task.item) if result.status == "done" else None)
        summary.ran += 1
        summary.frames += result.frames
        summary.video_s += result.duration_s
        if result.status == "failed":
            summary.failed_now.append(task.item.display_path)
            bar.write(f"failed: {task.item.display_path}: {result.error}")
        elapsed = time.perf_counter() - analysing_since
        bar.set_postfix_str(f"{summary.frames / elapsed:.0f} frames/s, {len(summary.failed_now)} failed",
                            refresh=False)
        bar.update(1)
        if time.monotonic() - last_write >= _MANIFEST_EVERY_S:
            write_manifest(store, manifest)
            last_write = time.monotonic()

    try:
        if engine == "ray":
            engines.run_ray(tasks, tasks[0].settings.options, workers, on_result, address, worker_gpus)
        else:
            engines.run_local(tasks, tasks[0].settings.options, workers, on_result)
    finally:
        bar.close()
        if engine == "local":  # its workers have stopped; a Ray cluster's may still be cancelling
            store.remove_temporary()
        _catch_up(tasks, store, manifest)
        write_manifest(store, manifest)


def _refuse_foreign_outputs(items: list[BatchInput], store: DatasetStore, manifest: dict, with_csv: bool) -> None:
    """Stop before anything is written where an input's timeline or CSV path holds a file no batch wrote.

    Raises:
        EmolensError: naming the first such file.
    """
    for item in items:
        foreign = store.foreign_outputs(item.input_id, with_csv, listed=item.input_id in manifest)
        if foreign:
            raise EmolensError(f"{foreign[0]} exists and no emolens batch wrote it (the manifest does not list "
                               f"{item.display_path}); move that file away, or choose another --out")


def _catch_up(tasks: list[Task], store: DatasetStore, manifest: dict) -> None:
    """Mark done the inputs still pending whose timeline is on disk: a run stopped (Ctrl+C) after a
    worker published an input but before its result reached the driver."""
    for task in tasks:
        row = manifest[task.item.input_id]
        if row["status"] == "pending" and store.is_done(task.item.input_id, task.fingerprint,
                                                        task.settings.write_csv):
            row.update(status="done", output=_output(task.item), finished_at=now_utc())


def _row(item: BatchInput, stamp: dict) -> dict:
    """A manifest row with what is known before the input runs."""
    return {"input_id": item.input_id, "input": item.display_path, "size": item.size, "mtime_ns": item.mtime_ns,
            "content_sha256": item.content_sha256, "model_sha256": stamp["model_sha256"],
            "options": options_json(stamp["options"]),
            "output": None, "error": None, "finished_at": None}


def _output(item: BatchInput) -> str:
    return f"timelines/{item.input_id}.parquet"
