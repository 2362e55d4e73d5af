"""The routing engine's vocabulary: what a request, a candidate, a policy, a health
snapshot and a plan are. Shared by ``routing.engine.planner`` and ``routing.engine.strategies``
(which therefore never import each other's internals); pure data, no behaviour beyond
derived properties."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

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

TIER_RANK = {tier: rank for rank, tier in enumerate(TIERS)}

# Latency prior (ms) for candidates with no observed EWMA yet.
LATENCY_PRIOR_MS = {"eco": 600.0, "balanced": 1200.0, "premium": 2500.0}
LOCAL_LATENCY_PRIOR_MS = 800.0
# Quality for a candidate with no quality data at all: neutral rather than best or worst.
UNKNOWN_QUALITY = 0.5

# ``balanced`` without a tenant's own quality target: candidates within this fraction of the
# best predicted quality come first, cheapest first (near the best quality at a fraction
# of its cost). Chosen on ../shared/data/routing with bench/route_quality.py: at 0.8 the
# learned router kept 92-98 % of the best model's quality at 19-60 % less cost (GSM8K,
# MMLU); at 0.9 it saved 1-27 %.
BALANCED_QUALITY_TARGET: float | None = 0.8

# Only these exclusions of a named model let fallbacks take over; anything else the caller
# asked for explicitly and policy refused is reported as an error instead.
REPLACEABLE_REASONS = frozenset({"circuit_open", "unhealthy"})


def stable_hash64(text: str) -> int:
    """A 64-bit hash that is the same in every process (unlike ``hash()``, which is salted)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


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
        if self.tier not in TIER_RANK:
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
        object.__setattr__(self, "tier_rank", TIER_RANK[self.tier])
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
    # The named objective the weights came from (None: the tenant's custom weights); it
    # decides how candidates are ordered, see ``ordering``.
    objective: str | None = None
    # Relative quality target (0 < t <= 1): candidates within t of the best predicted
    # quality come first, cheapest first. None: the objective decides.
    quality_target: float | None = None

    def __post_init__(self) -> None:
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}")
        if self.quality_target is not None and not 0.0 < self.quality_target <= 1.0:
            raise ValueError("quality_target must be above 0 and at most 1")
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
    # A dry run's override (the routing API): these weights, whatever the objective or
    # the policy says.
    weights: Weights | None = None
    # A dry run's relative quality target, instead of the policy's.
    quality_target: float | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")
        if self.tier not in TIER_RANK:
            raise ValueError(f"unknown tier {self.tier!r}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown request kind {self.kind!r}")
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}")
        if self.prompt_tokens < 0:
            raise ValueError("prompt_tokens must not be negative")
        if self.quality_target is not None and not 0.0 < self.quality_target <= 1.0:
            raise ValueError("quality_target must be above 0 and at most 1")


def ordering(request: RouteRequest, policy: Policy) -> tuple[str, float | None]:
    """How eligible candidates are ordered: ``(mode, target)``.

    ``quality``: best quality first, cost breaking ties (``maximize_quality``); ``cost``:
    cheapest first, quality breaking ties (``minimize_cost``; ``min_quality`` is the floor);
    ``target``: those within ``target`` of the best quality first, cheapest first
    (``balanced``, or any objective with a quality target); ``scored``: the weighted sum
    (custom weights, ``minimize_latency``). A request's own target wins over the policy's.
    """
    if request.weights is not None:
        objective = None  # a dry run's explicit weights win over any objective
    else:
        objective = request.objective if request.objective is not None else policy.objective
    target = request.quality_target
    if target is None:
        target = policy.quality_target
    if target is not None:
        return "target", target
    if objective == "maximize_quality":
        return "quality", None
    if objective == "minimize_cost":
        return "cost", None
    if objective == "balanced" and BALANCED_QUALITY_TARGET is not None:
        return "target", BALANCED_QUALITY_TARGET
    return "scored", None


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """Point-in-time health read by the caller; keyed by endpoint (breakers, health checks)
    or by candidate key (latency, load, learned quality).

    ``down_endpoints``: health checks say down (excluded as ``unhealthy``).
    ``health_scores``: 0..1 per endpoint, multiplying its candidates' scores (absent: 1).
    ``unproven``: endpoints the health checks know but have never seen healthy; they are
    ordered after every endpoint that was, whatever their score.
    """

    open_endpoints: frozenset[str] = frozenset()
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    in_flight: Mapping[str, int] = field(default_factory=dict)
    learned_quality: Mapping[str, float] = field(default_factory=dict)
    down_endpoints: frozenset[str] = frozenset()
    health_scores: Mapping[str, float] = field(default_factory=dict)
    unproven: frozenset[str] = frozenset()


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
    health: float = 1.0  # the endpoint's health score the weighted sum was multiplied by

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
            "health": self.health,
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
        return tuple(scored_candidate(row, weights) for row in self.rows)


# An eligible candidate's numbers in ScoredCandidate field order (minus weights), with the
# in-flight count and the health score last. Plans keep these plain tuples and build ScoredCandidate objects only
# for the steps (and for ``Plan.scored`` on access): a frozen dataclass costs ~1 us to
# construct, which for 50 candidates would dominate the decision time.
Row = tuple["Candidate", float, float, float, float, float, float, float, int, float]


def scored_candidate(row: Row, weights: Weights) -> ScoredCandidate:
    c, score, quality, cost, latency, qn, cn, ln, in_flight, health = row
    return ScoredCandidate(c, score, quality, cost, latency, qn, cn, ln, weights, in_flight, health)
