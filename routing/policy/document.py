"""Routing policies as plain data: validation, merging and the YAML document format.

Pure (no ORM): the policy API, ``POST router/policy/import`` and the ``import_policies`` /
``export_policies`` commands all go through these functions, so one set of rules applies
whichever way a policy arrives. A policy *state* is a dict with every key of ``DEFAULTS``
(plus ``allow_private_base_urls``); ``weights`` is ``{"quality", "cost", "latency"}``.

The document format::

    tenants:
      startup-123:
        objective: minimize_cost
        budgets: {per_request: 0.05, per_day: 50.0}
        allowed_providers: [together, ollama]

Only keys that differ from the defaults are written (plus ``objective``), and an imported
entry *replaces* the tenant's policy: a key left out goes back to its default. The one
exception is ``budgets``: they live in billing (Budget rows, what the gateway enforces),
the document shows the tenant's enabled tenant-wide ones, and an entry changes them only
when it has a ``budgets`` key (which then lists all of them). YAML is read with
``safe_load`` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import yaml

from aura.errors import DomainError
from aura.parsers import check_tree
from routing import engine
from routing.cache.config import DEFAULTS as CACHE_DEFAULTS
from routing.cache.config import CacheConfigError, clean_cache
from routing.learning.config import DEFAULTS as LEARNING_DEFAULTS
from routing.learning.config import (
    OPTIMIZATION_DEFAULTS,
    LearningConfigError,
    clean_learning,
    clean_optimization,
)

OBJECTIVE_NAMES = (*engine.OBJECTIVES, "custom")
WEIGHT_NAMES = ("quality", "cost", "latency")
BUDGET_KEYS = ("per_request", "per_hour", "per_day", "per_week", "per_month")
# What a request naming a model may fall back to: the same model elsewhere (its other
# endpoints/providers, or the targets of a tenant alias), or any model at or above its tier.
MODEL_FALLBACKS = ("same_model", "any_model")
MAX_FALLBACK_DEPTH = 5
MAX_HEDGE_K = 4
WEIGHT_SUM_TOLERANCE = 1e-6
# max_cost_per_request is a DecimalField(max_digits=18, decimal_places=10).
MAX_COST_LIMIT = 1_000_000.0
MIN_COST_LIMIT = 1e-10
MAX_DOCUMENT_CHARS = 1_000_000
# Budget.limit_usd is a DecimalField(max_digits=14, decimal_places=6).
MAX_BUDGET_USD = 99_999_999
MAX_DOCUMENT_DEPTH = 32

DEFAULTS: Mapping[str, Any] = {
    "objective": "balanced",
    "weights": {"quality": 0.4, "cost": 0.3, "latency": 0.3},
    "allowed_providers": None,
    "denied_providers": [],
    "allowed_models": None,
    "denied_models": [],
    "local_only": False,
    "max_cost_per_request": None,
    "min_quality": None,
    "quality_target": None,
    "fallback_depth": 2,
    "model_fallback": "same_model",
    "strategy": "scored",
    "hedge_k": 2,
    "aliases": {},
    "budgets": {},
    "rate_limits": {},
    "cache": dict(CACHE_DEFAULTS),
    "learning": dict(LEARNING_DEFAULTS),
    "optimization": dict(OPTIMIZATION_DEFAULTS),
}
# Blocks a partial update changes key by key (a PUT starts from their defaults).
NESTED_BLOCKS: Mapping[str, Mapping[str, Any]] = {
    "cache": CACHE_DEFAULTS,
    "learning": LEARNING_DEFAULTS,
    "optimization": OPTIMIZATION_DEFAULTS,
}
EDITABLE_FIELDS = tuple(DEFAULTS)
# Key order of an exported entry: what a reader looks for first (spend) comes first.
EXPORT_ORDER = (
    "objective",
    "weights",
    "budgets",
    *(k for k in DEFAULTS if k not in ("objective", "weights", "budgets")),
)
# Settable by operators only (commands, Django admin); read-only through the tenant API.
OPERATOR_FIELDS: Mapping[str, Any] = {"allow_private_base_urls": False}
# Not part of the policy row: the tenant-wide budgets are billing's Budget rows, shown in
# the policy and changed by it only when a document or PUT names them.
KEPT_ON_REPLACE = ("budgets",)


class PolicyError(DomainError):
    code = "invalid_policy"


def _is_number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer of hundreds of digits
        return False


def _field(prefix: str, name: str) -> str:
    return f"{prefix}{name}"


def clean_weights(value: Any, *, field: str = "weights") -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{field} must be an object with quality, cost and latency.", param=field)
    unknown = [str(k) for k in value if k not in WEIGHT_NAMES]
    if unknown:
        raise PolicyError(
            f"{field}: unknown weight {unknown[0]!r}; expected quality, cost and latency.",
            param=field,
        )
    weights: dict[str, float] = {}
    for name in WEIGHT_NAMES:
        if name not in value:
            raise PolicyError(f"{field}.{name} is required.", param=f"{field}.{name}")
        w = value[name]
        if not _is_number(w) or not 0 <= w <= 1:
            raise PolicyError(
                f"{field}.{name} must be a number between 0 and 1.", param=f"{field}.{name}"
            )
        weights[name] = float(w)
    total = math.fsum(weights.values())
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise PolicyError(
            f"{field} must sum to 1; quality + cost + latency = {total:.6g}.", param=field
        )
    return weights


def _string_list(value: Any, field: str, *, nullable: bool) -> list[str] | None:
    if value is None and nullable:
        return None
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        extra = " or null" if nullable else ""
        raise PolicyError(f"{field} must be a list of non-empty strings{extra}.", param=field)
    return list(dict.fromkeys(value))  # drop duplicates, keep order


def _bounded_number(value: Any, field: str, lo: float, hi: float) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not lo <= value <= hi:
        raise PolicyError(f"{field} must be a number between {lo:g} and {hi:g}.", param=field)
    return float(value)


def _bounded_int(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise PolicyError(f"{field} must be an integer between {lo} and {hi}.", param=field)
    return value


def _aliases(value: Any, field: str) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{field} must be an object of alias -> [model, ...].", param=field)
    cleaned: dict[str, list[str]] = {}
    for name, targets in value.items():
        if not isinstance(name, str) or not name.strip():
            raise PolicyError(f"{field}: alias names must be non-empty strings.", param=field)
        if name == "auto":
            raise PolicyError(f"{field}: 'auto' is reserved and cannot be an alias.", param=field)
        where = f"{field}.{name}"
        if not isinstance(targets, list) or not targets:
            raise PolicyError(f"{where} must be a non-empty list of model names.", param=field)
        if not all(isinstance(t, str) and t for t in targets):
            raise PolicyError(f"{where} must be a non-empty list of model names.", param=field)
        cleaned[name] = list(dict.fromkeys(targets))
    return cleaned


def _budgets(value: Any, field: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise PolicyError(
            f"{field} must be an object with any of {', '.join(BUDGET_KEYS)}.", param=field
        )
    cleaned: dict[str, float] = {}
    for key, amount in value.items():
        if key not in BUDGET_KEYS:
            raise PolicyError(
                f"{field}: unknown budget {key!r}; expected any of {', '.join(BUDGET_KEYS)}.",
                param=f"{field}.{key}",
            )
        if not _is_number(amount) or not 0 <= amount <= MAX_BUDGET_USD:
            raise PolicyError(
                f"{field}.{key} must be a number of USD between 0 and {MAX_BUDGET_USD:,}.",
                param=f"{field}.{key}",
            )
        cleaned[key] = float(amount)
    return {k: cleaned[k] for k in BUDGET_KEYS if k in cleaned}


RATE_LIMIT_KEYS = ("rpm", "tpm", "key_rpm", "key_tpm")
MAX_RATE_LIMIT = 100_000_000


def _rate_limits(value: Any, field: str) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise PolicyError(
            f"{field} must be an object with any of {', '.join(RATE_LIMIT_KEYS)}.", param=field
        )
    cleaned: dict[str, int] = {}
    for key, limit in value.items():
        if key not in RATE_LIMIT_KEYS:
            raise PolicyError(
                f"{field}: unknown limit {key!r}; expected any of {', '.join(RATE_LIMIT_KEYS)}.",
                param=f"{field}.{key}",
            )
        cleaned[key] = _bounded_int(limit, f"{field}.{key}", 1, MAX_RATE_LIMIT)
    return {k: cleaned[k] for k in RATE_LIMIT_KEYS if k in cleaned}


def clean_policy(
    data: Mapping[str, Any], *, operator: bool = False, prefix: str = ""
) -> dict[str, Any]:
    """Validate the keys present in ``data``; returns them cleaned. Raises PolicyError.

    ``prefix`` is prepended to field names in errors (``tenants.acme.``). Operator-only
    keys are refused unless ``operator`` is true.
    """
    cleaned: dict[str, Any] = {}
    for key, value in data.items():
        f = _field(prefix, str(key))
        if key in OPERATOR_FIELDS:
            if not operator:
                raise PolicyError(f"{f} can only be changed by an operator.", param=f)
            if not isinstance(value, bool):
                raise PolicyError(f"{f} must be true or false.", param=f)
            cleaned[key] = value
        elif key not in DEFAULTS:
            raise PolicyError(f"Unknown policy key {key!r}.", param=f)
        elif key == "objective":
            if value not in OBJECTIVE_NAMES:
                raise PolicyError(f"{f} must be one of {', '.join(OBJECTIVE_NAMES)}.", param=f)
            cleaned[key] = value
        elif key == "weights":
            cleaned[key] = clean_weights(value, field=f)
        elif key in ("allowed_providers", "allowed_models"):
            cleaned[key] = _string_list(value, f, nullable=True)
        elif key in ("denied_providers", "denied_models"):
            cleaned[key] = _string_list(value, f, nullable=False)
        elif key == "local_only":
            if not isinstance(value, bool):
                raise PolicyError(f"{f} must be true or false.", param=f)
            cleaned[key] = value
        elif key == "max_cost_per_request":
            cap = _bounded_number(value, f, 0, MAX_COST_LIMIT)
            if cap is not None and 0 < cap < MIN_COST_LIMIT:
                # It would be stored as 0 (ten decimal places), a cap that refuses everything.
                raise PolicyError(f"{f} must be 0 or at least {MIN_COST_LIMIT:g} USD.", param=f)
            cleaned[key] = cap
        elif key == "min_quality":
            cleaned[key] = _bounded_number(value, f, 0, 1)
        elif key == "quality_target":
            target = _bounded_number(value, f, 0, 1)
            if target is not None and target <= 0:
                raise PolicyError(f"{f} must be above 0 (a fraction of the best quality).", param=f)
            cleaned[key] = target
        elif key == "fallback_depth":
            cleaned[key] = _bounded_int(value, f, 0, MAX_FALLBACK_DEPTH)
        elif key == "model_fallback":
            if value not in MODEL_FALLBACKS:
                raise PolicyError(f"{f} must be one of {', '.join(MODEL_FALLBACKS)}.", param=f)
            cleaned[key] = value
        elif key == "strategy":
            if value not in engine.STRATEGIES:
                raise PolicyError(f"{f} must be one of {', '.join(engine.STRATEGIES)}.", param=f)
            cleaned[key] = value
        elif key == "hedge_k":
            cleaned[key] = _bounded_int(value, f, 1, MAX_HEDGE_K)
        elif key == "aliases":
            cleaned[key] = _aliases(value, f)
        elif key == "budgets":
            cleaned[key] = _budgets(value, f)
        elif key == "rate_limits":
            cleaned[key] = _rate_limits(value, f)
        elif key == "cache":
            try:
                cleaned[key] = clean_cache(value, f)
            except CacheConfigError as exc:
                raise PolicyError(exc.message, param=exc.param) from None
        elif key == "learning":
            try:
                cleaned[key] = clean_learning(value, f)
            except LearningConfigError as exc:
                raise PolicyError(exc.message, param=exc.param) from None
        elif key == "optimization":
            try:
                cleaned[key] = clean_optimization(value, f)
            except LearningConfigError as exc:
                raise PolicyError(exc.message, param=exc.param) from None
    return cleaned


def default_state() -> dict[str, Any]:
    state = {k: _copy(v) for k, v in DEFAULTS.items()}
    state.update(OPERATOR_FIELDS)
    return state


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return list(value)
    return value


def merge_policy(
    current: Mapping[str, Any],
    changes: Mapping[str, Any],
    *,
    replace: bool,
    operator: bool = False,
    prefix: str = "",
) -> dict[str, Any]:
    """The policy state after applying cleaned ``changes`` to ``current``.

    ``replace`` (PUT, import): keys not in ``changes`` go back to their defaults, except
    operator-only keys, which only an operator replace resets, and ``budgets``, which are
    billing's rows and change only when given. Weights given without an objective make the
    objective ``custom``; ``custom`` needs weights (given, or for a partial update the
    stored ones).
    """
    if replace:
        state = default_state()
        kept = [*KEPT_ON_REPLACE, *(() if operator else OPERATOR_FIELDS)]
        for key in kept:
            if key in current:
                state[key] = _copy(current[key])
    else:
        state = {k: _copy(v) for k, v in current.items()}
    state.update({k: _copy(v) for k, v in changes.items() if k not in NESTED_BLOCKS})
    for block, defaults in NESTED_BLOCKS.items():
        if block in changes:
            # A partial block changes only the settings it names (a PUT starts from the
            # defaults, a PATCH from the stored ones).
            state[block] = {**defaults, **state.get(block, {}), **changes[block]}
    if "weights" in changes and "objective" not in changes:
        state["objective"] = "custom"
    if replace and state["objective"] == "custom" and "weights" not in changes:
        f = _field(prefix, "weights")
        raise PolicyError(f"{f} are required when the objective is custom.", param=f)
    return state


def effective_weights(state: Mapping[str, Any]) -> dict[str, float]:
    """The weights routing uses: the objective's, or the stored ones for ``custom``."""
    if state["objective"] == "custom":
        return {k: float(state["weights"][k]) for k in WEIGHT_NAMES}
    w = engine.OBJECTIVES[state["objective"]]
    return {"quality": w.quality, "cost": w.cost, "latency": w.latency}


def weights_differ(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return any(abs(float(a[k]) - float(b[k])) > 1e-12 for k in WEIGHT_NAMES)


def weights_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    return weights_differ(effective_weights(before), effective_weights(after))


def non_default_entry(state: Mapping[str, Any], *, operator: bool = False) -> dict[str, Any]:
    """One tenant's entry for the document: objective plus every non-default key."""
    entry: dict[str, Any] = {"objective": state["objective"]}
    for key in EXPORT_ORDER[1:]:
        value = state[key]
        if key == "weights":
            if state["objective"] == "custom" or weights_differ(value, DEFAULTS["weights"]):
                entry[key] = {k: float(value[k]) for k in WEIGHT_NAMES}
        elif key == "budgets":
            if value:
                entry[key] = {k: value[k] for k in BUDGET_KEYS if k in value}
        elif value != DEFAULTS[key]:
            entry[key] = _copy(value)
    if operator:
        for key, default in OPERATOR_FIELDS.items():
            if state.get(key, default) != default:
                entry[key] = state[key]
    return entry


def dump_document(entries: Mapping[str, Mapping[str, Any]]) -> str:
    """YAML text for ``{slug: entry}``; flat lists and maps are written inline."""
    doc = {"tenants": {slug: dict(entry) for slug, entry in entries.items()}}
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, allow_unicode=True)


def parse_document(text: str, *, operator: bool = False) -> dict[str, dict[str, Any]]:
    """``{slug: cleaned changes}`` from YAML text; raises PolicyError naming the bad key."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise PolicyError(
            f"The document is larger than {MAX_DOCUMENT_CHARS} characters.", param="yaml"
        )
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise PolicyError(f"The document is not valid YAML{where}.", param="yaml") from None
    except RecursionError:  # PyYAML composes nested nodes recursively
        raise PolicyError(
            f"The document is nested deeper than {MAX_DOCUMENT_DEPTH} levels.", param="yaml"
        ) from None
    except (ValueError, OverflowError) as exc:  # e.g. the date 2024-02-30
        raise PolicyError(
            f"The document has a value YAML cannot read: {exc}.", param="yaml"
        ) from None
    try:
        # Deep (but parseable) nesting and lone surrogates ("\ud800") fail later otherwise.
        check_tree(doc, max_depth=MAX_DOCUMENT_DEPTH, what="The document")
    except DomainError as exc:
        raise PolicyError(exc.message, param=exc.param or "yaml") from None
    if not isinstance(doc, Mapping):
        raise PolicyError("The document must be a mapping with a 'tenants' key.", param="yaml")
    unknown = [str(k) for k in doc if k != "tenants"]
    if unknown:
        raise PolicyError(
            f"Unknown top-level key {unknown[0]!r}; expected only 'tenants'.", param=unknown[0]
        )
    tenants = doc.get("tenants")
    if not isinstance(tenants, Mapping) or not tenants:
        raise PolicyError("'tenants' must map each tenant slug to its policy.", param="tenants")
    parsed: dict[str, dict[str, Any]] = {}
    for slug, entry in tenants.items():
        if not isinstance(slug, str) or not slug:
            raise PolicyError(f"Tenant slug {slug!r} must be a string.", param="tenants")
        prefix = f"tenants.{slug}."
        if entry is None:
            entry = {}
        if not isinstance(entry, Mapping):
            raise PolicyError(
                f"The policy of tenant {slug!r} must be a mapping.", param=f"tenants.{slug}"
            )
        parsed[slug] = clean_policy(entry, operator=operator, prefix=prefix)
    return parsed


def own_entry(text: str, slug: str) -> dict[str, Any]:
    """The cleaned entry of tenant ``slug`` in a policy document that may hold no other
    tenant's (a tenant imports only its own policy). Raises PolicyError."""
    entries = parse_document(text)
    for other in entries:
        if other != slug:
            raise PolicyError(
                f"The document has an entry for tenant {other!r}; you may only import "
                f"the policy of your own tenant ({slug!r}).",
                param=f"tenants.{other}",
            )
    if slug not in entries:
        raise PolicyError(f"The document has no entry for tenant {slug!r}.", param="tenants")
    return entries[slug]
