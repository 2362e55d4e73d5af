"""Test-only URLconf: the real routes plus views that fail on purpose."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aura.errors import DomainError, NotFound
from aura.urls import handler404, handler500
from aura.urls import urlpatterns as app_urlpatterns

SECRET_DETAIL = "db password is hunter2"


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(SECRET_DETAIL)


def echo_request_id(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"request_id": request.request_id})  # type: ignore[attr-defined]


class DrfBoom(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request: Request) -> Response:
        raise RuntimeError(SECRET_DETAIL)


class DrfDomainError(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request: Request) -> Response:
        if request.query_params.get("kind") == "missing":
            raise NotFound("No such route plan.")
        raise DomainError("budget must be positive", param="budget", limit=0)


urlpatterns = [
    *app_urlpatterns,
    path("api/boom", boom),
    path("api/drf-boom", DrfBoom.as_view()),
    path("api/domain-error", DrfDomainError.as_view()),
    path("v1/boom", boom),
    path("boom", boom),
    path("echo-request-id", echo_request_id),
]

__all__ = ["handler404", "handler500", "urlpatterns"]
