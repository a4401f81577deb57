"""Media types as Elasticsearch negotiates them (``Content-Type`` / ``Accept``).

Elasticsearch parses request bodies by ``Content-Type`` and answers in the type of the
``Accept`` header. The official clients send
``application/vnd.elasticsearch+json; compatible-with=N`` (REST API compatibility):
a 9.x node accepts N = 9 and N = 8 and answers with the same compatible type
(``application/vnd.elasticsearch+json;compatible-with=N``). Plain ``application/json``
gets ``application/json`` back.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ApiError

#: the major version this endpoint speaks, and the previous one it stays compatible with
CURRENT_MAJOR = 9
COMPATIBLE_MAJORS = (9, 8)

JSON = "application/json"
VND_JSON = "application/vnd.elasticsearch+json"
#: newline-delimited JSON (``_bulk``), plain and vendor forms
NDJSON = "application/x-ndjson"
VND_NDJSON = "application/vnd.elasticsearch+x-ndjson"
#: request body types whose content is JSON text
JSON_TYPES = frozenset({JSON, VND_JSON, NDJSON, VND_NDJSON})


@dataclass(frozen=True)
class MediaType:
    """A parsed ``type/subtype; param=value`` header."""

    mime: str
    params: dict[str, str]

    @property
    def compatible_with(self) -> str | None:
        return self.params.get("compatible-with")


def parse_media_type(header: str | None) -> MediaType | None:
    """Parse one media type; ``None`` for a missing or blank header."""
    if header is None or not header.strip():
        return None
    first = header.split(",")[0]
    parts = [p.strip() for p in first.split(";")]
    params: dict[str, str] = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"')
    return MediaType(parts[0].lower(), params)


def _version(media: MediaType | None) -> int | None:
    """The compatible-with major of a vendor type, ``None`` when the type asks for none."""
    if media is None or media.compatible_with is None:
        return None
    try:
        return int(media.compatible_with)
    except ValueError:
        return -1


def _header_error(reason: str) -> ApiError:
    return ApiError(
        "media_type_header_exception",
        "Invalid media-type value on headers [Accept, Content-Type]",
        400,
        caused_by=ApiError("status_exception", reason, 400),
    )


def content_type_error(raw_values: list[str]) -> ApiError:
    """ES's 406 for a body whose ``Content-Type`` it cannot parse (or that has none)."""
    if not raw_values:
        return ApiError("not_acceptable", "Content-Type header is missing", 406, simple=True)
    return ApiError(
        "not_acceptable",
        f"Content-Type header [{', '.join(raw_values)}] is not supported",
        406,
        simple=True,
    )


@dataclass(frozen=True)
class Negotiated:
    """What a request may send and what the answer's ``Content-Type`` is."""

    response_type: str
    compatible_major: int | None


def negotiate(accept: str | None, content_type: str | None, has_body: bool) -> Negotiated:
    """Check the two headers as ES's ``RestCompatibleVersionHelper`` does.

    Raises :class:`ApiError` (406 for an unsupported body type, 400
    ``media_type_header_exception`` for an unsupported or mismatching compatible version).
    """
    accept_type = parse_media_type(accept)
    body_type = parse_media_type(content_type) if has_body else None
    if has_body and (body_type is None or body_type.mime not in JSON_TYPES):
        raise content_type_error([content_type] if content_type else [])
    accept_v = _version(accept_type) if accept_type is not None and accept_type.mime.startswith("application/vnd.elasticsearch") else None
    body_v = _version(body_type) if body_type is not None and body_type.mime in (VND_JSON, VND_NDJSON) else None
    allowed = " or ".join(str(v) for v in COMPATIBLE_MAJORS)
    if accept_v is not None and accept_v not in COMPATIBLE_MAJORS:
        raise _header_error(f"Accept version must be either version {allowed}, but found {accept_v}. Accept={accept}")
    if body_v is not None and body_v not in COMPATIBLE_MAJORS:
        raise _header_error(
            f"Content-Type version must be either version {allowed}, but found {body_v}. Content-Type={content_type}"
        )
    if has_body and accept_v is not None and body_v is not None and accept_v != body_v:
        raise _header_error(
            "A compatible version is required on both Content-Type and Accept headers if either one has requested "
            f"a compatible version and the compatible versions must match. Accept={accept}, Content-Type={content_type}"
        )
    if accept_v is not None:
        return Negotiated(f"{VND_JSON};compatible-with={accept_v}", accept_v)
    if body_v is not None:
        return Negotiated(f"{VND_JSON};compatible-with={body_v}", body_v)
    return Negotiated(JSON, None)
