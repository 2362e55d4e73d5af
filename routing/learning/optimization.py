"""The weight optimizer's runs: gather a tenant's recent outcomes, choose weights
(routing.learning.optimize), keep a WeightOptimization row, apply and revert through the
policy (so every change is also a policy version and a WeightHistory row).

Held-out protocol of the ``outcome`` method: the cases are the window's prompts that two
or more models answered (at most ``MAX_CASES``, a seeded sample), split in two by prompt
hash. Each half's predictions come from a predictor fitted on the memory (its latest
``TRAIN_MAX_ROWS`` rows) *without* that half (cross-fitting); weights are chosen on one
half and judged against the current policy on the other, and only a win there is proposed.
"""

from __future__ import annotations

import hashlib
import logging
import random
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count
from django.utils import timezone

from aura.errors import Conflict
from routing import engine
from routing.learning import features, optimize, predict
from routing.learning.config import OptimizationSettings
from routing.learning.models import OutcomeMemory, WeightOptimization
from routing.models import RoutingOutcome, RoutingPolicy
from routing.policy import document
from tenants.models import Tenant

log = logging.getLogger(__name__)

MAX_CASES = 1000
MIN_CASES = 40  # held-out prompts (both halves together) before the outcome method decides
TRAIN_MAX_ROWS = 50_000
MIN_MODEL_OUTCOMES = 10  # per model, for the variance method's figures


@dataclass(frozen=True, slots=True)
class Run:
    """A run's result before it is stored (a dry run returns it as is)."""

    method: str
    goal: str
    status: str
    message: str
    window_start: datetime
    window_end: datetime
    objective_before: str
    weights_before: dict[str, float]
    policy_version_before: int
    weights_after: dict[str, float] | None
    figures: dict[str, Any]
    evidence: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "goal": self.goal,
            "status": self.status,
            "message": self.message,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "objective_before": self.objective_before,
            "weights_before": self.weights_before,
            "weights_after": self.weights_after,
            "policy_version_before": self.policy_version_before,
            "figures": self.figures,
            "evidence": self.evidence,
        }


def _username(user: Any) -> str | None:
    return user.username if user is not None else None


def optimization_body(row: WeightOptimization) -> dict[str, Any]:
    return {
        "id": row.pk,
        "trigger": row.trigger,
        "method": row.method,
        "goal": row.goal,
        "status": row.status,
        "message": row.message,
        "scheduled_for": row.scheduled_for,
        "window_start": row.window_start,
        "window_end": row.window_end,
        "objective_before": row.objective_before,
        "weights_before": row.weights_before,
        "weights_after": row.weights_after,
        "policy_version_before": row.policy_version_before,
        "policy_version_after": row.policy_version_after,
        "figures": row.figures,
        "evidence": row.evidence,
        "created_at": row.created_at,
        "created_by": _username(row.created_by),
        "applied_at": row.applied_at,
        "applied_by": _username(row.applied_by),
        "reverted_at": row.reverted_at,
        "reverted_by": _username(row.reverted_by),
    }


# --------------------------------------------------------------------------- data


def _cases(
    tenant_id: int, since: datetime, until: datetime
) -> tuple[list[str], dict[str, dict[str, list[tuple[float, float | None, float | None]]]]]:
    """The window's prompts answered by two or more models: hashes (seeded sample) and
    per model the outcomes observed."""
    rows = OutcomeMemory.objects.filter(
        tenant_id=tenant_id, created_at__gte=since, created_at__lt=until
    ).values_list("prompt_hash", "model_key", "quality", "cost_usd", "latency_ms")
    by_prompt: dict[str, dict[str, list[tuple[float, float | None, float | None]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for h, model, q, cost, latency in rows.iterator(chunk_size=5000):
        by_prompt[h][model].append((q, float(cost) if cost is not None else None, latency))
    hashes = sorted(h for h, models in by_prompt.items() if len(models) >= 2)
    if len(hashes) > MAX_CASES:
        hashes = sorted(random.Random(tenant_id).sample(hashes, MAX_CASES))
    return hashes, {h: by_prompt[h] for h in hashes}


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _cross_fitted(
    tenant_id: int, folds: Sequence[Sequence[str]]
) -> tuple[dict[str, dict[str, float]], list[int]]:
    """Each fold's prompts' predicted quality per model, from a predictor fitted on the
    memory (its latest ``TRAIN_MAX_ROWS`` rows) without that fold; and each fit's size."""
    rows = list(
        OutcomeMemory.objects.filter(tenant_id=tenant_id)
        .order_by("-id")
        .values_list("prompt_hash", "model_key", "quality", "embedding", "lexical")[:TRAIN_MAX_ROWS]
    )
    wanted = {h for fold in folds for h in fold}
    held: dict[str, tuple[Any, Any]] = {}
    for r in rows:
        if r[0] in wanted and r[0] not in held:
            held[r[0]] = (r[3], r[4])
    missing = wanted - set(held)
    if missing:  # older than the rows read: one row of each
        for h, emb, lex in (
            OutcomeMemory.objects.filter(tenant_id=tenant_id, prompt_hash__in=missing)
            .order_by("prompt_hash", "id")
            .distinct("prompt_hash")
            .values_list("prompt_hash", "embedding", "lexical")
        ):
            held[h] = (emb, lex)
    predicted: dict[str, dict[str, float]] = {}
    sizes: list[int] = []
    for fold in folds:
        excluded = set(fold)
        train = [r for r in rows if r[0] not in excluded]
        if not train or not fold:
            sizes.append(0)
            continue
        first, qsum, count, models = predict.group_points(
            [r[1] for r in train], [r[2] for r in train], [r[0] for r in train]
        )
        dense = np.asarray([train[i][3] for i in first], np.float32)
        lexical = features.lexical_matrix([train[i][4] for i in first])
        predictor = predict.fit(
            dense, features.ridge_features(dense, lexical), qsum, count, models, seed=tenant_id
        )
        sizes.append(predictor.size)
        names = [h for h in fold if h in held]
        vecs = np.asarray([held[h][0] for h in names], np.float32)
        ridge_x = features.ridge_features(
            vecs, features.lexical_matrix([held[h][1] for h in names])
        )
        for i, h in enumerate(names):
            preds = predictor.predict(vecs[i], ridge_x[i])
            predicted[h] = {m: p.quality for m, p in preds.items()}
    return predicted, sizes


def _split(hashes: Sequence[str]) -> tuple[list[str], list[str]]:
    select: list[str] = []
    test: list[str] = []
    for h in hashes:
        (select if int(hashlib.sha256(h.encode()).hexdigest()[:8], 16) % 2 == 0 else test).append(h)
    return select, test


def _model_stats(
    tenant_id: int, since: datetime, until: datetime
) -> dict[str, optimize.ModelStats]:
    """Per model over the window: mean quality (outcome memory and recorded outcomes), and
    mean cost and latency (the gateway's usage records, else the outcomes')."""
    from billing.models import UsageRecord

    quality: dict[str, list[float]] = defaultdict(list)
    cost: dict[str, list[float]] = defaultdict(list)
    latency: dict[str, list[float]] = defaultdict(list)
    memory = OutcomeMemory.objects.filter(
        tenant_id=tenant_id, created_at__gte=since, created_at__lt=until
    ).values_list("model_key", "quality", "cost_usd", "latency_ms")
    for model, q, c, lat in memory.iterator(chunk_size=5000):
        quality[model].append(q)
        if c is not None:
            cost[model].append(float(c))
        if lat is not None:
            latency[model].append(lat)
    recorded = (
        RoutingOutcome.objects.filter(
            tenant_id=tenant_id, created_at__gte=since, created_at__lt=until
        )
        .exclude(source="feedback")  # feedback rows are in the memory already when learnable
        .values_list("model_key", "quality_score", "cost_usd", "latency_ms", "success")
    )
    for model, score, c, lat, ok in recorded.iterator(chunk_size=5000):
        if score is not None:
            quality[model].append(score)
        elif not ok:
            quality[model].append(0.0)
        cost[model].append(float(c))
        latency[model].append(lat)
    usage = (
        UsageRecord.objects.filter(
            tenant_id=tenant_id,
            created_at__gte=since,
            created_at__lt=until,
            kind="chat",
            status="ok",
            cache_status="miss",
        )
        .values("provider", "model")
        .annotate(n=Count("id"), cost=Avg("cost_usd"), latency=Avg("latency_ms"))
    )
    served = {f"{u['provider']}/{u['model']}": u for u in usage}
    out: dict[str, optimize.ModelStats] = {}
    for model in set(quality) | set(served):
        u = served.get(model)
        n = len(quality.get(model, ())) + (u["n"] if u else 0)
        if n < MIN_MODEL_OUTCOMES:
            continue
        out[model] = optimize.ModelStats(
            quality=_mean(quality.get(model, [])),
            cost_usd=float(u["cost"]) if u else _mean(cost.get(model, [])),
            latency_ms=float(u["latency"]) if u else _mean(latency.get(model, [])),
            outcomes=n,
        )
    return out


# --------------------------------------------------------------------------- run


def _objective_weights(policy_row: RoutingPolicy | None) -> tuple[str, dict[str, float], int]:
    """(objective, the weights routing uses, policy version) of a tenant's policy row."""
    if policy_row is None:
        state = document.default_state()
        return state["objective"], document.effective_weights(state), 0
    state = {"objective": policy_row.objective, "weights": policy_row.weights}
    return policy_row.objective, document.effective_weights(state), policy_row.version


def optimization_compute(
    *,
    tenant: Tenant,
    method: str | None = None,
    goal: str | None = None,
    window_days: int | None = None,
    now: datetime | None = None,
) -> Run:
    """Decide what the optimizer would change now; writes nothing."""
    from routing.gateway.context import build_context
    from routing.selectors import health_snapshot

    now = now or timezone.now()
    policy_row = RoutingPolicy.objects.filter(tenant=tenant).first()
    settings = OptimizationSettings.from_state(policy_row.optimization if policy_row else None)
    method = method or settings.method
    objective, weights_before, version = _objective_weights(policy_row)
    goal = goal if goal not in (None, "auto") else settings.resolved_goal(objective)
    assert goal is not None
    days = window_days or settings.window_days
    since = now - timedelta(days=days)
    ctx = build_context(tenant.pk)
    latency = dict(health_snapshot(ctx).latency_ms)
    candidates = [c for c in ctx.candidates if "chat" in c.capabilities]

    def result(status: str, message: str, after: engine.Weights | None = None, **kw: Any) -> Run:
        return Run(
            method=method,
            goal=goal,
            status=status,
            message=message,
            window_start=since,
            window_end=now,
            objective_before=objective,
            weights_before=weights_before,
            policy_version_before=version,
            weights_after=optimize.weights_dict(after) if after is not None else None,
            figures=kw.get("figures", {}),
            evidence={"window_days": days, **kw.get("evidence", {})},
        )

    hashes, observed = _cases(tenant.pk, since, now)
    select_h, test_h = _split(hashes)
    evidence: dict[str, Any] = {"held_out_prompts": len(hashes)}
    predicted: dict[str, dict[str, float]] = {}
    if hashes:
        predicted, sizes = _cross_fitted(tenant.pk, [select_h, test_h])
        evidence["training_points"] = sizes

    def case(h: str) -> optimize.Case:
        seen = {
            m: optimize.Observed(
                quality=_mean([o[0] for o in outs]) or 0.0,
                cost_usd=_mean([o[1] for o in outs]),
                latency_ms=_mean([o[2] for o in outs]),
            )
            for m, outs in observed[h].items()
        }
        return optimize.Case(predicted.get(h, {}), seen)

    select = [case(h) for h in select_h]
    test = [case(h) for h in test_h]
    evidence.update({"selection_prompts": len(select), "test_prompts": len(test)})
    min_quality = ctx.policy.min_quality

    def judged(after: engine.Weights) -> tuple[dict[str, Any], bool | None, float]:
        """Figures of before/after/best single on the test half, and whether after wins."""
        if len(test) < MIN_CASES // 2:
            return {}, None, 0.0
        single = optimize.best_single(test, candidates)
        best = single[1] if single else None
        bar = optimize.quality_bar(goal, settings.quality_target, best, min_quality)
        f_before = optimize.replay(test, candidates, ctx.policy, latency_ms=latency)
        trial = replace_weights(ctx.policy, after)
        f_after = optimize.replay(test, candidates, trial, latency_ms=latency)
        figures = {"before": f_before.as_dict(), "after": f_after.as_dict(), "quality_bar": bar}
        if single:
            figures["best_single"] = {"model": single[0], **single[1].as_dict()}
        return figures, optimize.better(f_after, f_before, goal, bar), bar

    if method == "variance":
        stats = _model_stats(tenant.pk, since, now)
        proposal = optimize.variance_weights(stats, candidates, replace_weights(ctx.policy, None))
        if proposal is None:
            return result(
                WeightOptimization.Status.INSUFFICIENT,
                f"the variance method needs figures for two or more models (at least "
                f"{MIN_MODEL_OUTCOMES} outcomes or served requests each in the last {days} days)",
                evidence={**evidence, "models": {m: s.outcomes for m, s in stats.items()}},
            )
        after, var_evidence = proposal
        evidence.update(var_evidence)
        figures, wins, _ = judged(after)
        if after == engine.Weights(**weights_before) and objective == "custom":
            return result(
                WeightOptimization.Status.UNCHANGED,
                "the variance re-weighting gives the current weights",
                figures=figures,
                evidence=evidence,
            )
        if wins is False:
            return result(
                WeightOptimization.Status.UNCHANGED,
                f"the variance re-weighting {_fmt(after)} does not beat the current policy on "
                f"held-out outcomes ({goal})",
                figures=figures,
                evidence={**evidence, "best_found": optimize.weights_dict(after)},
            )
        how = "not judged: too few held-out prompts" if wins is None else f"better for {goal}"
        return result(
            WeightOptimization.Status.PROPOSED,
            f"variance re-weighting proposes {_fmt(after)} ({how})",
            after,
            figures=figures,
            evidence=evidence,
        )

    if len(select) < MIN_CASES // 2 or len(test) < MIN_CASES // 2:
        return result(
            WeightOptimization.Status.INSUFFICIENT,
            f"the outcome method needs at least {MIN_CASES} prompts answered by two or more "
            f"models in the last {days} days (found {len(hashes)}); import evaluations with "
            "POST /api/v1/router/outcomes/import, or use the variance method",
            evidence=evidence,
        )
    single_select = optimize.best_single(select, candidates)
    bar_select = optimize.quality_bar(
        goal, settings.quality_target, single_select[1] if single_select else None, min_quality
    )
    choice = optimize.choose_weights(
        select,
        candidates,
        replace_weights(ctx.policy, None),
        goal=goal,
        bar=bar_select,
        latency_ms=latency,
    )
    if choice is None:
        return result(
            WeightOptimization.Status.INSUFFICIENT,
            "no held-out prompt could be routed under the current policy",
            evidence=evidence,
        )
    evidence["weights_tried"] = choice.tried
    evidence["inert_signals"] = list(choice.inert)
    evidence["selection_best"] = [
        {"weights": optimize.weights_dict(w), **f.as_dict()} for w, f in choice.ranked
    ]
    figures, wins, _ = judged(choice.weights)
    if not wins:
        return result(
            WeightOptimization.Status.UNCHANGED,
            f"no weights beat the current policy for {goal} on held-out outcomes "
            f"(best found: {_fmt(choice.weights)})",
            figures=figures,
            evidence={**evidence, "best_found": optimize.weights_dict(choice.weights)},
        )
    return result(
        WeightOptimization.Status.PROPOSED,
        f"{_fmt(choice.weights)} beats the current policy for {goal} on held-out outcomes",
        choice.weights,
        figures=figures,
        evidence=evidence,
    )


def replace_weights(policy: engine.Policy, weights: engine.Weights | None) -> engine.Policy:
    """The policy routing with custom ``weights`` (its other rules kept); None: the same
    weights, as custom (no objective ordering)."""
    return replace(policy, weights=weights or policy.weights, objective=None)


def _fmt(w: engine.Weights) -> str:
    return f"quality {w.quality:g} / cost {w.cost:g} / latency {w.latency:g}"


def _user_id(user: Any) -> int | None:
    from django.contrib.auth import get_user_model

    return user.pk if isinstance(user, get_user_model()) else None


def optimization_run(
    *,
    tenant: Tenant,
    trigger: str,
    apply: bool,
    method: str | None = None,
    goal: str | None = None,
    window_days: int | None = None,
    user: Any = None,
    scheduled_for: date | None = None,
    now: datetime | None = None,
) -> WeightOptimization:
    """Compute, store the row, and apply it when ``apply`` and it found something better."""
    run = optimization_compute(
        tenant=tenant, method=method, goal=goal, window_days=window_days, now=now
    )
    row = WeightOptimization.objects.create(
        tenant=tenant,
        trigger=trigger,
        scheduled_for=scheduled_for,
        created_by_id=_user_id(user),
        **{k: v for k, v in run.as_dict().items()},
    )
    if apply and row.status == WeightOptimization.Status.PROPOSED:
        row = optimization_apply(run=row, user=user)
    return row


def _current(tenant: Tenant) -> tuple[str, dict[str, float], int]:
    return _objective_weights(RoutingPolicy.objects.filter(tenant=tenant).first())


def optimization_apply(*, run: WeightOptimization, user: Any = None) -> WeightOptimization:
    """Make a proposal the policy's weights (objective ``custom``). Refused when the
    weights changed since it was computed: it was judged against the old ones."""
    from routing.policy.services import policy_update

    if run.status != WeightOptimization.Status.PROPOSED or run.weights_after is None:
        raise Conflict(f"optimization {run.pk} is {run.status}; only a proposal can be applied.")
    with transaction.atomic():
        locked = WeightOptimization.objects.select_for_update().get(pk=run.pk)
        if locked.status != WeightOptimization.Status.PROPOSED:
            raise Conflict(f"optimization {run.pk} is {locked.status} already.")
        objective, weights, _ = _current(run.tenant)
        if objective != run.objective_before or document.weights_differ(
            weights, run.weights_before
        ):
            raise Conflict(
                f"the weights changed since optimization {run.pk} was computed "
                f"({objective} {weights}); run the optimizer again."
            )
        changes: dict[str, Any] = {"objective": "custom", "weights": dict(run.weights_after)}
        stored = RoutingPolicy.objects.filter(tenant=run.tenant).values_list(
            "optimization", flat=True
        )
        block = stored.first() or {}
        if block.get("goal", "auto") == "auto":
            # The objective becomes custom: the goal it served stays written down.
            changes["optimization"] = {"goal": run.goal}
        policy = policy_update(
            tenant=run.tenant,
            changes=changes,
            user=user if _user_id(user) is not None else None,
            source="optimizer",
            note=f"optimization #{run.pk} ({run.method}, {run.goal})",
        )
        locked.status = WeightOptimization.Status.APPLIED
        locked.applied_at = timezone.now()
        locked.applied_by_id = _user_id(user)
        locked.policy_version_after = policy.version
        locked.save(update_fields=["status", "applied_at", "applied_by", "policy_version_after"])
    return locked


def optimization_revert(*, run: WeightOptimization, user: Any = None) -> WeightOptimization:
    """Put back the objective and weights from before an applied run, if they are still the
    ones it set (a later change of the weights is not silently undone)."""
    from routing.policy.services import policy_update

    with transaction.atomic():
        locked = WeightOptimization.objects.select_for_update().get(pk=run.pk)
        if locked.status != WeightOptimization.Status.APPLIED:
            raise Conflict(
                f"optimization {run.pk} is {locked.status}; only an applied one reverts."
            )
        objective, weights, _ = _current(run.tenant)
        if (
            objective != "custom"
            or not locked.weights_after
            or document.weights_differ(weights, locked.weights_after)
        ):
            raise Conflict(
                f"the weights changed since optimization {run.pk} was applied "
                f"({objective} {weights}); edit the policy instead."
            )
        changes: dict[str, Any] = {"objective": locked.objective_before}
        if locked.objective_before == "custom":
            changes["weights"] = dict(locked.weights_before)
        policy_update(
            tenant=run.tenant,
            changes=changes,
            user=user if _user_id(user) is not None else None,
            source="optimizer",
            note=f"revert of optimization #{run.pk}",
        )
        locked.status = WeightOptimization.Status.REVERTED
        locked.reverted_at = timezone.now()
        locked.reverted_by_id = _user_id(user)
        locked.save(update_fields=["status", "reverted_at", "reverted_by"])
    return locked


# --------------------------------------------------------------------------- schedule


def last_slot(settings: OptimizationSettings, tz_name: str, now: datetime) -> date:
    """The tenant-local date of the latest scheduled moment at or before ``now``."""
    tz = zoneinfo.ZoneInfo(tz_name)
    local = now.astimezone(tz)
    day = local.date() - timedelta(days=(local.weekday() - settings.weekday) % 7)
    if local < datetime.combine(day, time(settings.hour), tzinfo=tz):
        day -= timedelta(days=7)
    return day


def optimizations_due(*, now: datetime | None = None) -> list[tuple[Tenant, date]]:
    """(tenant, slot) pairs whose weekly run is due: mode not off, the slot passed, no
    scheduled run for it yet, and outcomes or served requests in the window."""
    from billing.models import UsageRecord

    now = now or timezone.now()
    rows = RoutingPolicy.objects.filter(tenant__status=Tenant.Status.ACTIVE).select_related(
        "tenant"
    )
    due: list[tuple[Tenant, date, OptimizationSettings]] = []
    for policy in rows.order_by("tenant_id"):
        settings = OptimizationSettings.from_state(policy.optimization)
        if settings.mode == "off":
            continue
        slot = last_slot(settings, policy.tenant.timezone, now)
        if policy.tenant.created_at.date() > slot:
            continue
        due.append((policy.tenant, slot, settings))
    if not due:
        return []
    done = set(
        WeightOptimization.objects.filter(
            tenant_id__in=[t.pk for t, _, _ in due], trigger=WeightOptimization.Trigger.SCHEDULE
        )
        .filter(scheduled_for__in={s for _, s, _ in due})
        .values_list("tenant_id", "scheduled_for")
    )
    out = []
    for tenant, slot, settings in due:
        if (tenant.pk, slot) in done:
            continue
        since = now - timedelta(days=settings.window_days)
        active = (
            OutcomeMemory.objects.filter(tenant=tenant, created_at__gte=since).exists()
            or UsageRecord.objects.filter(tenant=tenant, created_at__gte=since).exists()
        )
        if active:
            out.append((tenant, slot))
    return out


def optimization_run_scheduled(
    *, tenant: Tenant, scheduled_for: date, now: datetime | None = None
) -> WeightOptimization | None:
    """The weekly run of one tenant (idempotent: a second call for the slot does nothing)."""
    if WeightOptimization.objects.filter(
        tenant=tenant, trigger=WeightOptimization.Trigger.SCHEDULE, scheduled_for=scheduled_for
    ).exists():
        return None
    policy = RoutingPolicy.objects.filter(tenant=tenant).first()
    settings = OptimizationSettings.from_state(policy.optimization if policy else None)
    if settings.mode == "off":
        return None
    try:
        with transaction.atomic():
            return optimization_run(
                tenant=tenant,
                trigger=WeightOptimization.Trigger.SCHEDULE,
                apply=settings.mode == "apply",
                scheduled_for=scheduled_for,
                now=now,
            )
    except IntegrityError:  # another worker stored this slot's run meanwhile
        return None


def optimizations_enqueue_due(*, now: datetime | None = None) -> list[tuple[int, str]]:
    from routing.learning.tasks import optimize_tenant

    queued = [(t.pk, slot.isoformat()) for t, slot in optimizations_due(now=now)]
    for tenant_id, slot in queued:
        transaction.on_commit(partial(optimize_tenant.delay, tenant_id, slot))
    return queued
