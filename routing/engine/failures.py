"""Why a plan routes nowhere, in one place for the gateway (OpenAI errors) and the routing
API (decision explanations), so both always report the same status and reason."""

from __future__ import annotations

from dataclasses import dataclass

from routing import engine

# Filter order of engine._Rules.check: when nothing is routable, the exclusion that got
# furthest through it is the one the caller can act on (a too-long prompt beats "policy
# denies the other provider"), so it decides the status reported.
_REASON_ORDER = (
    "below_requested_tier",
    "wrong_kind",
    "provider_denied",
    "provider_not_allowed",
    "model_denied",
    "model_not_allowed",
    "not_local",
    "no_credentials",
    "missing_capability",
    "context_window",
    "max_output_tokens",
    "circuit_open",
    "over_max_cost",
    "below_min_quality",
)


@dataclass(frozen=True, slots=True)
class PlanFailure:
    status: int
    code: str
    reason: str | None
    message: str
    type: str = "invalid_request_error"
    param: str | None = None


def _rank(reason: str) -> int:
    base = reason.partition(":")[0]
    return _REASON_ORDER.index(base) if base in _REASON_ORDER else -1


def _status(reason: str) -> int:
    # Missing credentials are the operator's to fix, not the caller's: unavailable.
    return 503 if reason == "no_credentials" else engine.exclusion_status(reason)


def plan_failure(plan: engine.Plan, model: str) -> PlanFailure | None:
    """The error for a plan without steps (None when it has steps)."""
    if plan.steps:
        return None
    if plan.failure == "unknown_model":
        return PlanFailure(
            404,
            "model_not_found",
            "unknown_model",
            f"The model '{model}' does not exist or is not available to you.",
            param="model",
        )
    relevant = [e for e in plan.excluded if not plan.requested or e.key in plan.requested]
    if not relevant:
        return PlanFailure(
            503,
            "no_model_available",
            None,
            "No model is configured for this request.",
            type="server_error",
        )
    nearest = max(relevant, key=lambda e: _rank(e.reason))
    status = _status(nearest.reason)
    why = f"{nearest.key}: {nearest.detail or nearest.reason}"
    if status == 413:
        return PlanFailure(
            413,
            "context_length_exceeded",
            nearest.reason,
            f"The request is too long for every allowed model ({why}).",
            param="messages",
        )
    if status == 403:
        return PlanFailure(
            403,
            "model_not_allowed",
            nearest.reason,
            f"The model '{model}' is not allowed by this tenant's policy ({why}).",
            type="permission_error",
            param="model",
        )
    if status == 400:
        return PlanFailure(
            400,
            "unsupported_request",
            nearest.reason,
            f"No allowed model supports this request ({why}).",
            param="model",
        )
    if status == 402:
        return PlanFailure(
            402,
            "max_cost_exceeded",
            nearest.reason,
            f"Every allowed model exceeds the cost cap ({why}).",
        )
    return PlanFailure(
        503,
        "no_model_available",
        nearest.reason,
        f"No model is available right now ({why}).",
        type="server_error",
    )


# What a tenant is told about a failed call to a platform endpoint: the kind of failure
# and the provider's status and code, never the provider's own text (it may echo a
# platform key or describe the platform's account). Errors about the request itself
# (bad_request, context_length, content_filter) keep the provider's text, redacted: it
# says what to fix. A tenant's own endpoint or key gets the provider's text, redacted.
_KIND_TEXT = {
    "rate_limit": "rate limited by the provider",
    "server": "provider error",
    "timeout": "timed out",
    "connection": "could not connect to the provider",
    "auth": "the provider refused the platform's credentials",
    "not_found": "the provider does not serve this model",
    "malformed": "malformed response from the provider",
    "bad_request": "the provider refused the request",
    "context_length": "the request is too long for the model",
    "content_filter": "refused by the provider's content filter",
}
_REQUEST_KINDS = frozenset({"bad_request", "context_length", "content_filter"})


def attempt_message(
    kind: str, status: int | None, code: str | None, text: str, *, tenant_owned: bool
) -> str:
    """The tenant-facing description of one failed provider call."""
    shown = text if tenant_owned or kind in _REQUEST_KINDS else _KIND_TEXT.get(kind, kind)
    details = [f"HTTP {status}"] if status else []
    if code:
        details.append(f"provider code '{code}'")
    return f"{shown} ({', '.join(details)})" if details else shown
