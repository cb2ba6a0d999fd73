"""The study report: one self-contained HTML page in ``DIR/report/``, a CSV of every table, Parquet of the frames.

Written into ``DIR/report/``::

    study.html          the page (charts and stimulus thumbnails inlined; opens offline)
    curves.csv          per view, stimulus, measure and second: mean, band, share expressing, viewers
    comparison.csv      per stimulus and measure: mean, peak and time above baseline with their intervals
    moments.csv         per stimulus, the second where each emotion's mean peaks, where someone expressed it
    quality.csv         per viewer and stimulus: frames expected and recorded, face found, head turn, excluded
    sessions.csv        the sessions' sidecars
    frames.parquet      every face row in stimulus time (with pyarrow installed, the "batch" extra)
    <stimulus>.png ...  the charts

Files of an earlier report are replaced only with ``overwrite``.

Example::

    result = build_study_report(Path("ad-test"))
    result.html, result.warnings
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from emolens.errors import EmolensError, SettingError, error_line
from emolens.record import writable
from emolens.report import write_csv
from emolens.report.charts import clock
from emolens.report.segments import VALENCE_DEFINITION
from emolens.report.styles import MISSING, styled
from emolens.study.aggregate import (
    BOOTSTRAP_TEXT,
    CORRECTED,
    EXPRESSING,
    RAW,
    StudyData,
    aggregate_curves,
    baseline_means,
    comparison_table,
    load_study_data,
    quality_table,
    study_frames,
    viewer_seconds,
)
from emolens.study.charts import comparison_chart, stimulus_chart, thumbnail
from emolens.study.file import REPORT_DIR

__all__ = ["StudyReportResult", "build_study_report"]
_TABLES = ("curves.csv", "comparison.csv", "moments.csv", "quality.csv", "sessions.csv")


@dataclass(frozen=True)
class StudyReportResult:
    """The page, every file written beside it, and what was left out of the input."""

    html: Path
    files: list[Path]
    warnings: list[str]


def build_study_report(folder: Path, overwrite: bool = False, per_viewer: bool = False) -> StudyReportResult:
    """Aggregate the study's sessions and write the report into ``folder/report``.

    ``per_viewer`` adds one section per viewer (their own curves in stimulus time).

    Raises:
        EmolensError: no study or no sessions, an unusable session, an earlier report (without
            ``overwrite``), an unwritable folder; one line.
    """
    data = load_study_data(Path(folder))
    out_dir = Path(folder) / REPORT_DIR
    try:
        return _build(data, out_dir, overwrite, per_viewer)
    except EmolensError:
        raise
    except OSError as error:
        raise EmolensError(f"cannot write the report into {out_dir}: {error.strerror or error}") from None
    except Exception as error:  # noqa: BLE001 -- a library's error (pandas, matplotlib) is still one line
        raise EmolensError(f"cannot build the study report: {error_line(error)}") from error


def _build(data: StudyData, out_dir: Path, overwrite: bool, per_viewer: bool) -> StudyReportResult:
    study = data.study
    frames = study_frames(data)
    seconds = viewer_seconds(data, frames)
    quality = quality_table(data)
    baselines = baseline_means(data, frames) if study.baseline_s else None
    curves = aggregate_curves(data, seconds, quality, baselines)
    comparison = comparison_table(data, seconds, quality, curves, baselines)
    moments = strongest_moments(data, curves)
    stems = {stimulus.name: f"stimulus{index}" for index, stimulus in enumerate(study.stimuli, 1)}
    charts = _chart_files(data, out_dir, stems, baselines is not None, per_viewer)
    _check_outputs(out_dir, [*_TABLES, "study.html", "frames.parquet", *(path.name for path in charts)], overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)

    sessions = pd.DataFrame([{**info.model_dump(exclude={"placements", "baseline_s"}),
                              "order": " → ".join(info.order)} for info in data.sessions])
    tables = dict(zip(_TABLES, (curves, comparison, moments, quality, sessions)))
    files = [write_csv(table, out_dir / name) for name, table in tables.items()]
    parquet = _parquet(frames, out_dir / "frames.parquet")
    files += [parquet] if parquet else []
    warnings = list(data.warnings) + ([] if parquet else ["frames.parquet not written: pip install pyarrow "
                                                          "(the 'batch' extra) to have it"])

    sections = []
    for stimulus in study.stimuli:
        mine = curves[curves["stimulus"] == stimulus.name]
        stem = stems[stimulus.name]
        chart = stimulus_chart(mine[mine["view"] == RAW], data.measures, stimulus.name, out_dir / f"{stem}.png")
        corrected = None
        if baselines is not None:
            corrected = stimulus_chart(mine[mine["view"] == CORRECTED], data.measures,
                                       f"{stimulus.name}, each viewer's baseline subtracted",
                                       out_dir / f"{stem}_baseline.png", corrected=True)
        sections.append(_stimulus_section(data, stimulus, chart, corrected, moments, quality))
    compared = None
    if len(study.stimuli) > 1:
        compared = {"chart": _data_uri(comparison_chart(curves[curves["view"] == RAW], data.measures,
                                                        out_dir / "comparison.png")),
                    "table": _comparison_html(comparison, baselines is not None)}
    viewers = _viewer_sections(data, seconds, out_dir) if per_viewer else []
    files += [path for path in charts if path.exists()]
    html = _write_page(out_dir / "study.html", data, sections, compared, quality, sessions, viewers, warnings,
                       files)
    return StudyReportResult(html, files, warnings)


def strongest_moments(data: StudyData, curves: pd.DataFrame) -> pd.DataFrame:
    """Per stimulus and emotion (and valence), the second where the mean over viewers peaks, kept only where at
    least one viewer expressed it then (smoothed score above ``EXPRESSING``): an emotion nobody showed has no
    moment. Columns: stimulus, measure, second, mean, ci_low, ci_high, share_expressing; strongest first."""
    raw = curves[(curves["view"] == RAW) & curves["measure"].isin([*data.labels, "valence"])].dropna(subset=["mean"])
    peaks = raw.loc[raw.groupby(["stimulus", "measure"], sort=False)["mean"].idxmax()]
    peaks = peaks[peaks["share_expressing"] > 0]
    columns = ["stimulus", "measure", "second", "mean", "ci_low", "ci_high", "share_expressing"]
    return peaks.sort_values(["stimulus", "mean"], ascending=[True, False], kind="stable")[columns].reset_index(drop=True)


def _stimulus_section(data: StudyData, stimulus, chart: Path, corrected: Path | None, moments: pd.DataFrame,
                      quality: pd.DataFrame) -> dict:
    mine = moments[moments["stimulus"] == stimulus.name]
    source = data.folder / stimulus.file
    cards = [{"measure": row.measure, "time": clock(row.second), "mean": f"{row.mean:.2f}",
              "band": f"{row.ci_low:.2f}–{row.ci_high:.2f}", "share": f"{row.share_expressing:.0%}",
              "image": thumbnail(source, stimulus.kind, row.second + 0.5)} for row in mine.itertuples()]
    shown = quality[quality["stimulus"] == stimulus.name]
    return {"name": stimulus.name, "anchor": f"stimulus-{data.study.names.index(stimulus.name) + 1}",
            "facts": {"kind": stimulus.kind, "duration": clock(stimulus.duration_s), "viewers": len(shown),
                      "included": int((~shown["excluded"]).sum())},
            "chart": _data_uri(chart), "corrected": _data_uri(corrected) if corrected else None, "moments": cards,
            "unexpressed": [label for label in data.labels if label not in set(mine["measure"])]}


def _viewer_sections(data: StudyData, seconds: pd.DataFrame, out_dir: Path) -> list[dict]:
    """One chart per viewer and stimulus, in stimulus time (the ``per_viewer`` sections)."""
    from emolens.report.charts import emotion_chart

    sections = []
    for info in data.sessions:
        charts = []
        for stimulus in info.order:
            mine = seconds[(seconds["participant"] == info.participant) & (seconds["stimulus"] == stimulus)]
            curve = mine.assign(time_s=mine["second"] + 0.5)
            path = out_dir / f"viewer_{info.participant}_{data.study.names.index(stimulus) + 1}.png"
            emotion_chart(curve, data.labels, pd.DataFrame({"time_s": [], "text": []}), f"{info.participant}: "
                          f"{stimulus}", path, 0.0, data.study.stimulus(stimulus).duration_s, size_in=(6, 2.4),
                          legend=False)
            charts.append(_data_uri(path))
        sections.append({"participant": info.participant, "anchor": f"viewer-{info.participant}", "charts": charts})
    return sections


def _chart_files(data: StudyData, out_dir: Path, stems: dict[str, str], baseline: bool, per_viewer: bool
                 ) -> list[Path]:
    files = [out_dir / f"{stem}.png" for stem in stems.values()]
    files += [out_dir / f"{stem}_baseline.png" for stem in stems.values()] if baseline else []
    files += [out_dir / "comparison.png"] if len(stems) > 1 else []
    if per_viewer:
        files += [out_dir / f"viewer_{info.participant}_{data.study.names.index(name) + 1}.png"
                  for info in data.sessions for name in info.order]
    return files


def _check_outputs(out_dir: Path, names: list[str], overwrite: bool) -> None:
    existing = [name for name in names if (out_dir / name).exists()]
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise SettingError(f"{out_dir} already holds a report ({shown}); pass {{overwrite}} to replace it")


def _parquet(frames: pd.DataFrame, path: Path) -> Path | None:
    try:
        import pyarrow  # noqa: F401 -- the optional engine pandas writes Parquet with
    except ImportError:
        return None
    frames.to_parquet(path, index=False)
    return path


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _interval_text(table: pd.DataFrame, name: str, digits: str = "{:.2f}") -> pd.Series:
    """``value [low–high]`` per row, a dash where there is none."""
    def cell(row) -> str:
        if pd.isna(row[name]):
            return MISSING
        return f"{digits.format(row[name])} [{digits.format(row[f'{name}_low'])}–{digits.format(row[f'{name}_high'])}]"
    return table.apply(cell, axis=1)


def _comparison_html(table: pd.DataFrame, baseline: bool) -> str:
    """Measures down, the stimuli of each next to each other; the most useful columns first."""
    shown = pd.DataFrame({"measure": table["measure"], "stimulus": table["stimulus"],
                          "mean [95% CI]": _interval_text(table, "mean"),
                          "peak [95% CI]": _interval_text(table, "peak"),
                          "peak at": table["peak_second"].map(lambda s: MISSING if pd.isna(s) else clock(s))})
    if baseline:
        shown["time above baseline [95% CI]"] = _interval_text(table, "above_baseline", "{:.0%}")
    shown["viewers"] = table["viewers"]
    order = pd.Categorical(shown["measure"], categories=list(pd.unique(shown["measure"])), ordered=True)
    shown = shown.assign(measure=order).sort_values(["measure"], kind="stable").astype({"measure": str})
    return styled(shown).to_html()


def _quality_html(quality: pd.DataFrame) -> str:
    shown = quality.rename(columns={"expected_frames": "expected frames", "frames": "frames recorded",
                                    "face_found": "face found", "several_faces": "frames with 2+ faces",
                                    "head_turn_deg": "mean head turn (°)"})
    shown["excluded"] = shown["excluded"].map({True: "excluded", False: ""})
    return (styled(shown)
            .format("{:.0%}", subset=["recorded", "face found", "frames with 2+ faces"])
            .format("{:.1f}", subset=["mean head turn (°)"], na_rep=MISSING)
            .apply(lambda row: ["color: #b00020" if row["excluded"] else ""] * len(row), axis=1)
            .to_html())


def _sessions_html(sessions: pd.DataFrame) -> str:
    shown = sessions[["participant", "number", "date", "order", "stimulus_at_s", "recording", "camera", "model",
                      "emolens_version", "notes"]].rename(columns={"stimulus_at_s": "first stimulus at (s)",
                                                                   "emolens_version": "emolens"})
    return styled(shown).to_html()


def _write_page(path: Path, data: StudyData, sections: list[dict], compared: dict | None, quality: pd.DataFrame,
                sessions: pd.DataFrame, viewers: list[dict], warnings: list[str], files: list[Path]) -> Path:
    study = data.study
    environment = Environment(loader=PackageLoader("emolens.study"), autoescape=select_autoescape())
    excluded = quality[quality["excluded"]]
    page = environment.get_template("study.html").render(
        study=study, generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        viewers=len(data.sessions), sections=sections, compared=compared, quality=_quality_html(quality),
        sessions=_sessions_html(sessions), per_viewer=viewers, warnings=warnings,
        excluded=[f"{row.participant} ({row.stimulus})" for row in excluded.itertuples()],
        threshold=f"{EXPRESSING:g}", bootstrap=BOOTSTRAP_TEXT, valence=VALENCE_DEFINITION,
        min_face=f"{study.min_face_found:.0%}", has_attention="attention" in data.measures,
        files=[file.name for file in files])
    path.write_text(writable(page), encoding="utf-8")
    return path

