"""Errors answered in OpenAI's shape, and the mapping from plan, execution and budget
failures to them."""

from __future__ import annotations

import json

from billing.budgets import BudgetExceeded
from routing import engine
from routing.engine.failures import plan_failure
from routing.gateway import execution
from routing.gateway.context import RoutingContext
from routing.gateway.guard import budget_error_message


class GatewayError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or []

    def body(self) -> bytes:
        err = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return json.dumps({"error": err}).encode()


def plan_error(plan: engine.Plan, model: str) -> GatewayError:
    failure = plan_failure(plan, model)
    assert failure is not None
    return GatewayError(
        failure.status, failure.message, type=failure.type, param=failure.param, code=failure.code
    )


def all_failed_error(exc: execution.AllFailed) -> GatewayError:
    tried = "; ".join(f"{a.key}: {a.message[:200]}" for a in exc.outcome.attempts)
    last = exc.last
    if last is not None and last.kind == "rate_limit":
        retry = str(int(last.retry_after or 1))
        return GatewayError(
            429,
            f"Every provider is rate limiting this request. Tried: {tried}",
            type="rate_limit_error",
            code="rate_limited",
            headers=[(b"retry-after", retry.encode())],
        )
    status = 504 if last is not None and last.kind == "timeout" else 502
    if not exc.outcome.attempts:
        status = 503
    return GatewayError(
        status,
        f"Every provider in the plan failed. Tried: {tried or 'none'}",
        type="server_error",
        code="upstream_failed",
    )


def overloaded_error(exc: execution.Overloaded) -> GatewayError:
    """Load shedding. 503, not 429: the endpoint's capacity is shared by every tenant and
    key, so the refusal says the service is overloaded (RFC 9110), not that this client
    sent too many requests; Retry-After says when a slot is likely free."""
    shed = exc.shed
    tried = "; ".join(f"{a.key}: {a.message[:200]}" for a in exc.outcome.attempts)
    if shed.reason == "queue_full":
        message, code = "Too many requests are waiting for this model's provider", "queue_full"
    else:
        message, code = "Timed out waiting for this model's provider", "server_overloaded"
    return GatewayError(
        503,
        f"{message} (overloaded: its limit is {shed.limit} at once). Retry after "
        f"{shed.retry_after} s. Tried: {tried or 'none'}",
        type="server_error",
        code=code,
        headers=[(b"retry-after", str(shed.retry_after).encode())],
    )


def budget_error(exc: BudgetExceeded, ctx: RoutingContext) -> GatewayError:
    headers = []
    if exc.resets_at is not None:
        headers.append((b"x-aura-budget-resets-at", exc.resets_at.isoformat().encode()))
    return GatewayError(
        402,
        budget_error_message(exc, ctx.timezone),
        type="insufficient_quota",
        code="budget_exceeded",
        headers=headers,
    )
