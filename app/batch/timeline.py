"""One input's timeline as Parquet, from the row values `emolens analyze` writes as CSV text.

``ParquetRecorder`` is a recorder (``emolens.record.Recorder``): ``Analyzer.run`` hands it each frame,
``TimelineRows`` makes the rows, and they are stored in their column types, the input's id and path in
front, with no text in between (a probability stays the float the model gave). With ``--csv`` a
``CsvRecorder`` shares its ``TimelineRows`` and gets the same rows, so both files hold the same timestamps
and markers.

Example::

    with store.timeline_writer(input_id, schema, fingerprint) as writer:
        recorder = ParquetRecorder(writer, input_id, path, TimelineRows(card.labels))
        analyze_source(analyzer, source, recorder, summary)
        recorder.finish()
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from emolens.record import CsvRecorder, TimelineRows
from emolens.types import Faces, Frame

ROWS_PER_BATCH = 4096  # rows buffered before they go to the file as one record batch


class ParquetRecorder:
    """Record frames into an open Parquet writer whose schema is ``input_id``, ``input``, then the timeline's
    columns (``emolens.batch.dataset.timeline_schema``); ``csv``: also write every row there.

    Attributes:
        rows: the rows recorded so far.
    """

    def __init__(self, writer: pq.ParquetWriter, input_id: str, input_path: str, timeline: TimelineRows,
                 csv: CsvRecorder | None = None):
        self.writer, self.timeline, self.csv = writer, timeline, csv
        self._constants = (input_id, input_path)
        self._buffer: list[list] = []
        self.rows = 0

    def mark(self, text: str) -> None:
        self.timeline.mark(text)

    def append(self, frame: Frame, faces: Faces, wall_time: datetime | None = None,
               stimulus: tuple[str, float] | None = None) -> int:
        """Record the rows of one frame (``TimelineRows.frame_rows``); returns how many."""
        rows = self.timeline.frame_rows(frame, faces, wall_time, stimulus)
        self._add(rows)
        return len(rows)

    def finish(self) -> None:
        """Record the markers left after the last frame and hand every buffered row to the writer."""
        closing = self.timeline.closing_row()
        if closing is not None:
            self._add([closing])
        self._write_buffer()

    def _add(self, rows: list[list]) -> None:
        if self.csv is not None:
            self.csv.write_rows(rows)
        self._buffer += rows
        self.rows += len(rows)
        if len(self._buffer) >= ROWS_PER_BATCH:
            self._write_buffer()

    def _write_buffer(self) -> None:
        if not self._buffer:
            return
        schema, count = self.writer.schema, len(self._buffer)
        constants = [pa.array([value] * count, pa.string()) for value in self._constants]
        columns = [pa.array(values, field.type) for values, field in zip(zip(*self._buffer), list(schema)[2:])]
        self.writer.write_batch(pa.RecordBatch.from_arrays(constants + columns, schema=schema))
        self._buffer.clear()
