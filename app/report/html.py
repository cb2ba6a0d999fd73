"""The report page: one self-contained HTML file (charts inlined as PNG data URIs, no network).

The page is ``templates/report.html`` rendered by Jinja2 with autoescaping, so marker texts
and file names show as typed and never as markup; tables are pandas ``Styler`` HTML.

Example::

    write_page(out_dir / "report.html", [SessionView(...)], comparison=None, warnings=[], files=[])
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from emolens.record import writable
from emolens.report.behaviour import behaviour_facts, behaviour_table_html
from emolens.report.charts import NAMED_SESSIONS, clock
from emolens.report.compare import COMPARED
from emolens.report.confidence import CONFIDENCE
from emolens.report.segments import GROUP, VALENCE_DEFINITION
from emolens.report.styles import MISSING, styled
from emolens.report.timeline import Timeline

_NO_DATA = "background-color: transparent; color: inherit"  # not the colour map's black for NaN (nobody seen)
_VALENCE_BAR = {"align": "zero", "vmin": -1, "vmax": 1, "color": ["#e07b7b", "#7bbf8a"], "height": 70,
                "props": "width: 7em;"}


@dataclass(frozen=True)
class SessionView:
    """What the page shows of one session: its tables and the PNG charts already written."""

    timeline: Timeline
    segments: pd.DataFrame
    moments: pd.DataFrame
    group_chart: Path
    face_charts: dict[int, Path]


@dataclass(frozen=True)
class ComparisonView:
    """Several sessions side by side: ``comparison_table``'s frame and its chart."""

    table: pd.DataFrame
    chart: Path
    align_text: str


def write_page(path: Path, sessions: list[SessionView], comparison: ComparisonView | None,
               warnings: list[str], files: list[Path], aligned: str | None = None) -> Path:
    """Render the page into ``path`` (UTF-8) and return it; ``files`` are listed as written beside it; ``aligned``:
    the marker every session's times count from. Beyond ``NAMED_SESSIONS`` sessions, each session's own section
    is folded (opened on a click), so the page leads with the comparison."""
    environment = Environment(loader=PackageLoader("emolens.report"), autoescape=select_autoescape())
    page = environment.get_template("report.html").render(
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        sessions=[_session(view) for view in sessions], warnings=warnings, valence=VALENCE_DEFINITION,
        comparison=comparison and {"chart": _data_uri(comparison.chart), "align": comparison.align_text,
                                   "table": _comparison_table(comparison.table),
                                   "grouped": len(sessions) > NAMED_SESSIONS,
                                   "band": f"{CONFIDENCE:.0%} bootstrap band over sessions"},
        folded=len(sessions) > NAMED_SESSIONS, aligned=aligned, files=[file.name for file in files])
    path.write_text(writable(page), encoding="utf-8")  # file names that are not UTF-8, in the warnings
    return path


def _session(view: SessionView) -> dict:
    timeline = view.timeline
    return {
        "name": timeline.name,
        "facts": {"duration": clock(timeline.end_s - timeline.start_s), "frames": f"{len(timeline.frames):,}",
                  "faces": timeline.faces["face_id"].nunique(),
                  "coverage": f"{timeline.frames['faces'].gt(0).mean():.0%}", "markers": len(timeline.markers)},
        "group_chart": _data_uri(view.group_chart),
        "face_charts": [(face, _data_uri(chart)) for face, chart in view.face_charts.items()],
        "segments": _segment_table(view.segments, timeline.labels),
        "behaviour": behaviour_table_html(view.segments),
        "behaviour_facts": behaviour_facts(timeline.faces, timeline.frames),
        "moments": _moment_table(view.moments),
    }


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _segment_table(segments: pd.DataFrame, labels: tuple[str, ...]) -> str:
    """Segments with their group and face rows; means and shares as heat maps, valence as bars."""
    means, shares = [f"mean_{label}" for label in labels], [f"dominant_{label}" for label in labels]
    shown = segments[["marker", "start_s", "duration_s", "face", "coverage", *means, *shares, "valence"]]
    shown.columns = pd.MultiIndex.from_tuples(
        [("", "segment"), ("", "start"), ("", "duration"), ("", "face"), ("", "coverage"),
         *(("mean probability", label) for label in labels), *(("share of time dominant", label) for label in labels),
         ("", "valence")])
    is_group = (segments["face"] == GROUP).to_numpy()
    return (styled(shown)
            .format(clock, subset=[("", "start"), ("", "duration")])
            .format("{:.0%}", subset=[("", "coverage"), *(("share of time dominant", label) for label in labels)],
                    na_rep=MISSING)
            .background_gradient(cmap="Blues", vmin=0, vmax=1, subset=shown.columns[5:5 + len(labels)])
            .background_gradient(cmap="Oranges", vmin=0, vmax=1, subset=shown.columns[5 + len(labels):-1])
            .bar(subset=[("", "valence")], **_VALENCE_BAR)
            .apply(lambda row: ["font-weight: 600" if is_group[row.name] else ""] * len(row), axis=1)
            .map(lambda value: _NO_DATA if pd.isna(value) else "", subset=shown.columns[5:-1])
            .to_html())


def _moment_table(moments: pd.DataFrame) -> str:
    """One row per emotion, its peaks across: "0.97 · face 2 · 1:02.5 · logo"."""
    # astype(str): an empty table keeps its numeric types through map(), and numbers do not add to text.
    cells = (moments["probability"].map("{:.2f}".format).astype(str) + " · face " + moments["face"].astype(str)
             + " · " + moments["time_s"].map(clock).astype(str) + " · " + moments["segment"])
    table = moments.assign(cell=cells).pivot(index="emotion", columns="rank", values="cell")
    table = table.reindex(pd.unique(moments["emotion"])).rename(columns=lambda rank: f"#{rank}")
    return styled(table.rename_axis(index=None, columns=None), index=True).to_html()


def _comparison_table(table: pd.DataFrame) -> str:
    """Duration, coverage and valence of each segment per session (the CSV has every mean)."""
    shown = table[list(COMPARED)].rename(columns={"duration_s": "duration"}, level=0)
    return (styled(shown.rename_axis(index=None), index=True)
            .format(clock, subset=["duration"], na_rep=MISSING)
            .format("{:.0%}", subset=["coverage"], na_rep=MISSING)
            .bar(subset=["valence"], **_VALENCE_BAR)
            .to_html())
