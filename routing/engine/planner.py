"""The pure routing engine: request + candidates + policy + health snapshot -> plan.

No ORM, no HTTP, no clock and no global randomness: everything the decision depends on is
an argument, so every rule is a fast unit test and the decision is reproducible from its
inputs (the dry-run API relies on that).

How a decision is made (``plan``):

1. **Resolve the name.** ``auto`` considers every candidate. Anything else is looked up as
   a tenant alias (``Policy.aliases``, which wins over catalog names), then a candidate key,
   a ``model_id`` (possibly served by several providers), then a catalog alias. Unknown names
   fail with ``failure="unknown_model"`` (HTTP 404 for the caller).
2. **Filter.** Every policy and request constraint applies to every candidate, named ones
   included; each excluded candidate gets one ``Exclusion`` with the first failing rule.
   A named model that is ruled out by policy or by the request itself is an error, not a
   silent substitution; only a named model whose circuit is open is replaced by fallbacks.
3. **Score** the eligible set. Quality is the learned per-prompt prediction when present,
   else the catalog quality for the category. Cost (log-scaled, cheapest = 1) and latency
   (fastest = 1) are normalised against the eligible set; see ``routing.engine.strategies`` for
   the constants and ``LATENCY_PRIOR_MS`` for unobserved latency.
   ``score = (wq*q + wc*c + wl*l) * h``, ``h`` the endpoint's health score (1 if unknown).
   Endpoints down by the health checks are excluded as ``unhealthy`` (replaceable, like an
   open circuit); endpoints known to the checks but never seen healthy are ordered after
   all that were.
4. **Order.** The strategy picks the primary; the remaining steps follow in preference
   order (score for ``auto``; alias order, then score, for named models; then the
   fallbacks by score), truncated to ``1 + fallback_depth`` (``hedge_k + fallback_depth``
   for the hedge strategy, whose first ``hedge_k`` steps fire together). A named model's
   fallbacks are, with ``Policy.fallback_to_any``, every other eligible model of its tier
   or above; without it (the tenant policy's ``model_fallback: same_model``), only other
   candidates serving the same model id (another endpoint or provider), so a named model
   is never silently swapped for a different one.

Complexity-tier nudges (documented choice): on a ``premium`` request, eco-tier models'
quality is multiplied by ``ECO_PENALTY_ON_PREMIUM`` (0.7) because easy-task models fail hard
prompts more often than their average quality suggests. On an ``eco`` request, premium
models' quality is capped at the best non-premium quality in the eligible set: an easy
prompt gains nothing from a premium model, so it can only win on cost or latency.
Nudges affect scores only; ``min_quality`` is checked on the un-nudged quality.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from aura.money import usd
from routing.engine.strategies import choose_primary, score_rows
from routing.engine.types import (
    OBJECTIVES,
    REPLACEABLE_REASONS,
    Candidate,
    Exclusion,
    HealthSnapshot,
    Plan,
    Policy,
    RouteRequest,
    Row,
    ordering,
    scored_candidate,
)


def estimate_cost(c: Candidate, prompt_tokens: int, max_output_tokens: int | None) -> float:
    """Worst-case USD: prompt at the input price plus the output cap at the output price.

    The output cap is ``max_output_tokens`` when given (0 is honoured, e.g. embeddings),
    else the model's own ``max_output``.
    """
    out = c.max_output if max_output_tokens is None else max_output_tokens
    return (prompt_tokens * c.input_price + out * c.output_price) / 1_000_000


def exclusion_status(reason: str) -> int:
    """Suggested HTTP status when the named model (or every candidate) fails for ``reason``."""
    if reason == "unknown_model":
        return 404
    if reason in ("context_window", "max_output_tokens"):
        return 413
    if reason in ("circuit_open", "unhealthy"):
        return 503
    if reason in ("wrong_kind",) or reason.startswith("missing_capability:"):
        return 400
    if reason == "over_max_cost":
        return 402
    return 403


def _resolve(name: str, candidates: Sequence[Candidate], policy: Policy) -> dict[str, int] | None:
    """Candidate key -> preference rank for a named model; None when the name is unknown."""
    targets = policy.aliases.get(name)
    if targets is None:
        targets = (name,)
    ranks: dict[str, int] = {}
    for rank, target in enumerate(targets):
        for c in candidates:
            # "provider/model" also names each of its endpoints' keys ("provider/model@ep").
            named = c.key == target or c.model_id == target or c.key.partition("@")[0] == target
            if named and c.key not in ranks:
                ranks[c.key] = rank
    if not ranks and len(targets) == 1:
        for c in candidates:
            if name in c.aliases:
                ranks[c.key] = 0
    return ranks or None


def resolve_model(
    name: str, candidates: Sequence[Candidate], policy: Policy
) -> tuple[list[Candidate], str | None]:
    """Candidates a requested model name refers to, before any filtering.

    Returns ``(candidates, None)`` for a known name (``auto`` -> all, in input order; an
    alias -> its targets in alias order) and ``([], "unknown_model")`` otherwise. A known
    name whose candidates are then all excluded is the caller's 403/413, not a 404.
    """
    if name == "auto":
        return list(candidates), None
    ranks = _resolve(name, candidates, policy)
    if ranks is None:
        return [], "unknown_model"
    found = [c for c in candidates if c.key in ranks]
    found.sort(key=lambda c: ranks[c.key])
    return found, None


class _Rules:
    """The request-specific filter, built once per plan() call."""

    __slots__ = (
        "category",
        "cost_cap",
        "down_endpoints",
        "embeddings",
        "kind_cap",
        "learned",
        "max_out",
        "min_quality",
        "needs",
        "open_endpoints",
        "policy",
        "prompt_tokens",
        "window_needed",
    )

    def __init__(self, request: RouteRequest, policy: Policy, health: HealthSnapshot) -> None:
        self.policy = policy
        self.embeddings = request.kind == "embeddings"
        self.kind_cap = "embeddings" if self.embeddings else "chat"
        self.needs = sorted(request.needs)
        self.prompt_tokens = request.prompt_tokens
        self.max_out = 0 if self.embeddings else request.max_output_tokens
        self.window_needed = request.prompt_tokens + (self.max_out or 0)
        self.open_endpoints = health.open_endpoints
        self.down_endpoints = health.down_endpoints
        self.learned = health.learned_quality
        self.min_quality = policy.min_quality
        self.category = request.category
        caps = [x for x in (policy.max_cost_per_request, request.max_cost) if x is not None]
        self.cost_cap = min(caps) if caps else None

    def check(self, c: Candidate) -> tuple[str | None, float, float]:
        """(exclusion reason or None, raw quality, worst-case cost)."""
        p = self.policy
        if self.kind_cap not in c.capabilities:
            return "wrong_kind", 0.0, 0.0
        if c.provider in p.denied_providers:
            return "provider_denied", 0.0, 0.0
        if p.allowed_providers is not None and c.provider not in p.allowed_providers:
            return "provider_not_allowed", 0.0, 0.0
        if c.key in p.denied_models or c.model_id in p.denied_models:
            return "model_denied", 0.0, 0.0
        allowed = p.allowed_models
        if allowed is not None and c.key not in allowed and c.model_id not in allowed:
            return "model_not_allowed", 0.0, 0.0
        if p.local_only and not c.is_local:
            return "not_local", 0.0, 0.0
        if not c.has_credentials:
            return "no_credentials", 0.0, 0.0
        for need in self.needs:
            if need not in c.capabilities:
                return "missing_capability:" + need, 0.0, 0.0
        if self.window_needed > c.context_window:
            return "context_window", 0.0, 0.0
        if self.max_out is not None and self.max_out > c.max_output:
            return "max_output_tokens", 0.0, 0.0
        if c.endpoint in self.open_endpoints:
            return "circuit_open", 0.0, 0.0
        if c.endpoint in self.down_endpoints:
            return "unhealthy", 0.0, 0.0
        cost = estimate_cost(c, self.prompt_tokens, self.max_out)
        if self.cost_cap is not None and cost > self.cost_cap:
            return "over_max_cost", 0.0, cost
        quality = self.learned.get(c.key)
        if quality is None:
            quality = c.quality_by_category[self.category]
        if self.min_quality is not None and quality < self.min_quality:
            return "below_min_quality", quality, cost
        return None, quality, cost

    def detail(self, c: Candidate, reason: str, quality: float, cost: float) -> str:
        if reason == "context_window":
            return f"needs {self.window_needed} tokens, window is {c.context_window}"
        if reason == "max_output_tokens":
            return f"asks for {self.max_out} output tokens, model allows {c.max_output}"
        if reason == "over_max_cost":
            return f"worst case {usd(cost)} exceeds cap {usd(self.cost_cap)}"
        if reason == "below_min_quality":
            return f"quality {quality:.3f} for {self.category} below {self.min_quality:.3f}"
        if reason.startswith("missing_capability:"):
            return f"model lacks {reason.partition(':')[2]!r}"
        if reason == "circuit_open":
            return f"circuit open for endpoint {c.endpoint}"
        if reason == "unhealthy":
            return f"endpoint {c.endpoint} is down (health checks)"
        if reason == "wrong_kind":
            return f"model does not serve {self.kind_cap} requests"
        if reason in ("provider_denied", "provider_not_allowed", "not_local"):
            return f"provider {c.provider} ruled out by policy"
        if reason in ("model_denied", "model_not_allowed"):
            return f"model {c.key} ruled out by policy"
        if reason == "no_credentials":
            return f"no credentials configured for {c.provider}"
        return reason


def _by_score(row: Row) -> tuple[float, str]:
    return (-row[1], row[0].key)


def _order(rows: list[Row], mode: str, target: float | None, unproven: frozenset[str]) -> None:
    """Sort rows for the quality / cost / target orderings (see ``types.ordering``).

    Quality is the scored (tier-nudged) quality, cost the normalised cost score (1 =
    cheapest), both multiplied by the endpoint's health score, so a degraded endpoint
    still loses ground. Never-healthy endpoints go last, as in the scored ordering.
    """
    if mode == "quality":

        def key(r: Row) -> tuple[object, ...]:
            return (r[0].endpoint in unproven, -r[5] * r[9], -r[6], -r[1], r[0].key)
    elif mode == "cost":

        def key(r: Row) -> tuple[object, ...]:
            return (r[0].endpoint in unproven, -r[6] * r[9], -r[5], -r[1], r[0].key)
    else:
        bar = (target or 1.0) * max(r[5] * r[9] for r in rows) - 1e-12

        def key(r: Row) -> tuple[object, ...]:
            q = r[5] * r[9]
            if q >= bar:
                return (r[0].endpoint in unproven, False, -r[6] * r[9], -r[1], r[0].key)
            return (r[0].endpoint in unproven, True, -r[1], 0.0, r[0].key)

    rows.sort(key=key)


def plan(
    request: RouteRequest,
    candidates: Sequence[Candidate],
    policy: Policy,
    health: HealthSnapshot,
    *,
    rng: random.Random,
    counter: int = 0,
) -> Plan:
    """Decide where ``request`` goes: filter, score, order. See the module docstring.

    ``rng`` is used only by ``power_of_two``; ``counter`` (a per-tenant or per-alias request
    counter kept by the caller) only by ``weighted_round_robin``.
    """
    weights = request.weights
    if weights is None:
        weights = policy.weights if request.objective is None else OBJECTIVES[request.objective]
    strategy = policy.strategy
    ranks: dict[str, int] | None = None
    if request.model != "auto":
        ranks = _resolve(request.model, candidates, policy)
        if ranks is None:
            miss = Exclusion(request.model, "unknown_model", f"no model named {request.model!r}")
            return Plan((), (miss,), strategy, 0, weights, failure="unknown_model")

    rules = _Rules(request, policy, health)
    check = rules.check
    excluded: list[Exclusion] = []
    elig: list[tuple[Candidate, float, float]] = []
    requested: tuple[str, ...] = ()

    if ranks is None:
        pool: Sequence[Candidate] = candidates
    else:
        targets = sorted((c for c in candidates if c.key in ranks), key=lambda c: ranks[c.key])
        requested = tuple(c.key for c in targets)
        replaceable = True
        for c in targets:
            reason, q, cost = check(c)
            if reason is None:
                elig.append((c, q, cost))
            else:
                excluded.append(Exclusion(c.key, reason, rules.detail(c, reason, q, cost)))
                replaceable = replaceable and reason in REPLACEABLE_REASONS
        if not elig and not replaceable:
            return Plan(
                (), tuple(excluded), strategy, 0, weights, requested, "requested_model_excluded"
            )
        pool = []
        if policy.fallback_to_any:
            # Fallbacks for a named model never downgrade below the tier the caller picked.
            min_rank = targets[0].tier_rank
            for c in candidates:
                if c.key in ranks:
                    continue
                if c.tier_rank >= min_rank:
                    pool.append(c)
                else:
                    detail = f"{c.tier} is below the requested {targets[0].tier}"
                    excluded.append(Exclusion(c.key, "below_requested_tier", detail))
        else:
            # The same model elsewhere only: other endpoints or providers serving it.
            same = {c.model_id for c in targets}
            pool = [c for c in candidates if c.key not in ranks and c.model_id in same]

    for c in pool:
        reason, q, cost = check(c)
        if reason is None:
            elig.append((c, q, cost))
        else:
            excluded.append(Exclusion(c.key, reason, rules.detail(c, reason, q, cost)))

    if not elig:
        failure = "no_eligible_candidate" if ranks is None else "requested_model_excluded"
        return Plan((), tuple(excluded), strategy, 0, weights, requested, failure)

    rows = score_rows(elig, request, health, weights)
    unproven = health.unproven
    mode, target = ordering(request, policy)
    if mode != "scored":
        _order(rows, mode, target, unproven)
    elif unproven:
        # Endpoints never seen healthy go after every one that was, by score within: a
        # dead endpoint the checks have not yet called down must not win on its catalog
        # numbers alone. (One sort, not a second pass: this runs on every request.)
        rows.sort(key=lambda r: (r[0].endpoint in unproven, -r[1], r[0].key))
    else:
        rows.sort(key=_by_score)
    if ranks is None:
        preferred = rows
        rest: list[Row] = []
    else:
        preferred = [r for r in rows if r[0].key in ranks]
        preferred.sort(key=lambda r: ranks[r[0].key])  # stable: by score within a rank
        rest = [r for r in rows if r[0].key not in ranks]
        if not preferred:
            # The named model's circuit is open: the fallbacks take over in score order.
            preferred, rest = rest, []

    proven = preferred
    if unproven:
        if ranks is not None and any(r[0].endpoint in unproven for r in preferred):
            # A named model's candidates come in alias order: proven ones first here too.
            preferred = [r for r in preferred if r[0].endpoint not in unproven] + [
                r for r in preferred if r[0].endpoint in unproven
            ]
        if strategy not in ("scored", "hedge"):
            # Strategies that spread load (round robin, least in flight, ...) choose among
            # proven endpoints when there are any (a prefix of ``preferred`` now):
            # spreading onto an endpoint never seen up is a gamble.
            proven = [r for r in preferred if r[0].endpoint not in unproven] or preferred
    chosen = choose_primary(proven, policy, request, rng, counter)
    hedge_k = policy.hedge_k if strategy == "hedge" else 1
    length = hedge_k + policy.fallback_depth
    ordered = [preferred[chosen]]
    for i, row in enumerate(preferred):
        if len(ordered) >= length:
            break
        if i != chosen:
            ordered.append(row)
    ordered.extend(rest[: max(0, length - len(ordered))])
    steps = tuple(scored_candidate(row, weights) for row in ordered)
    return Plan(
        steps,
        tuple(excluded),
        strategy,
        min(hedge_k, len(steps)),
        weights,
        requested,
        None,
        tuple(rows),
    )
