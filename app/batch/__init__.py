"""``emolens batch``: analyse archives of recordings, resumably, into one Parquet dataset (extra ``batch``).

Modules, in the order work flows: ``inputs`` (INPUTS -> recordings), ``tasks`` (one recording ->
its timeline, in a worker), ``engines`` (a local process pool or a Ray cluster), ``dataset``
(the output folder and its atomic writes), ``manifest`` (one row per input), ``runner`` (the driver).

Example::

    from emolens import AnalyzerOptions
    from emolens.batch import BatchSettings, run_batch
    summary = run_batch(["archive/"], "out/", BatchSettings(AnalyzerOptions()), engine="ray")
"""

from emolens.batch.runner import BatchSummary, run_batch
from emolens.batch.tasks import BatchSettings

__all__ = ["BatchSettings", "BatchSummary", "run_batch"]
