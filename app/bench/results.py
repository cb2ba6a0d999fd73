"""A benchmark's results file: checked before the run, written whole, never over a file without ``overwrite``.

A benchmark runs for minutes, so its results path is checked first (``check_results_path``), and the file is
written at the end through a hidden partial file that then takes its name (``write_results``), as every other
output of Emolens is (``emolens.record.publish``).

Example::

    check_results_path(Path("benchmarks/gui.md"), overwrite=False)    # refuses an existing file
    ...
    write_results(Path("benchmarks/gui.md"), markdown, overwrite=False)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from emolens.errors import EmolensError, SettingError
from emolens.record import file_in_the_way, partial_path, publish, refuse_existing


def check_results_path(path: Path, overwrite: bool) -> None:
    """Refuse, before a benchmark runs for minutes, a results file it could not write at the end: one under a
    file, a folder, or an existing file (without ``overwrite``).

    Raises:
        EmolensError: names the path.
    """
    taken = file_in_the_way(path.parent)
    if taken is not None:
        raise EmolensError(f"cannot write {path}: {taken} is a file, not a folder")
    if path.exists() and not path.is_file():
        folder = path if path.is_dir() else path.parent
        raise EmolensError(f"{path} is not a regular file; name the results file, e.g. {folder / 'results.md'}")
    refuse_existing(path, overwrite)


def write_results(path: Path, text: str, overwrite: bool) -> None:
    """Write a results file through a hidden partial file that then takes its name: an interrupted or failed write
    leaves no half-written file, and a file that appeared while the benchmark ran is replaced only with
    ``overwrite`` (otherwise the figures stay in the partial file, which the error names).

    Raises:
        EmolensError: the file cannot be written, or appeared meanwhile.
    """
    target = Path(os.path.realpath(path))  # a link stays a link
    partial = partial_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        publish(partial, target, overwrite)
    except FileExistsError:
        if not partial.is_file():  # the folder could not be made: a file stands in its way
            raise EmolensError(f"cannot write {path}: {file_in_the_way(target.parent)} is a file, not a folder") \
                from None
        raise SettingError(f"{path} appeared while the benchmark ran; its figures are in {partial}: rename that "
                           f"file, or pass {{overwrite}} next time") from None
    except BaseException as error:  # a full disk, Ctrl+C: no half-written file stays behind
        partial.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise EmolensError(f"cannot write {path}: {error.strerror or error}") from None
        raise


def run_module(main: Callable[[], int]) -> None:
    """``python -m emolens.bench.NAME``: exit with ``main()``'s status, an ``EmolensError`` as one line."""
    try:
        status = main()
    except SettingError as error:
        print(f"error: {error.naming(lambda name: '--' + name)}", file=sys.stderr)
        status = 1
    except EmolensError as error:
        print(f"error: {error}", file=sys.stderr)
        status = 1
    sys.exit(status)
