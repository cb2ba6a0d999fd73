"""Reading an upload with a byte limit: a raw body or the file part of a multipart form.

The body is consumed as it arrives and written to a sink (memory for images, the job's folder
for videos), so nothing larger than the limit is ever held and nothing lands in a temporary
directory. A declared ``Content-Length`` over the limit is refused before a byte is read.

A client that stalls or trickles is cut off with 408 (see ``Limits.read_timeout_s`` and
``Limits.upload_rate``), so it holds a place in the queue or the job list only while it sends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from emolens.serve.config import Limits
from emolens.serve.errors import ApiError

_FORM_OVERHEAD = 64 * 1024  # boundaries, part headers and small fields around the file
# python-multipart logs each parse error as a bare line on stderr before raising it; the error is already the
# client's 422 answer, so the parser's own lines go nowhere.
_PARSER_LOG = logging.getLogger("emolens.serve.multipart")
_PARSER_LOG.addHandler(logging.NullHandler())
_PARSER_LOG.propagate = False


@dataclass
class Upload:
    """What was received: the media's declared type (the part's in a form), file name and size."""

    content_type: str
    filename: str
    size: int


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"upload too large: the limit is {limit} bytes ({limit / 2**20:.0f} MiB)")


async def _paced(request: Request, limits: Limits) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive, or 408 once the client pauses longer than ``read_timeout_s``
    or, after that long, has sent less than ``upload_rate`` bytes per second on average."""
    chunks = request.stream()
    started = last = time.monotonic()
    received = 0
    while True:
        stalled_at = last + limits.read_timeout_s
        behind_at = started + limits.read_timeout_s + received / limits.upload_rate
        try:
            async with asyncio.timeout(max(min(stalled_at, behind_at) - time.monotonic(), 0.0)):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            why = f"nothing arrived for {limits.read_timeout_s:g} s" if stalled_at <= behind_at else \
                f"it averaged under {limits.upload_rate / 1024:g} KiB/s"
            raise ApiError(408, f"upload too slow: {why}; the connection is closed", {"Connection": "close"}) \
                from None
        if chunk:
            last = time.monotonic()
        received += len(chunk)
        yield chunk


async def read_upload(request: Request, sink: BinaryIO, limit: int, limits: Limits) -> Upload:
    """Copy the uploaded file into ``sink``; see the module docstring.

    Raises:
        ApiError: 413 over ``limit``, 408 too slow, 422 a form without a file part or a malformed form.
        starlette.requests.ClientDisconnect: the client hung up.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + _FORM_OVERHEAD:
        raise _too_large(limit)
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"multipart/form-data":
        return await _read_form(_paced(request, limits), sink, limit, params.get(b"boundary"))
    size = 0
    async for chunk in _paced(request, limits):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        sink.write(chunk)
    return Upload(request.headers.get("content-type", ""), "", size)


class _FilePart:
    """python-multipart callbacks that copy the first part carrying a file name into ``sink``."""

    def __init__(self, sink: BinaryIO, limit: int):
        self.sink, self.limit = sink, limit
        self.upload = Upload("", "", 0)
        self.headers: dict[str, str] = {}
        self.field = self.value = b""
        self.in_file = self.found = False

    def callbacks(self) -> dict:
        return {"on_header_field": self.on_header_field, "on_header_value": self.on_header_value,
                "on_header_end": self.on_header_end, "on_headers_finished": self.on_headers_finished,
                "on_part_data": self.on_part_data, "on_part_end": self.on_part_end}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.field.decode("latin-1").lower()] = self.value.decode("latin-1")
        self.field = self.value = b""

    def on_headers_finished(self) -> None:
        _, disposition = parse_options_header(self.headers.get("content-disposition", ""))
        self.in_file = not self.found and b"filename" in disposition  # other fields are ignored
        if self.in_file:
            self.upload.filename = disposition[b"filename"].decode("utf-8", "replace")
            self.upload.content_type = self.headers.get("content-type", "")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.upload.size += end - start
            if self.upload.size <= self.limit:
                self.sink.write(data[start:end])

    def on_part_end(self) -> None:
        self.found = self.found or self.in_file
        self.in_file = False
        self.headers = {}


async def _read_form(chunks: AsyncIterator[bytes], sink: BinaryIO, limit: int, boundary: bytes | None) -> Upload:
    if not boundary:
        raise ApiError(422, "malformed multipart form: no boundary in Content-Type")
    part = _FilePart(sink, limit)
    try:
        parser = MultipartParser(boundary, part.callbacks())
    except FormParserError as error:  # a boundary over 70 characters
        raise ApiError(422, f"malformed multipart form: {error}") from None
    parser.logger = _PARSER_LOG
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if part.upload.size > limit or received > limit + _FORM_OVERHEAD:
            raise _too_large(limit)
        try:
            parser.write(chunk)
        except Exception as error:  # python-multipart's parse errors
            raise ApiError(422, f"malformed multipart form: {error}") from None
    if part.upload.size > limit:
        raise _too_large(limit)
    if not part.found:
        raise ApiError(422, "the multipart form has no file part: send the file as a field with a file name")
    return part.upload
