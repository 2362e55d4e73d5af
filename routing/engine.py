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
   (fastest = 1) are normalised against the eligible set; see ``routing.strategies`` for
   the constants and ``LATENCY_PRIOR_MS`` for unobserved latency.
   ``score = wq*q + wc*c + wl*l``.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aura.money import usd
from routing.strategies import choose_primary, score_rows, stable_hash64

if TYPE_CHECKING:
    from routing.strategies import Row

CATEGORIES = ("code", "math", "reasoning", "extraction", "summarization", "creative", "chat")
TIERS = ("eco", "balanced", "premium")
STRATEGIES = (
    "scored",
    "weighted_round_robin",
    "least_in_flight",
    "lowest_latency",
    "power_of_two",
    "consistent_hash",
    "hedge",
)
KINDS = ("chat", "embeddings")

_TIER_RANK = {tier: rank for rank, tier in enumerate(TIERS)}

# Latency prior (ms) for candidates with no observed EWMA yet.
LATENCY_PRIOR_MS = {"eco": 600.0, "balanced": 1200.0, "premium": 2500.0}
LOCAL_LATENCY_PRIOR_MS = 800.0
# Quality for a candidate with no quality data at all: neutral rather than best or worst.
UNKNOWN_QUALITY = 0.5

# Only these exclusions of a named model let fallbacks take over; anything else the caller
# asked for explicitly and policy refused is reported as an error instead.
_REPLACEABLE_REASONS = frozenset({"circuit_open"})


@dataclass(frozen=True, slots=True)
class Weights:
    """Scoring weights for quality, cost and latency; each in [0, 1], summing to 1."""

    quality: float
    cost: float
    latency: float

    def __post_init__(self) -> None:
        for name in ("quality", "cost", "latency"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"weight {name}={value!r} must be between 0 and 1")
        total = self.quality + self.cost + self.latency
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1, got {total:.6g}")

    @classmethod
    def for_objective(cls, name: str) -> Weights:
        try:
            return OBJECTIVES[name]
        except KeyError:
            known = ", ".join(OBJECTIVES)
            raise ValueError(f"unknown objective {name!r}; expected one of: {known}") from None


# Each objective keeps some weight on every signal so that ties on the favoured signal are
# broken sensibly (a cost-minimising tenant still prefers the better of two free models).
OBJECTIVES: Mapping[str, Weights] = {
    "balanced": Weights(quality=0.4, cost=0.3, latency=0.3),
    "minimize_cost": Weights(quality=0.2, cost=0.7, latency=0.1),
    "maximize_quality": Weights(quality=0.8, cost=0.1, latency=0.1),
    "minimize_latency": Weights(quality=0.2, cost=0.1, latency=0.7),
}


@dataclass(frozen=True, slots=True)
class Candidate:
    """One routable (provider, model) pair, with its per-request-independent data.

    Derived values (quality per category, tier rank, latency prior, key hash) are computed
    once here so that ``plan`` does no per-call work for them; build candidates once per
    catalog change and reuse them.
    """

    key: str
    provider: str
    endpoint: str
    model_id: str
    aliases: tuple[str, ...]
    input_price: float
    output_price: float
    context_window: int
    max_output: int
    capabilities: frozenset[str]
    quality: Mapping[str, float]
    tier: str
    is_local: bool
    has_credentials: bool
    weight: float = 1.0
    quality_by_category: Mapping[str, float] = field(init=False, repr=False, compare=False)
    tier_rank: int = field(init=False, repr=False, compare=False)
    latency_prior_ms: float = field(init=False, repr=False, compare=False)
    key_hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tier not in _TIER_RANK:
            raise ValueError(f"candidate {self.key}: unknown tier {self.tier!r}")
        if self.input_price < 0 or self.output_price < 0:
            raise ValueError(f"candidate {self.key}: prices must not be negative")
        if self.weight < 0:
            raise ValueError(f"candidate {self.key}: weight must not be negative")
        values = list(self.quality.values())
        if any(not 0.0 <= v <= 1.0 for v in values):
            raise ValueError(f"candidate {self.key}: quality scores must be between 0 and 1")
        default = self.quality.get("chat")
        if default is None:
            default = sum(values) / len(values) if values else UNKNOWN_QUALITY
        by_category = {cat: self.quality.get(cat, default) for cat in CATEGORIES}
        prior = LOCAL_LATENCY_PRIOR_MS if self.is_local else LATENCY_PRIOR_MS[self.tier]
        object.__setattr__(self, "quality_by_category", by_category)
        object.__setattr__(self, "tier_rank", _TIER_RANK[self.tier])
        object.__setattr__(self, "latency_prior_ms", prior)
        object.__setattr__(self, "key_hash", stable_hash64(self.key))


@dataclass(frozen=True, slots=True)
class Policy:
    """A tenant's routing policy. ``aliases`` map tenant names to ordered model keys/ids.
    ``fallback_to_any``: may a named model fall back to a different model (see ``plan``)."""

    weights: Weights
    allowed_providers: frozenset[str] | None = None
    denied_providers: frozenset[str] = frozenset()
    allowed_models: frozenset[str] | None = None
    denied_models: frozenset[str] = frozenset()
    local_only: bool = False
    max_cost_per_request: float | None = None
    min_quality: float | None = None
    fallback_depth: int = 2
    strategy: str = "scored"
    hedge_k: int = 2
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fallback_to_any: bool = True

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; expected one of {STRATEGIES}")
        if self.fallback_depth < 0:
            raise ValueError("fallback_depth must not be negative")
        if self.hedge_k < 1:
            raise ValueError("hedge_k must be at least 1")
        if self.min_quality is not None and not 0.0 <= self.min_quality <= 1.0:
            raise ValueError("min_quality must be between 0 and 1")
        if self.max_cost_per_request is not None and self.max_cost_per_request < 0:
            raise ValueError("max_cost_per_request must not be negative")


@dataclass(frozen=True, slots=True)
class RouteRequest:
    model: str
    prompt_tokens: int
    max_output_tokens: int | None = None
    needs: frozenset[str] = frozenset()
    category: str = "chat"
    tier: str = "balanced"
    session_id: str | None = None
    objective: str | None = None
    max_cost: float | None = None
    kind: str = "chat"

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")
        if self.tier not in _TIER_RANK:
            raise ValueError(f"unknown tier {self.tier!r}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown request kind {self.kind!r}")
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}")
        if self.prompt_tokens < 0:
            raise ValueError("prompt_tokens must not be negative")


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """Point-in-time health read by the caller; keyed by endpoint (breakers) or key."""

    open_endpoints: frozenset[str] = frozenset()
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    in_flight: Mapping[str, int] = field(default_factory=dict)
    learned_quality: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScoredCandidate:
    """An eligible candidate with its score and the normalised sub-scores behind it.

    ``quality`` is the raw (learned or catalog) quality; ``q_norm`` is what scoring used
    after the tier nudge. ``cost_usd`` is the worst-case estimate used for budgets.
    """

    candidate: Candidate
    score: float
    quality: float
    cost_usd: float
    latency_ms: float
    q_norm: float
    c_norm: float
    l_norm: float
    weights: Weights
    in_flight: int = 0

    @property
    def parts(self) -> dict[str, float]:
        w = self.weights
        return {
            "q": self.q_norm,
            "c": self.c_norm,
            "l": self.l_norm,
            "wq": w.quality * self.q_norm,
            "wc": w.cost * self.c_norm,
            "wl": w.latency * self.l_norm,
        }


@dataclass(frozen=True, slots=True)
class Exclusion:
    key: str
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    """The routing decision. Empty ``steps`` means nothing is routable; see ``failure``.

    ``hedge`` is how many of ``steps[:hedge]`` to fire at once (1 unless the strategy is
    ``hedge``; 0 when there are no steps). ``requested`` holds the keys a named model
    resolved to, so callers can tell its exclusions (403/413) from the fallbacks'.
    ``failure`` is None, ``unknown_model``, ``requested_model_excluded`` or
    ``no_eligible_candidate``. ``scored`` (every eligible candidate, best score first) is
    built on access, so the hot path that only reads ``steps`` does not pay for it.
    """

    steps: tuple[ScoredCandidate, ...]
    excluded: tuple[Exclusion, ...]
    strategy: str
    hedge: int
    weights: Weights | None = None
    requested: tuple[str, ...] = ()
    failure: str | None = None
    rows: tuple[Row, ...] = field(default=(), repr=False)

    @property
    def primary(self) -> ScoredCandidate | None:
        return self.steps[0] if self.steps else None

    @property
    def scored(self) -> tuple[ScoredCandidate, ...]:
        weights = self.weights or OBJECTIVES["balanced"]
        return tuple(_scored(row, weights) for row in self.rows)


def _scored(row: Row, weights: Weights) -> ScoredCandidate:
    c, score, quality, cost, latency, qn, cn, ln, in_flight = row
    return ScoredCandidate(c, score, quality, cost, latency, qn, cn, ln, weights, in_flight)


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
    if reason == "circuit_open":
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
                replaceable = replaceable and reason in _REPLACEABLE_REASONS
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

    chosen = choose_primary(preferred, policy, request, rng, counter)
    hedge_k = policy.hedge_k if strategy == "hedge" else 1
    length = hedge_k + policy.fallback_depth
    ordered = [preferred[chosen]]
    for i, row in enumerate(preferred):
        if len(ordered) >= length:
            break
        if i != chosen:
            ordered.append(row)
    ordered.extend(rest[: max(0, length - len(ordered))])
    steps = tuple(_scored(row, weights) for row in ordered)
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
