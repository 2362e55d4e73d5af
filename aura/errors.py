"""Error shapes: DRF's on /api, OpenAI's on /v1, and no stack trace ever reaches a client.

Domain code raises ``DomainError`` subclasses; the DRF handler and the gateway both map
them to HTTP, each in its own shape, so services never build responses.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from aura.middleware import request_id_var

log = logging.getLogger("aura.errors")


class DomainError(Exception):
    """A failure a client can act on. ``code`` is stable and machine-readable."""

    status_code = 400
    code = "invalid_request"
    openai_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.extra = extra


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class PermissionDenied(DomainError):
    status_code = 403
    code = "permission_denied"
    openai_type = "permission_error"


class Conflict(DomainError):
    """The request is valid but the state it acts on has moved on (HTTP 409)."""

    status_code = 409
    code = "conflict"


class RequestTooLarge(DomainError):
    status_code = 413
    code = "request_too_large"


def openai_error_body(
    message: str, *, type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        # Raised by Django (request.body) or aura.parsers, before any view code runs.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = RequestTooLarge(f"The request body is larger than the {limit} bytes allowed.")
    if isinstance(exc, DomainError):
        data: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.param:
            data["field"] = exc.param
        data.update(exc.extra)
        return Response(data, status=exc.status_code)
    # Imported here: rest_framework.views loads the parser classes (aura.parsers), which
    # import this module.
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is None:
        # Unhandled: log with the request id, answer without internals.
        log.exception("unhandled error in API view")
        return Response(
            {"detail": "Internal server error.", "request_id": request_id_var.get()},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response["WWW-Authenticate"] = 'Bearer realm="aura"'
    return response


def server_error(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """handler500: JSON for machine namespaces, plain text elsewhere; never a traceback."""
    rid = request_id_var.get()
    if request.path.startswith("/v1/"):
        body = openai_error_body(
            f"Internal server error (request id {rid}).", type="server_error", code="internal_error"
        )
        return JsonResponse(body, status=500)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Internal server error.", "request_id": rid}, status=500)
    return HttpResponse(
        f"Internal server error (request id {rid}).", status=500, content_type="text/plain"
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return HttpResponse("Not found.", status=404, content_type="text/plain")
