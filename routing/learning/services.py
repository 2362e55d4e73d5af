"""Writes of the learning sub-package: the outcome memory, refits, feedback, imports."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from aura.errors import DomainError, NotFound
from aura.redis import sync_client
from routing.learning import features, predict, store
from routing.learning.models import OutcomeImport, OutcomeMemory
from routing.models import RoutingOutcome, RoutingPolicy
from tenants.models import Tenant

log = logging.getLogger(__name__)

IMPORT_CHUNK = 2000
MAX_ERRORS = 50
MAX_EXTERNAL_ID = 200
MAX_COST_USD = Decimal(1_000_000)
MAX_LATENCY_MS = 86_400_000.0
FORMATS = ("jsonl", "csv")
THUMBS = {"up": 1.0, "down": 0.0}


# --------------------------------------------------------------------------- refit


def memory_load(*, tenant_id: int) -> tuple[Any, ...] | None:
    """The tenant's memory as arrays: (dense, ridge features, qsum, count, models)."""
    rows = list(
        OutcomeMemory.objects.filter(tenant_id=tenant_id)
        .order_by("id")
        .values_list("prompt_hash", "model_key", "quality", "embedding", "lexical")
    )
    if not rows:
        return None
    keys = [r[0] for r in rows]
    first, qsum, count, models = predict.group_points(
        [r[1] for r in rows], [r[2] for r in rows], keys
    )
    dense = np.asarray([rows[i][3] for i in first], np.float32)
    lexical = features.lexical_matrix([rows[i][4] for i in first])
    return dense, features.ridge_features(dense, lexical), qsum, count, models


def predictor_refit(*, tenant_id: int) -> predict.Predictor | None:
    """Fit the tenant's predictor on its whole memory and publish it to every process."""
    loaded = memory_load(tenant_id=tenant_id)
    client = sync_client()
    if loaded is None:
        client.delete(store.model_key(tenant_id))
        client.incr(store.version_key(tenant_id))
        return None
    dense, ridge_x, qsum, count, models = loaded
    predictor = predict.fit(dense, ridge_x, qsum, count, models, seed=tenant_id)
    pipe = client.pipeline()
    pipe.set(store.model_key(tenant_id), store.dumps(predictor))
    pipe.incr(store.version_key(tenant_id))
    pipe.execute()
    return predictor


def refit_soon(*, tenant_id: int) -> None:
    """Refit once within ``REFIT_LOCK_SECONDS`` however many outcomes arrive meanwhile."""
    from routing.learning.tasks import refit_predictor

    try:
        first = sync_client().set(
            store.refit_lock_key(tenant_id), 1, nx=True, ex=store.REFIT_LOCK_SECONDS
        )
    except Exception:
        log.warning("refit lock unavailable (Redis); refitting tenant %s now", tenant_id)
        first = True
    if first:
        transaction.on_commit(
            lambda: refit_predictor.apply_async((tenant_id,), countdown=store.REFIT_LOCK_SECONDS)
        )


# --------------------------------------------------------------------------- served requests


def learning_enabled(*, tenant_id: int) -> tuple[bool, bool]:
    raw = RoutingPolicy.objects.filter(tenant_id=tenant_id).values_list("learning", flat=True)
    block = {"enabled": False, "store_prompts": False, **(raw.first() or {})}
    return bool(block["enabled"]), bool(block["store_prompts"])


def served_get(*, tenant_id: int, request_id: str) -> store.Served | None:
    raw = sync_client().get(store.served_key(tenant_id, request_id))
    if isinstance(raw, str):
        raw = raw.encode()
    return store.Served.loads(raw) if raw else None


# --------------------------------------------------------------------------- feedback


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    outcome: RoutingOutcome
    memory: OutcomeMemory | None
    note: str


def feedback_record(
    *, tenant: Tenant, request_id: str, quality: float, served: store.Served | None = None
) -> FeedbackResult:
    """Quality feedback on a served request. It always reaches the outcomes (metrics); it
    joins the memory when the request's prompt features were kept (learning on)."""
    from billing.models import UsageRecord

    usage = (
        # Bounded in time so the tenant+time index serves it (usage has no request id index).
        UsageRecord.objects.filter(
            tenant=tenant,
            created_at__gte=timezone.now() - timedelta(days=settings.LEARNING_FEEDBACK_DAYS),
            request_id=request_id,
        )
        .order_by("-id")
        .values("provider", "model", "cost_usd", "latency_ms")
        .first()
    )
    if served is None:
        served = served_get(tenant_id=tenant.pk, request_id=request_id)
    if usage is None and served is None:
        raise NotFound(f"No request {request_id!r} was served for this tenant.", param="request_id")
    if served is not None:
        model, cost, latency = served.model, Decimal(served.cost_usd), served.latency_ms
    else:
        assert usage is not None
        model = f"{usage['provider']}/{usage['model']}"
        cost, latency = Decimal(usage["cost_usd"] or 0), float(usage["latency_ms"] or 0)
    with transaction.atomic():
        outcome, _ = RoutingOutcome.objects.update_or_create(
            tenant=tenant,
            request_id=request_id,
            source="feedback",
            defaults={
                "model_key": model,
                "success": True,
                "latency_ms": latency,
                "cost_usd": cost,
                "quality_score": quality,
            },
        )
        memory = None
        note = "stored in the outcome memory"
        if served is None:
            note = (
                "recorded; not learned from: the request's prompt features were not kept "
                f"(learning off, or older than {settings.LEARNING_FEEDBACK_DAYS} days)"
            )
        else:
            memory = _remember_served(
                tenant=tenant,
                request_id=request_id,
                served=served,
                model=model,
                quality=quality,
                success=True,
                cost=cost,
                latency=latency,
                source=OutcomeMemory.Source.FEEDBACK,
            )
    return FeedbackResult(outcome, memory, note)


def _remember_served(
    *,
    tenant: Tenant,
    request_id: str,
    served: store.Served,
    model: str,
    quality: float,
    success: bool,
    cost: Decimal | None,
    latency: float | None,
    source: str,
) -> OutcomeMemory:
    """A served request's outcome in the memory (one per request: a later one corrects it),
    and a refit soon."""
    memory, _ = OutcomeMemory.objects.update_or_create(
        tenant=tenant,
        request_id=request_id,
        defaults={
            "prompt_hash": served.prompt_hash,
            "embedder": features.EMBEDDER,
            "embedding": served.embedding,
            "lexical": served.lexical,
            "model_key": model,
            "quality": quality,
            "success": success,
            "cost_usd": cost,
            "latency_ms": latency,
            "source": source,
            "prompt": served.prompt,
        },
    )
    refit_soon(tenant_id=tenant.pk)
    return memory


def record_remember(
    *,
    tenant: Tenant,
    request_id: str,
    model: str,
    quality: float | None,
    success: bool,
    cost: Decimal,
    latency: float,
) -> OutcomeMemory | None:
    """POST /router/record of a served request with a quality (or a failure, quality 0):
    it joins the memory when the request's prompt features were kept (learning on)."""
    if not request_id or (quality is None and success):
        return None
    served = served_get(tenant_id=tenant.pk, request_id=request_id)
    if served is None:
        return None
    return _remember_served(
        tenant=tenant,
        request_id=request_id,
        served=served,
        model=model,
        quality=quality if quality is not None else 0.0,
        success=success,
        cost=cost,
        latency=latency,
        source=OutcomeMemory.Source.RECORD,
    )


# --------------------------------------------------------------------------- imports


def outcome_import_create(
    *, tenant: Tenant, fmt: str, payload: str, user: Any = None
) -> OutcomeImport:
    from routing.learning.tasks import run_outcome_import

    if fmt not in FORMATS:
        raise DomainError(f"format must be one of {', '.join(FORMATS)}.", param="format")
    if not payload.strip():
        raise DomainError("The import is empty: send JSON lines or CSV rows.", param="body")
    lines = payload.count("\n") + (0 if payload.endswith("\n") else 1)
    total = max(0, lines - 1) if fmt == "csv" else sum(1 for x in payload.splitlines() if x.strip())
    job = OutcomeImport.objects.create(
        tenant=tenant,
        format=fmt,
        payload=payload,
        total=total,
        # An API key's principal is not a user row: only signed-in users are recorded.
        created_by=user if isinstance(user, get_user_model()) else None,
    )
    transaction.on_commit(lambda: run_outcome_import.delay(job.pk))
    return job


class RowError(ValueError):
    pass


def _rows(fmt: str, payload: str) -> Iterator[tuple[int, Mapping[str, Any] | RowError]]:
    if fmt == "jsonl":
        for n, line in enumerate(payload.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, RowError(f"not JSON ({exc.msg})")
                continue
            yield n, item if isinstance(item, dict) else RowError("not a JSON object")
        return
    reader = csv.DictReader(io.StringIO(payload))
    if not reader.fieldnames or "model" not in reader.fieldnames:
        yield 1, RowError("the CSV header must name at least model, quality and prompt")
        return
    for row in reader:
        yield reader.line_num, row


def _number(row: Mapping[str, Any], name: str, lo: float, hi: float) -> float | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RowError(f"{name} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowError(f"{name} must be a number") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise RowError(f"{name} must be between {lo:g} and {hi:g}")
    return number


def _boolean(value: Any) -> bool:
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "ok"):
        return True
    if text in ("0", "false", "no", "failed"):
        return False
    raise RowError("success must be true or false")


@dataclass(slots=True)
class _Parsed:
    line: int
    text: str
    model: str
    quality: float
    success: bool
    cost: Decimal | None
    latency: float | None
    external_id: str


def model_resolver() -> dict[str, str]:
    """Names an outcome may give -> catalog key (``provider/model``): keys, and model ids
    that one enabled provider serves."""
    from routing.models import CatalogModel

    names: dict[str, str] = {}
    by_id: dict[str, set[str]] = {}
    rows = CatalogModel.objects.filter(enabled=True, provider__enabled=True).values_list(
        "provider__slug", "model_id"
    )
    for slug, model_id in rows:
        key = f"{slug}/{model_id}"
        names[key] = key
        by_id.setdefault(model_id, set()).add(key)
    for model_id, keys in by_id.items():
        if len(keys) == 1 and model_id not in names:
            names[model_id] = next(iter(keys))
    return names


def _parse(line: int, row: Mapping[str, Any], models: Mapping[str, str]) -> _Parsed:
    text = row.get("prompt")
    if text in (None, ""):
        raw = row.get("messages")
        if isinstance(raw, str) and raw.strip():
            try:
                raw = json.loads(raw)
            except ValueError:
                raise RowError("messages must be a JSON array of chat messages") from None
        if raw is not None and not isinstance(raw, list):
            raise RowError("messages must be an array of chat messages")
        text = features.prompt_text(raw or [])
    if not isinstance(text, str) or not text.strip():
        raise RowError("prompt (or messages with a user turn) is required")
    name = row.get("model")
    if not isinstance(name, str) or not name:
        raise RowError("model is required")
    key = models.get(name)
    if key is None:
        raise RowError(f"model {name[:100]!r} is not a model of the catalog")
    quality = _number(row, "quality", 0, 1)
    if quality is None:
        raise RowError("quality is required (a number from 0 to 1)")
    cost = _number(row, "cost_usd", 0, float(MAX_COST_USD))
    latency = _number(row, "latency_ms", 0, MAX_LATENCY_MS)
    external = row.get("external_id")
    external = "" if external is None else str(external)
    if len(external) > MAX_EXTERNAL_ID:
        raise RowError(f"external_id is longer than {MAX_EXTERNAL_ID} characters")
    try:
        cost_dec = Decimal(str(cost)).quantize(Decimal("1e-10")) if cost is not None else None
    except InvalidOperation:
        raise RowError("cost_usd must be a number") from None
    return _Parsed(
        line, text, key, quality, _boolean(row.get("success")), cost_dec, latency, external
    )


def _store_chunk(
    job: OutcomeImport, chunk: Sequence[_Parsed], store_prompts: bool
) -> tuple[int, int]:
    """Embed and insert one chunk; returns (imported, duplicates)."""
    wanted = [p.external_id for p in chunk if p.external_id]
    seen = set(
        OutcomeMemory.objects.filter(tenant_id=job.tenant_id, external_id__in=wanted).values_list(
            "external_id", flat=True
        )
    )
    fresh: list[_Parsed] = []
    duplicates = 0
    for p in chunk:
        if p.external_id and p.external_id in seen:
            duplicates += 1
            continue
        if p.external_id:
            seen.add(p.external_id)
        fresh.append(p)
    if not fresh:
        return 0, duplicates
    vectors = features.embed([p.text for p in fresh])
    rows = [
        OutcomeMemory(
            tenant_id=job.tenant_id,
            prompt_hash=features.prompt_hash(p.text),
            embedder=features.EMBEDDER,
            embedding=vector,
            lexical=features.lexical_buckets(p.text),
            model_key=p.model,
            quality=p.quality,
            success=p.success,
            cost_usd=p.cost,
            latency_ms=p.latency,
            source=OutcomeMemory.Source.IMPORT,
            external_id=p.external_id,
            prompt=p.text if store_prompts else "",
        )
        for p, vector in zip(fresh, vectors, strict=True)
    ]
    # ignore_conflicts: an import racing another with the same external ids stores each once.
    created = OutcomeMemory.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    return len(created), duplicates


def outcome_import_run(*, import_id: int) -> OutcomeImport | None:
    """Run a queued import (claimed with a conditional UPDATE, so a redelivered task
    does nothing), chunk by chunk, saving progress after each chunk."""
    claimed = OutcomeImport.objects.filter(pk=import_id, status=OutcomeImport.Status.QUEUED).update(
        status=OutcomeImport.Status.RUNNING, started_at=timezone.now()
    )
    if claimed != 1:
        return None
    job = OutcomeImport.objects.get(pk=import_id)
    try:
        _, store_prompts = learning_enabled(tenant_id=job.tenant_id)
        models = model_resolver()
        chunk: list[_Parsed] = []
        errors: list[dict[str, Any]] = []

        def flush() -> None:
            imported, duplicates = _store_chunk(job, chunk, store_prompts)
            job.imported += imported
            job.duplicates += duplicates
            job.processed += len(chunk)
            chunk.clear()
            job.errors = errors[:MAX_ERRORS]
            job.save(update_fields=["imported", "duplicates", "processed", "failed", "errors"])

        for line, row in _rows(job.format, job.payload):
            try:
                if isinstance(row, RowError):
                    raise row
                chunk.append(_parse(line, row, models))
            except RowError as exc:
                job.failed += 1
                job.processed += 1
                if len(errors) < MAX_ERRORS:
                    errors.append({"line": line, "error": str(exc)})
            if len(chunk) >= IMPORT_CHUNK:
                flush()
        flush()
        if job.imported:
            # Before "done": a client polling the job routes on the new memory once it reads it.
            predictor_refit(tenant_id=job.tenant_id)
        job.total = max(job.total, job.processed)
        job.status = OutcomeImport.Status.DONE
        job.message = f"{job.imported} imported, {job.duplicates} duplicates, {job.failed} failed"
    except Exception as exc:
        log.exception("outcome import %s failed", import_id)
        job.status = OutcomeImport.Status.FAILED
        job.message = f"the import stopped: {type(exc).__name__}"
    job.payload = ""
    job.finished_at = timezone.now()
    job.save()
    return job
