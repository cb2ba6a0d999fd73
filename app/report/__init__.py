"""Session reports: timeline CSVs -> charts, per-segment tables, strongest moments, one HTML page.

``build_report`` is the whole feature; the CLI (``emolens report``) and the GUI ("Open
report") call it and show ``ReportResult.warnings``. It writes into ``out_dir``:

    report.html         one self-contained page (charts inlined), opens offline
    segments.csv        per session, segment and face (see ``emolens.report.segments``)
    moments.csv         per session and emotion, the strongest peaks (``emolens.report.moments``)
    comparison.csv      with several sessions: each segment's group numbers, sessions across
    <session>_group.png, <session>_face<N>.png, comparison.png     the charts

Before anything is written, every one of these files is checked: none may be an input
timeline, and none may exist unless ``overwrite``.

Example::

    result = build_report([Path("session.csv")], Path("report"), align_marker="ad starts")
    result.html, result.segments_csv, result.warnings
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from emolens.errors import EmolensError, SettingError, error_line
from emolens.record import safe_text
from emolens.report.charts import comparison_chart, emotion_chart
from emolens.report.compare import alignment, comparison_table
from emolens.report.html import ComparisonView, SessionView, write_page
from emolens.report.moments import strongest_moments
from emolens.report.segments import group_curve, segment_table
from emolens.report.timeline import Timeline, load_timelines, numbered, shifted

__all__ = ["ReportResult", "build_report"]


@dataclass(frozen=True)
class ReportResult:
    """The files a report wrote, and what was left out of its input.

    Attributes:
        html: the page.
        segments_csv: the per-segment table of every session.
        moments_csv: the strongest moments of every session.
        comparison_csv: sessions side by side, or None for a single session.
        charts: every PNG written.
        warnings: one line each, e.g. a last line cut off by a crash and left out.
    """

    html: Path
    segments_csv: Path
    moments_csv: Path
    comparison_csv: Path | None
    charts: list[Path]
    warnings: list[str]


def build_report(csv_paths: list[Path], out_dir: Path, align_marker: str | None = None,
                 overwrite: bool = False) -> ReportResult:
    """Read the timelines, write the tables, charts and page into ``out_dir`` (created).

    Each source of each file is a session. With several sessions they are also compared,
    aligned on the first occurrence of ``align_marker`` (default: their first frames).
    Files of an earlier report in ``out_dir`` are replaced only with ``overwrite``; an input
    timeline never is.

    Raises:
        EmolensError: an input is not a usable timeline, ``align_marker`` is missing from a
            session, a file to write is an input or exists (without ``overwrite``), or
            ``out_dir`` cannot be written; the message is one line.
    """
    if not csv_paths:
        raise EmolensError("no timeline given: name at least one CSV written by emolens analyze or the GUI")
    try:
        return _build(csv_paths, Path(out_dir), align_marker, overwrite)
    except EmolensError:
        raise
    except Exception as error:  # noqa: BLE001 -- a library's error (pandas, matplotlib) is still one line
        raise EmolensError(f"cannot build the report: {error_line(error)}") from error


def _build(csv_paths: list[Path], out_dir: Path, align_marker: str | None, overwrite: bool) -> ReportResult:
    timelines, warnings = [], []
    for path in csv_paths:
        loaded, notes = load_timelines(Path(path))
        timelines += loaded
        warnings += notes
    names = numbered(pd.Series([timeline.name for timeline in timelines]))
    timelines = [replace(timeline, name=name) for timeline, name in zip(timelines, names)]
    if len({timeline.labels for timeline in timelines}) > 1:
        raise EmolensError("the sessions were recorded with different emotion labels; report them one at a time")
    offsets = alignment(timelines, align_marker)
    if align_marker is not None:  # every table and chart of the page counts from the marker, not just the comparison
        timelines = [shifted(timeline, offset) for timeline, offset in zip(timelines, offsets)]
        offsets = [0.0] * len(timelines)
    check_outputs(_files_to_write(timelines, out_dir), csv_paths, overwrite)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return _write(timelines, offsets, align_marker, out_dir, warnings)
    except OSError as error:
        raise EmolensError(f"cannot write the report into {out_dir}: {error.strerror or error}") from None


def _write(timelines: list[Timeline], offsets: list[float], align_marker: str | None, out_dir: Path,
           warnings: list[str]) -> ReportResult:
    curves = [group_curve(timeline) for timeline in timelines]
    views = [_session_view(timeline, curve, out_dir, stem)
             for timeline, curve, stem in zip(timelines, curves, _file_stems(timelines))]
    segments = pd.concat([view.segments for view in views], ignore_index=True)
    segments_csv = write_csv(segments, out_dir / "segments.csv")
    moments_csv = write_csv(pd.concat([view.moments for view in views], ignore_index=True), out_dir / "moments.csv")
    charts = [chart for view in views for chart in (view.group_chart, *view.face_charts.values())]
    comparison, comparison_csv = None, None
    if len(timelines) > 1:
        comparison = _comparison_view(timelines, curves, offsets, segments, align_marker or "first frame",
                                      out_dir)
        table = comparison.table
        flat = table.set_axis([f"{metric} [{session}]" for metric, session in table.columns], axis=1)
        comparison_csv = write_csv(flat, out_dir / "comparison.csv", index=True)
        charts.append(comparison.chart)
    files = [segments_csv, moments_csv, *([comparison_csv] if comparison_csv else []), *charts]
    html = write_page(out_dir / "report.html", views, comparison, warnings, files, aligned=align_marker)
    return ReportResult(html, segments_csv, moments_csv, comparison_csv, charts, warnings)


def _session_view(timeline: Timeline, curve: pd.DataFrame, out_dir: Path, stem: str) -> SessionView:
    """Tables and charts of one session (``curve``: its group mean); the charts are written as PNG files."""
    start_s, end_s, labels = timeline.start_s, timeline.end_s, timeline.labels
    faces = timeline.faces["face_id"].nunique()
    group_path, face_paths = _chart_paths(timeline, out_dir, stem)
    group_chart = emotion_chart(curve, labels, timeline.markers,
                                f"{timeline.name}: group mean of {faces} face{'s' if faces != 1 else ''}",
                                group_path, start_s, end_s)
    face_charts = {int(face): emotion_chart(rows, labels, timeline.markers, f"face {face}", face_paths[int(face)],
                                            start_s, end_s, size_in=(6, 2.4), legend=False)
                   for face, rows in timeline.faces.groupby("face_id")}
    return SessionView(timeline, segment_table(timeline), strongest_moments(timeline), group_chart, face_charts)


def _comparison_view(timelines: list[Timeline], curves: list[pd.DataFrame], offsets: list[float],
                     segments: pd.DataFrame, align_text: str, out_dir: Path) -> ComparisonView:
    """The sessions' segments side by side, and their group means over aligned time (written as a PNG)."""
    aligned = {timeline.name: curve.assign(time_s=curve["time_s"] - offset)
               for timeline, curve, offset in zip(timelines, curves, offsets)}
    labels = timelines[0].labels
    chart = comparison_chart(aligned, [*labels, "valence"], align_text, out_dir / "comparison.png")
    return ComparisonView(comparison_table(segments, labels), chart, align_text)


def _chart_paths(timeline: Timeline, out_dir: Path, stem: str) -> tuple[Path, dict[int, Path]]:
    """Where a session's group chart and each face's chart go."""
    return out_dir / f"{stem}_group.png", {int(face): out_dir / f"{stem}_face{face}.png"
                                           for face in timeline.faces["face_id"].unique()}


def _files_to_write(timelines: list[Timeline], out_dir: Path) -> list[Path]:
    """Every file the report will write into ``out_dir``."""
    files = [out_dir / name for name in ("report.html", "segments.csv", "moments.csv")]
    if len(timelines) > 1:
        files += [out_dir / "comparison.csv", out_dir / "comparison.png"]
    for timeline, stem in zip(timelines, _file_stems(timelines)):
        group, faces = _chart_paths(timeline, out_dir, stem)
        files += [group, *faces.values()]
    return files


def check_outputs(files: list[Path], csv_paths: list[Path], overwrite: bool) -> None:
    """Refuse to write over an input timeline, or over an existing file without ``overwrite``."""
    existing = [file for file in files if file.exists()]
    for file in existing:
        for csv_path in csv_paths:
            if os.path.samefile(file, csv_path):
                raise SettingError(f"the report's {file.name} in {file.parent} would replace the input {csv_path}: "
                                   f"choose another {{output}}")
    if existing and not overwrite:
        names = ", ".join(file.name for file in existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise SettingError(f"{existing[0].parent} already holds a report ({names}); pass {{overwrite}} to "
                           f"replace it, or choose another {{output}}")


def _file_stems(timelines: list[Timeline]) -> list[str]:
    """A distinct, file-system-safe name per session for its chart files."""
    names = pd.Series([timeline.name for timeline in timelines])
    stems = names.str.replace(r"[^\w-]+", "_", regex=True).str.strip("_").replace("", "session")
    return list(numbered(stems).str.replace(r" \((\d+)\)$", r"_\1", regex=True))


def write_csv(table: pd.DataFrame, path: Path, index: bool = False) -> Path:
    """Write ``table``; texts (markers, names) escaped again so that spreadsheets do not run them."""
    # is_string_dtype: pandas 3's "str" columns and pandas 2's object columns of strings alike
    texts = [column for column in table.columns if pd.api.types.is_string_dtype(table[column])]
    table = table.assign(**{column: table[column].map(safe_text, na_action="ignore") for column in texts})
    if index and pd.api.types.is_string_dtype(table.index):
        table.index = table.index.map(safe_text)
    table.to_csv(path, index=index, float_format="%.4f")
    return path

