"""multipart/form-data parsed in memory (python-multipart's streaming parser).

Starlette's own form parser spools files over 1 MB to temporary files on disk; the service keeps
uploads in memory only (the body is already capped at `max_upload_bytes`), so nothing a client
sends is written anywhere unless `--save-uploads` asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .uploads import UploadError


@dataclass(frozen=True)
class Part:
    """One form field: `filename` is None for a plain (non-file) field."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(body: bytes, content_type: str, *, max_parts: int) -> list[Part]:
    """The parts of a multipart/form-data body.

    Raises:
        UploadError: 400 for a missing boundary, a malformed body or more than `max_parts` parts.
    """
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise UploadError(400, "multipart/form-data request without a boundary in its Content-Type header")
    parts: list[Part] = []
    headers: dict[bytes, bytes] = {}
    field, value, data = bytearray(), bytearray(), bytearray()

    def on_part_begin() -> None:
        headers.clear()
        data.clear()

    def on_header_field(buf: bytes, start: int, end: int) -> None:
        field.extend(buf[start:end])

    def on_header_value(buf: bytes, start: int, end: int) -> None:
        value.extend(buf[start:end])

    def on_header_end() -> None:
        headers[bytes(field).lower()] = bytes(value)
        field.clear()
        value.clear()

    def on_part_data(buf: bytes, start: int, end: int) -> None:
        data.extend(buf[start:end])

    def on_part_end() -> None:
        if len(parts) >= max_parts:
            raise UploadError(400, f"the form has more than {max_parts} parts; send at most {max_parts}")
        _, disposition = parse_options_header(headers.get(b"content-disposition"))
        filename = disposition.get(b"filename")
        parts.append(Part(name=_text(disposition.get(b"name", b"")),
                          filename=None if filename is None else _text(filename),
                          content_type=_text(headers[b"content-type"]) if b"content-type" in headers else None,
                          data=bytes(data)))

    callbacks = {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                 "on_header_value": on_header_value, "on_header_end": on_header_end,
                 "on_part_data": on_part_data, "on_part_end": on_part_end}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise UploadError(400, f"malformed multipart/form-data body: {exc}") from None
    return parts


def _text(raw: bytes) -> str:
    # Names are only echoed back in JSON (never used as paths); cap them so a reply stays small.
    return raw.decode("utf-8", errors="replace")[:200]
