"""Turning a rendered body into an HTTP answer: validators, caching and CORS headers.

Every JSON answer is CORS-readable from any origin (the data is public and read-only); a request
whose If-None-Match names the current ETag gets 304 with no body.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from services.gateway.caching import Body, accepts_gzip, make_body, matches
from services.gateway.upstream import HttpError

JSON = "application/json"
# Any origin may read the public data. Successful answers carry only what a browser needs (every
# header costs on the hot path); error answers also expose Retry-After to scripts.
CORS = {"access-control-allow-origin": "*"}
CORS_ERRORS = {**CORS, "access-control-expose-headers": "Retry-After"}
SAFETY = [(b"x-content-type-options", b"nosniff")]
PREFLIGHT = {
    **CORS,
    "access-control-allow-methods": "GET, HEAD, OPTIONS",
    "access-control-allow-headers": "If-None-Match, Content-Type",
    "access-control-max-age": "600",
}


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode()


def error_body(err: HttpError) -> Body:
    return make_body(
        json_bytes({"error": {"code": err.status, "status": err.code, "message": err.message}}),
        JSON,
        err.status,
        err.retry_after,
    )


def answer_headers(body: Body, max_age: int, cors: bool, gzipped: bool = False) -> dict[str, str]:
    """Validators only on success; errors are never stored by browsers or proxies."""
    headers = {"etag": body.gzip_etag if gzipped else body.etag} if body.status < 400 else {}
    headers["cache-control"] = f"public, max-age={max_age}" if body.status < 400 else "no-store"
    if body.gzipped is not None:
        headers["vary"] = "Accept-Encoding"
    if gzipped:
        headers["content-encoding"] = "gzip"
    if body.retry_after:
        headers["retry-after"] = str(body.retry_after)
    if cors:
        headers.update(CORS if body.status < 400 else CORS_ERRORS)
    return headers


def use_gzip(body: Body, accept_encoding: str | None) -> bool:
    return body.gzipped is not None and accepts_gzip(accept_encoding)


def not_modified(body: Body, if_none_match: str | None, gzipped: bool = False) -> bool:
    return body.status == 200 and matches(if_none_match, body.gzip_etag if gzipped else body.etag)


def respond(request: Request, body: Body, max_age: int, *, cors: bool, extra: dict[str, str] | None = None) -> Response:
    gzipped = use_gzip(body, request.headers.get("accept-encoding"))
    headers = {**answer_headers(body, max_age, cors, gzipped), **(extra or {})}
    if not_modified(body, request.headers.get("if-none-match"), gzipped):
        headers.pop("content-encoding", None)
        return Response(status_code=304, headers=headers)
    content = body.gzipped if gzipped and body.gzipped is not None else body.content
    return Response(content, status_code=body.status, media_type=body.media_type, headers=headers)


def error_response(request: Request, err: HttpError) -> Response:
    return respond(request, error_body(err), 0, cors=True)
