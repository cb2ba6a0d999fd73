"""How the report's tables look: user text escaped, missing values as a dash (shared by every table)."""

from __future__ import annotations

import pandas as pd
from pandas.io.formats.style import Styler

MISSING = "–"


def styled(table: pd.DataFrame, index: bool = False) -> Styler:
    """A table with HTML-escaped cells and headers (markers and names are user text)."""
    styler = (table.style.format(precision=2, na_rep=MISSING, escape="html")
              .format_index(escape="html", axis=0).format_index(escape="html", axis=1)
              .set_table_attributes('class="data"'))
    return styler if index else styler.hide(axis="index")
