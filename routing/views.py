"""Console pages of the routing app: the routing policy editor (with YAML export/import
and the weight optimizer's runs, applied or reverted from here)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render

from aura.errors import DomainError
from routing import engine
from routing.learning.config import OPTIMIZATION_GOALS, OPTIMIZATION_MODES, WEEKDAYS
from routing.learning.models import WeightOptimization
from routing.models import CatalogModel, Provider
from routing.policy import document
from routing.policy.services import policy_get_or_create, policy_state, policy_update
from tenants.console import Console, console_object, console_page

CACHE_MODES = ("off", "exact", "semantic")


class FormError(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _number(post: Any, name: str, *, integer: bool = False) -> float | int | None:
    raw = (post.get(name) or "").strip()
    if raw == "":
        return None
    try:
        return int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise FormError(f"{name.replace('__', '.')} must be {kind}.", name) from None


def changes_from_form(post: Any) -> dict[str, Any]:
    """The editor's fields as a policy change (then document.clean_policy checks it).
    Field names follow the policy's keys; nested ones use ``__`` (``cache__mode``)."""
    changes: dict[str, Any] = {"objective": post.get("objective", "balanced")}
    if changes["objective"] == "custom":
        changes["weights"] = {
            k: _number(post, f"weights__{k}") or 0.0 for k in ("quality", "cost", "latency")
        }
    if post.get("providers_mode") == "only":
        changes["allowed_providers"] = post.getlist("allowed_providers")
    else:
        changes["allowed_providers"] = None
    changes["denied_providers"] = post.getlist("denied_providers")
    allowed_models = post.getlist("allowed_models")
    changes["allowed_models"] = allowed_models or None
    changes["denied_models"] = post.getlist("denied_models")
    changes["local_only"] = post.get("local_only") == "on"
    changes["min_quality"] = _number(post, "min_quality")
    changes["quality_target"] = _number(post, "quality_target")
    changes["max_cost_per_request"] = _number(post, "max_cost_per_request")
    changes["strategy"] = post.get("strategy", "scored")
    changes["fallback_depth"] = _number(post, "fallback_depth", integer=True)
    changes["model_fallback"] = post.get("model_fallback", "same_model")
    changes["cache"] = {
        "mode": post.get("cache__mode", "off"),
        "ttl_seconds": _number(post, "cache__ttl_seconds", integer=True),
        "similarity_threshold": _number(post, "cache__similarity_threshold"),
    }
    changes["cache"] = {k: v for k, v in changes["cache"].items() if v is not None}
    changes["learning"] = {
        "enabled": post.get("learning__enabled") == "on",
        "store_prompts": post.get("learning__store_prompts") == "on",
    }
    changes["optimization"] = {
        "mode": post.get("optimization__mode", "propose"),
        "goal": post.get("optimization__goal", "auto"),
        "day": post.get("optimization__day", "sunday"),
        "hour": _number(post, "optimization__hour", integer=True),
    }
    changes["optimization"] = {k: v for k, v in changes["optimization"].items() if v is not None}
    if changes["fallback_depth"] is None:
        del changes["fallback_depth"]
    return changes


def _field_name(param: str | None) -> str:
    """A PolicyError's field (``cache.ttl_seconds``) as the form's (``cache__ttl_seconds``)."""
    return (param or "").replace(".", "__")


def _context(console: Console, state: dict[str, Any], policy: Any) -> dict[str, Any]:
    providers = list(Provider.objects.filter(enabled=True).order_by("slug"))
    models = list(
        CatalogModel.objects.filter(enabled=True, provider__enabled=True)
        .select_related("provider")
        .order_by("provider__slug", "model_id")
    )
    runs = WeightOptimization.objects.filter(tenant=console.tenant).order_by("-created_at")[:10]
    return {
        "console": console,
        "nav": "policy",
        "state": state,
        "policy": policy,
        "weights": document.effective_weights(state),
        "objectives": [*engine.OBJECTIVES, "custom"],
        "strategies": engine.STRATEGIES,
        "model_fallbacks": document.MODEL_FALLBACKS,
        "cache_modes": CACHE_MODES,
        "optimization_modes": OPTIMIZATION_MODES,
        "optimization_goals": OPTIMIZATION_GOALS,
        "weekdays": WEEKDAYS,
        "hours": range(24),
        "providers": providers,
        "models": [m.key for m in models],
        "runs": runs,
    }


@console_page()
def policy_page(request: HttpRequest) -> HttpResponse:
    """GET/POST /policy/ — the routing policy as a form (admins save it; nothing is saved
    when any field is wrong, and the error names it)."""
    console: Console = request.console  # type: ignore[attr-defined]
    policy = policy_get_or_create(tenant=console.tenant)
    state = policy_state(policy)
    errors: dict[str, str] = {}
    status = 200
    user: Any = request.user  # signed in (console_page)
    if request.method == "POST":
        try:
            if request.POST.get("action") == "import":
                changes = document.own_entry(request.POST.get("yaml", ""), console.tenant.slug)
                policy = policy_update(
                    tenant=console.tenant,
                    changes=changes,
                    replace=True,
                    user=user,
                    source="import",
                    prefix=f"tenants.{console.tenant.slug}.",
                )
                messages.success(request, f"Policy imported (version {policy.version}).")
            else:
                changes = document.clean_policy(changes_from_form(request.POST))
                policy = policy_update(tenant=console.tenant, changes=changes, user=user)
                messages.success(request, f"Policy saved (version {policy.version}).")
            return redirect("console-policy")
        except FormError as exc:
            errors[exc.param] = exc.message
        except DomainError as exc:
            field = "yaml" if request.POST.get("action") == "import" else _field_name(exc.param)
            errors[field or "form"] = exc.message
        status = 400
        # Show what was typed, not the stored policy, next to the error.
        try:
            typed = changes_from_form(request.POST)
        except FormError:
            typed = {}
        state = {**state, **{k: v for k, v in typed.items() if k not in document.NESTED_BLOCKS}}
        for block in document.NESTED_BLOCKS:
            if block in typed:
                state[block] = {**state[block], **typed[block]}
    context = _context(console, state, policy)
    context["errors"] = errors
    context["yaml_text"] = request.POST.get("yaml", "") if request.method == "POST" else ""
    return render(request, "console/policy.html", context, status=status)


@console_page()
def optimization_action(request: HttpRequest, optimization_id: int, action: str) -> HttpResponse:
    """POST /policy/optimizations/<id>/<apply|revert>/ — the API's apply and revert."""
    from routing.learning.optimization import optimization_apply, optimization_revert

    run = console_object(request, WeightOptimization, pk=optimization_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        if action == "apply":
            optimization_apply(run=run, user=request.user)
            messages.success(request, f"Optimization #{run.pk} applied.")
        else:
            optimization_revert(run=run, user=request.user)
            messages.success(request, f"Optimization #{run.pk} reverted.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("console-policy")
