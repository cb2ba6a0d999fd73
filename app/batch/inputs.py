"""What a batch is made of: INPUTS (files, folders, globs, list files) -> one ``BatchInput`` per recording.

Rules, in the order they are tried for each INPUT:

- a ``.txt`` file is a list: one input per line (blank lines and ``#`` comments ignored); a ``.csv``
  file is a list in its ``input`` (or ``path``) column, else its first column. Relative entries are
  relative to the list file's folder. Entries are expanded again by these rules (not recursively
  as lists: a list inside a list is an error);
- an existing folder: every video and image file under it, recursively, in name order (hidden
  files and folders are skipped); each file is one input;
- an existing file: one input (a video, or an image analysed as one frame);
- a pattern with ``* ? [`` (``**`` recurses): every matching media file;
- anything else is a *bad input*: it becomes a ``BatchInput`` with ``error`` set, so it is recorded
  in the manifest as failed and never stops the rest of the batch.

An input's id, ``<stem>-<10 hex digits of sha1(absolute path)>``, names its output file: the same
path always gets the same id, and two ``clip.mp4`` in different folders do not collide. A path is
hashed as the bytes the filesystem holds (``os.fsencode``), so a name that is not valid UTF-8
(``bad\\xff.jpg``, read by Python as surrogate escapes) has an id too; ``display_path`` is its text
for the manifest and the Parquet ``input`` column, with such bytes written ``\\xff``.

Each file's ``content_sha256`` hashes its first and last MiB: with its size and mtime it tells a
recording replaced by another of the same size and mtime (a copy with ``cp -p``, a restored backup)
from the one analysed, for the cost of reading 2 MiB per input, not the whole file.

Example::

    items = expand_inputs(["archive/", "extra/*.mov", "list.txt"])
    [item.input_id for item in items if item.error is None]
"""

from __future__ import annotations

import csv
import glob
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from emolens.images import IMAGE_SUFFIXES

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
                            ".ts", ".mts", ".3gp", ".ogv"})
MEDIA_SUFFIXES = VIDEO_SUFFIXES | frozenset(IMAGE_SUFFIXES)
LIST_SUFFIXES = (".txt", ".csv")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SAMPLE_BYTES = 1 << 20  # how much of each end of a file its content hash reads


@dataclass(frozen=True)
class BatchInput:
    """One recording to analyse, or a bad INPUT (``error`` set, nothing else known).

    Attributes:
        path: absolute path of the file (as given, when it does not exist).
        input_id: file-name-safe id, stable for a path (see the module docstring).
        size: bytes; with ``mtime_ns`` it tells whether the file changed since its output was written.
        mtime_ns: modification time in nanoseconds.
        content_sha256: sha256 of the file's first and last MiB (see the module docstring).
        error: why this INPUT cannot be analysed (missing, a folder with no media, ...), else None.
    """

    path: str
    input_id: str
    size: int = 0
    mtime_ns: int = 0
    content_sha256: str = ""
    error: str | None = None

    @property
    def display_path(self) -> str:
        """``path`` as valid UTF-8 text: bytes of a name that are not UTF-8 are written ``\\xff``."""
        return display_path(self.path)


def input_id(path: str) -> str:
    """``<stem>-<hash>``: readable, safe as a file name, unique per absolute path."""
    stem = _UNSAFE.sub("_", Path(path).stem).strip("._")[:60] or "input"
    return f"{stem}-{hashlib.sha1(os.fsencode(path)).hexdigest()[:10]}"


def display_path(path: str) -> str:
    """``path`` as valid UTF-8 text (a Parquet string, a line of the manifest): the bytes of a name that
    is not UTF-8, which Python holds as surrogate escapes, are written as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def content_sha256(path: str, size: int) -> str:
    """sha256 of the first and the last MiB of a file of ``size`` bytes (the whole file when smaller)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        digest.update(file.read(_SAMPLE_BYTES))
        if size > _SAMPLE_BYTES:
            file.seek(max(_SAMPLE_BYTES, size - _SAMPLE_BYTES))
            digest.update(file.read(_SAMPLE_BYTES))
    return digest.hexdigest()


def expand_inputs(specs: list[str]) -> list[BatchInput]:
    """Every recording the INPUTS name, each once (first mention wins), bad ones flagged."""
    items: dict[str, BatchInput] = {}
    for spec in specs:
        for item in _expand(spec, allow_list=True):
            items.setdefault(item.path, item)
    return list(items.values())


def _expand(spec: str, allow_list: bool, base: Path | None = None) -> list[BatchInput]:
    path = Path(spec).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        if not allow_list:
            return [_bad(path, "a list of inputs inside a list is not supported")]
        try:
            entries = _read_list(path)
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            return [_bad(path, f"cannot read the input list: {error}")]
        if not entries:
            return [_bad(path, "the input list names no input")]
        return [item for entry in entries for item in _expand(entry, allow_list=False, base=path.parent)]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if _is_media(p) and not _hidden(p.relative_to(path)))
        if not files:
            return [_bad(path, f"no video or image files in folder {spec}")]
        return [_file(p) for p in files]
    if path.is_file():
        return [_file(path)]
    if glob.has_magic(str(path)):
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if _is_media(Path(p)))
        return [_file(p) for p in files] or [_bad(path, f"no video or image file matches {spec}")]
    return [_bad(path, f"input not found: {spec}")]


def _read_list(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".txt":
        lines = (line.strip() for line in text.splitlines())
        return [line for line in lines if line and not line.startswith("#")]
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(name) for name in ("input", "path") if name in header), None)
    body = rows[1:] if column is not None else rows
    return [row[column or 0].strip() for row in body if row and row[column or 0].strip()]


def _is_media(path: Path) -> bool:
    return path.suffix.lower() in MEDIA_SUFFIXES and path.is_file()


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _file(path: Path) -> BatchInput:
    absolute = os.path.abspath(path)
    try:
        stat = os.stat(absolute)
        content = content_sha256(absolute, stat.st_size)
    except OSError as error:
        return _bad(path, f"cannot read the file: {error.strerror or error}")
    return BatchInput(absolute, input_id(absolute), stat.st_size, stat.st_mtime_ns, content)


def _bad(path: Path, error: str) -> BatchInput:
    absolute = os.path.abspath(path)
    return BatchInput(absolute, input_id(absolute), error=error)
