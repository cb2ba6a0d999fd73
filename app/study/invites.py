"""Invitations to a remote panel: one code per participant, ``DIR/invites.json``.

``emolens study invite DIR --count 20`` draws a code for each new participant (``P01``, ``P02``, ...,
numbered after the study's sessions and earlier invitations) and prints their links once. The file
keeps only each code's SHA-256, so a copy of the study folder does not let anyone in. A code admits
its participant to one session: it resumes that session after a reload or a dropped connection,
and is refused once the session is on disk.

Example::

    for participant, code in create_invites(Path("ad-test"), 3):
        print(participant, f"http://host:8000/panel/ad-test#code={code}")
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from emolens.errors import EmolensError, SettingError
from emolens.record import replace_private_text
from emolens.study.file import load_study
from emolens.study.sessions import read_sessions

INVITES_FILE = "invites.json"
MAX_INVITES = 10_000  # participants one call invites (each a line to print and an entry of the file)
_NUMBERED = re.compile(r"P(\d+)")


def code_digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def load_invites(folder: Path) -> dict[str, str]:
    """``{participant: sha256 of their code}`` (empty when the study has no invitations).

    Raises:
        EmolensError: the file is unreadable or not the one ``create_invites`` writes.
    """
    path = Path(folder) / INVITES_FILE
    try:
        invites = json.loads(path.read_text(encoding="utf-8"))["invites"]
        return {entry["participant"]: entry["code_sha256"] for entry in invites}
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise EmolensError(f"cannot read the invitations {path}: {error}") from None


def invited(invites: dict[str, str], code: str) -> str | None:
    """The participant whose code ``code`` is, else None (compared in constant time)."""
    digest = code_digest(code)
    return next((who for who, known in invites.items() if hmac.compare_digest(known, digest)), None)


def server_address(url: str) -> str:
    """``url``, the address participants reach ``emolens serve`` at, without a trailing ``/``.

    Raises:
        EmolensError: it is not an http:// or https:// address with a host, or it has a query or fragment.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # a bracketed host that is not IPv6
        parts = urlsplit("")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise EmolensError(f"the address {url!r} is not where participants reach emolens serve: give an http:// or "
                           f"https:// address, e.g. http://HOST:8000")
    if "?" in url or "#" in url:  # the links append /panel/STUDY#code=...
        raise EmolensError(f"the address {url!r} has a query or fragment ('?' or '#'): give the address participants "
                           f"reach emolens serve at and nothing after it, e.g. http://HOST:8000")
    return url.rstrip("/")


def create_invites(folder: Path, count: int) -> list[tuple[str, str]]:
    """Draw ``count`` new participants and codes, add them to ``invites.json``; returns ``(participant, code)``.

    Raises:
        EmolensError: not a study, a count under 1 or over ``MAX_INVITES``, an unreadable or unwritable
            invitations file.
    """
    folder = Path(folder)
    load_study(folder)
    if not 1 <= count <= MAX_INVITES:
        raise SettingError(f"{{count}} (participants to invite) must be 1 to {MAX_INVITES} at a time, got {count}")
    invites = load_invites(folder)
    taken = set(invites) | {info.participant for info, _ in read_sessions(folder)}
    first = 1 + max((int(m[1]) for name in taken if (m := _NUMBERED.fullmatch(name))), default=0)
    new = [(f"P{number:02d}", secrets.token_urlsafe(12)) for number in range(first, first + count)]
    invites.update({participant: code_digest(code) for participant, code in new})
    _write_invites(folder / INVITES_FILE, invites)
    return new


def _write_invites(path: Path, invites: dict[str, str]) -> None:
    """Replace the file in one step (a copy written beside it first), readable by its owner only."""
    text = json.dumps({"invites": [{"participant": who, "code_sha256": digest} for who, digest in invites.items()]},
                      indent=2) + "\n"
    try:
        replace_private_text(path, text)
    except OSError as error:
        raise EmolensError(f"cannot write the invitations {path}: {error.strerror or error}") from None
