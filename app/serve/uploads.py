"""Reading an upload with a byte limit: a raw body or the file part of a multipart form.

The body is consumed as it arrives and written to a sink (memory for images, the job's folder
for videos), so nothing larger than the limit is ever held and nothing lands in a temporary
directory. A declared ``Content-Length`` over the limit is refused before a byte is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from emolens.serve.errors import ApiError

_FORM_OVERHEAD = 64 * 1024  # boundaries, part headers and small fields around the file


@dataclass
class Upload:
    """What was received: the media's declared type (the part's in a form), file name and size."""

    content_type: str
    filename: str
    size: int


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"upload too large: the limit is {limit} bytes ({limit / 2**20:.0f} MiB)")


async def read_upload(request: Request, sink: BinaryIO, limit: int) -> Upload:
    """Copy the uploaded file into ``sink``; see the module docstring.

    Raises:
        ApiError: 413 over ``limit``, 422 a form without a file part or a malformed form.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + _FORM_OVERHEAD:
        raise _too_large(limit)
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"multipart/form-data":
        return await _read_form(request, sink, limit, params.get(b"boundary"))
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        sink.write(chunk)
    return Upload(request.headers.get("content-type", ""), "", size)


async def _read_form(request: Request, sink: BinaryIO, limit: int, boundary: bytes | None) -> Upload:
    if not boundary:
        raise ApiError(422, "malformed multipart form: no boundary in Content-Type")
    state = {"headers": {}, "field": b"", "value": b"", "in_file": False, "done": False}
    upload = Upload("", "", 0)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"].decode("latin-1")
        state["field"] = state["value"] = b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state["headers"].get("content-disposition", ""))
        # The first part that carries a file name is the upload; other fields are ignored.
        state["in_file"] = not state["done"] and b"filename" in disposition
        if state["in_file"]:
            upload.filename = disposition[b"filename"].decode("utf-8", "replace")
            upload.content_type = state["headers"].get("content-type", "")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["in_file"]:
            upload.size += end - start
            if upload.size <= limit:
                sink.write(data[start:end])

    def on_part_end() -> None:
        state["done"] = state["done"] or state["in_file"]
        state["in_file"] = False
        state["headers"] = {}

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end})
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if upload.size > limit or received > limit + _FORM_OVERHEAD:
            raise _too_large(limit)
        try:
            parser.write(chunk)
        except Exception as error:  # python-multipart's parse errors
            raise ApiError(422, f"malformed multipart form: {error}") from None
    if upload.size > limit:
        raise _too_large(limit)
    if not state["done"]:
        raise ApiError(422, "the multipart form has no file part: send the file as a field with a file name")
    return upload
