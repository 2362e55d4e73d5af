"""Learning API: feedback on served requests and bulk outcome imports.

- ``POST /api/v1/router/feedback`` ``{"request_id", "quality": 0..1}`` or ``{"request_id",
  "thumbs": "up"|"down"}``: the member role (an application's key) is enough.
- ``POST /api/v1/router/outcomes/import`` (admin): the body is JSON lines
  (``application/x-ndjson`` / ``application/jsonl``) or CSV (``text/csv``), or say
  ``?format=jsonl|csv``; 202 with the job, run by a Celery worker.
- ``GET /api/v1/router/outcomes/import/<id>``: the job's progress and its first errors.
- ``POST /api/v1/router/optimize`` (admin): the weight optimizer now, dry run or apply;
  ``GET /api/v1/router/optimizations[/<id>]`` its runs (weekly and on demand);
  ``POST /api/v1/router/optimizations/<id>/apply`` and ``.../revert`` (admin).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.urls import reverse
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from aura.errors import DomainError, RequestTooLarge
from routing.learning.config import MAX_WINDOW_DAYS, OPTIMIZATION_GOALS, OPTIMIZATION_METHODS
from routing.learning.models import OutcomeImport, WeightOptimization
from routing.learning.optimization import (
    optimization_apply,
    optimization_body,
    optimization_compute,
    optimization_revert,
    optimization_run,
)
from routing.learning.services import THUMBS, feedback_record, outcome_import_create
from routing.policy.api import json_object
from tenants.models import Role
from tenants.scoping import TenantScopedAPIView

_FORMATS_BY_TYPE = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/jsonlines": "jsonl",
    "application/json-lines": "jsonl",
}


class FeedbackView(TenantScopedAPIView):
    required_role = Role.MEMBER

    def post(self, request: Request) -> Response:
        data = json_object(request.data)
        request_id = data.get("request_id")
        if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > 64:
            raise DomainError(
                "'request_id' is required: the x-aura-request-id of a served request.",
                param="request_id",
            )
        has_quality, has_thumbs = data.get("quality") is not None, data.get("thumbs") is not None
        if has_quality == has_thumbs:
            raise DomainError("Give either 'quality' (0 to 1) or 'thumbs' (up or down).")
        if has_thumbs:
            thumbs = data["thumbs"]
            if thumbs not in THUMBS:
                raise DomainError('\'thumbs\' must be "up" or "down".', param="thumbs")
            quality = THUMBS[thumbs]
        else:
            value = data["quality"]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not 0 <= value <= 1
            ):
                raise DomainError("'quality' must be a number from 0 to 1.", param="quality")
            quality = float(value)
        result = feedback_record(tenant=self.tenant, request_id=request_id, quality=quality)
        body: dict[str, Any] = {
            "request_id": request_id,
            "model": result.outcome.model_key,
            "quality": quality,
            "learned": result.memory is not None,
            "detail": result.note,
        }
        return Response(body, status=status.HTTP_201_CREATED)


def _read_body(request: Request) -> str:
    """The raw body, read past Django's in-memory upload cap up to the import limit."""
    limit = settings.LEARNING_IMPORT_MAX_MB * 1024 * 1024
    raw = request._request.read(limit + 1)
    if len(raw) > limit:
        raise RequestTooLarge(
            f"The import is larger than {settings.LEARNING_IMPORT_MAX_MB} MB; split it.",
            param="body",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainError("The import must be UTF-8 text.", param="body") from None


class ImportView(TenantScopedAPIView):
    required_role = Role.ADMIN

    def post(self, request: Request) -> Response:
        fmt = request.query_params.get("format")
        if fmt is None:
            content_type = (request.content_type or "").split(";")[0].strip().lower()
            fmt = _FORMATS_BY_TYPE.get(content_type)
            if fmt is None:
                raise DomainError(
                    "Send JSON lines (Content-Type: application/x-ndjson) or CSV "
                    "(text/csv), or say ?format=jsonl|csv.",
                    param="format",
                )
        job = outcome_import_create(
            tenant=self.tenant, fmt=fmt, payload=_read_body(request), user=request.user
        )
        url = reverse("router-outcomes-import-status", args=[job.pk])
        return Response(job.as_dict(), status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class ImportStatusView(TenantScopedAPIView):
    def get(self, request: Request, import_id: int) -> Response:
        job = self.get_scoped_object(OutcomeImport, pk=import_id)
        return Response(job.as_dict())


# --------------------------------------------------------------------------- optimization


def _dry_run(data: dict[str, Any]) -> bool:
    value = data.get("dry_run", True)
    if not isinstance(value, bool):
        raise DomainError("'dry_run' must be true or false.", param="dry_run")
    return value


def _overrides(data: Mapping[str, Any]) -> dict[str, Any]:
    """``method``, ``goal``, ``window_days`` of POST /router/optimize, checked."""
    out: dict[str, Any] = {}
    method = data.get("method")
    if method is not None:
        if method not in OPTIMIZATION_METHODS:
            raise DomainError(
                f"method must be one of {', '.join(OPTIMIZATION_METHODS)}.", param="method"
            )
        out["method"] = method
    goal = data.get("goal")
    if goal is not None:
        if goal not in OPTIMIZATION_GOALS:
            raise DomainError(f"goal must be one of {', '.join(OPTIMIZATION_GOALS)}.", param="goal")
        out["goal"] = goal
    days = data.get("window_days")
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_WINDOW_DAYS:
            raise DomainError(
                f"window_days must be an integer between 1 and {MAX_WINDOW_DAYS}.",
                param="window_days",
            )
        out["window_days"] = days
    return out


class OptimizeView(TenantScopedAPIView):
    """POST /api/v1/router/optimize ``{"dry_run": true, "method"?, "goal"?, "window_days"?}``.

    A dry run (the default) says what the optimizer would change and stores nothing;
    ``"dry_run": false`` stores the run and applies it when it found better weights.
    """

    required_role = Role.ADMIN

    def post(self, request: Request) -> Response:
        data = json_object(request.data)
        unknown = sorted(set(data) - {"dry_run", "method", "goal", "window_days"})
        if unknown:
            raise DomainError(
                f"'{unknown[0]}' is not an option; expected dry_run, method, goal, window_days.",
                param=unknown[0],
            )
        dry_run = _dry_run(data)
        overrides = _overrides(data)
        if dry_run:
            run = optimization_compute(tenant=self.tenant, **overrides)
            return Response({"dry_run": True, "id": None, **run.as_dict()})
        row = optimization_run(
            tenant=self.tenant,
            trigger=WeightOptimization.Trigger.API,
            apply=True,
            user=request.user,
            **overrides,
        )
        body = {"dry_run": False, **optimization_body(row)}
        return Response(body, status=status.HTTP_201_CREATED)


class OptimizationListView(TenantScopedAPIView):
    """GET /api/v1/router/optimizations, newest first, paginated."""

    def get(self, request: Request) -> Response:
        qs = self.scoped(WeightOptimization).select_related(
            "created_by", "applied_by", "reverted_by"
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(qs.order_by("-created_at", "-id"), request, view=self)
        return paginator.get_paginated_response([optimization_body(r) for r in page or []])


class OptimizationView(TenantScopedAPIView):
    def get(self, request: Request, optimization_id: int) -> Response:
        return Response(
            optimization_body(self.get_scoped_object(WeightOptimization, pk=optimization_id))
        )


class OptimizationApplyView(TenantScopedAPIView):
    """POST /api/v1/router/optimizations/<id>/apply: a proposal becomes the weights."""

    required_role = Role.ADMIN

    def post(self, request: Request, optimization_id: int) -> Response:
        row = self.get_scoped_object(WeightOptimization, pk=optimization_id)
        return Response(optimization_body(optimization_apply(run=row, user=request.user)))


class OptimizationRevertView(TenantScopedAPIView):
    """POST /api/v1/router/optimizations/<id>/revert: the weights from before it."""

    required_role = Role.ADMIN

    def post(self, request: Request, optimization_id: int) -> Response:
        row = self.get_scoped_object(WeightOptimization, pk=optimization_id)
        return Response(optimization_body(optimization_revert(run=row, user=request.user)))
