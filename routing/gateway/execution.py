"""Executing a plan: retries with jittered backoff, fallbacks, breakers, hedging.

The gateway view hands over a plan and a body; this module calls providers through their
adapters and reports every attempt, so the caller can answer and account without knowing
how many providers were tried. No database access here and no thread is held: everything
awaits the shared HTTP client.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings

from aura.http import public_only as http_public_only
from aura.redis import async_client
from routing.engine import Candidate, Plan
from routing.engine.failures import attempt_message
from routing.engine.types import Row, scored_candidate
from routing.gateway.breaker import breakers, stats
from routing.gateway.context import CallTarget, RoutingContext
from routing.gateway.shedding import NORMAL, Shed, Slot, shedder
from routing.providers import get_adapter
from routing.providers.base import Completion, ProviderError, redact

log = logging.getLogger(__name__)

BACKOFF_BASE = 0.25
BACKOFF_CAP = 4.0
# A Retry-After longer than this is not waited for: falling back is faster for the client.
RETRY_AFTER_CAP = 5.0
# Errors that say the endpoint is unhealthy (count toward its breaker).
BREAKER_KINDS = frozenset({"server", "timeout", "connection", "malformed", "rate_limit", "auth"})
# Errors that say the *request* is wrong: every provider would refuse it, so do not fall back.
CLIENT_KINDS = frozenset({"bad_request"})
# Errors that say the *endpoint* is unreachable, whatever the model: the plan's other steps
# on the same endpoint are skipped for this request (several models on one dead endpoint
# fail over as one, not one retry storm each).
ENDPOINT_DOWN_KINDS = frozenset({"connection"})

_rng = random.Random()


@dataclass(slots=True)
class Attempt:
    key: str
    provider: str
    ok: bool
    kind: str | None = None
    status: int | None = None
    message: str = ""
    latency_ms: float = 0.0
    cost_usd: Decimal | None = None  # set for a hedged call that lost but was billed
    endpoint: str = ""  # the endpoint's name (breaker/health), for passive health and SLAs

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"model": self.key, "provider": self.provider, "ok": self.ok}
        if self.endpoint:
            d["endpoint"] = self.endpoint
        if not self.ok:
            d.update(error=self.kind, status=self.status, message=self.message[:300])
        d["latency_ms"] = round(self.latency_ms, 2)
        if self.cost_usd is not None:
            d["cost_usd"] = str(self.cost_usd)
        return d


@dataclass(slots=True)
class Outcome:
    """What happened: the winning target (if any), attempts, upstream time."""

    attempts: list[Attempt] = field(default_factory=list)
    target: CallTarget | None = None
    step_index: int = 0
    reservation: Any = None  # the winning step's budget reservation, settled by the caller
    upstream_ms: float = 0.0
    # What hedged calls that did not win cost (their providers bill them all the same); their
    # reservations are settled here, the request's record adds this to its cost.
    hedge_cost: Decimal = Decimal(0)
    hedge_estimated: bool = False
    # Load shedding: the request's queue rank (shedding.HIGH..LOW), the first plan step
    # skipped because its endpoint was full (where the request queues if nothing else
    # answers), and, for a stream, the winning step's slot, released when the stream ends.
    priority: int = NORMAL
    overloaded_step: int | None = None
    slot: Slot | None = None

    @property
    def fallbacks(self) -> int:
        return self.step_index


class AllFailed(Exception):
    def __init__(self, outcome: Outcome, last: ProviderError | None) -> None:
        super().__init__("every plan step failed")
        self.outcome = outcome
        self.last = last


class Overloaded(Exception):
    """No step had room and the request could not wait for one (queue full or timed out)."""

    def __init__(self, outcome: Outcome, shed: Shed) -> None:
        super().__init__(str(shed))
        self.outcome = outcome
        self.shed = shed


class ClientError(Exception):
    """The upstream refused the request itself (400): report it, do not fall back."""

    def __init__(self, outcome: Outcome, error: ProviderError) -> None:
        super().__init__(error.message)
        self.outcome = outcome
        self.error = error


def backoff_delay(attempt: int, retry_after: float | None, rng: random.Random = _rng) -> float:
    """Full-jitter exponential backoff; Retry-After (when given) is the floor."""
    delay = rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


async def _admit(ct: CallTarget, endpoint: str) -> bool:
    """A half-open endpoint admits one probe at a time; closed ones always admit."""
    if breakers.is_half_open(endpoint):
        return await breakers.atry_probe(async_client(), endpoint)
    return True


async def _record(endpoint: str, key: str, ok: bool, kind: str | None, ms: float | None) -> None:
    stats.finish(key, ms)
    if ok:
        await breakers.arecord(async_client(), endpoint, success=True)
    elif kind in BREAKER_KINDS:
        await breakers.arecord(async_client(), endpoint, success=False)


def _fail(out: Outcome, ct: CallTarget, exc: ProviderError, ms: float, endpoint: str) -> None:
    # The provider's own text is for operators (redacted of the key sent, in any encoding);
    # the attempt (shown to the tenant in errors and usage) says what a tenant may see.
    raw = redact(exc.message, ct.target.api_key)
    log.warning("upstream %s failed (%s, HTTP %s): %s", ct.key, exc.kind, exc.status, raw)
    shown = attempt_message(
        exc.kind, exc.status, exc.provider_code, raw, tenant_owned=ct.tenant_owned
    )
    out.attempts.append(
        Attempt(ct.key, ct.provider, False, exc.kind, exc.status, shown, ms, endpoint=endpoint)
    )


async def _with_retries(
    ct: CallTarget,
    endpoint: str,
    out: Outcome,
    call: Any,
    elsewhere: Callable[[], bool] | None = None,
) -> tuple[Any, ProviderError | None]:
    """Run ``call()`` with retries for one plan step; returns (result or None, last error).

    ``elsewhere()``: is another endpoint left to try? Then a connection failure (nothing
    listening, reset before any answer) is not retried here: the endpoint, not the model,
    is failing, and the other endpoint answers sooner than a backoff would."""
    last: ProviderError | None = None
    for attempt in range(ct.max_retries + 1):
        if attempt and last is not None:
            if last.retry_after is not None and last.retry_after > RETRY_AFTER_CAP:
                break
            await asyncio.sleep(backoff_delay(attempt - 1, last.retry_after))
        stats.start(ct.key)
        started = time.perf_counter()
        guard_token = http_public_only.set(ct.public_only)
        try:
            result = await call()
        except ProviderError as exc:
            ms = (time.perf_counter() - started) * 1000
            out.upstream_ms += ms
            _fail(out, ct, exc, ms, endpoint)
            await _record(endpoint, ct.key, False, exc.kind, None)
            last = exc
            if exc.kind in CLIENT_KINDS:
                raise ClientError(out, exc) from None
            if not exc.retryable:
                break
            if exc.kind in ENDPOINT_DOWN_KINDS and elsewhere is not None and elsewhere():
                break
            continue
        except asyncio.CancelledError:
            # The caller went away mid-call: the request still reached this provider, so the
            # attempt is reported (the gateway records the request as cancelled).
            ms = (time.perf_counter() - started) * 1000
            out.upstream_ms += ms
            out.attempts.append(
                Attempt(
                    ct.key,
                    ct.provider,
                    False,
                    "cancelled",
                    None,
                    "cancelled",
                    ms,
                    endpoint=endpoint,
                )
            )
            stats.finish(ct.key, None)
            raise
        except BaseException:
            stats.finish(ct.key, None)
            raise
        finally:
            http_public_only.reset(guard_token)
        ms = (time.perf_counter() - started) * 1000
        out.upstream_ms += ms
        out.attempts.append(Attempt(ct.key, ct.provider, True, latency_ms=ms, endpoint=endpoint))
        await _record(endpoint, ct.key, True, None, ms)
        return result, None
    return None, last


class StepGuard(Protocol):
    """Admission per plan step beyond health: budgets reserve the step's worst case."""

    async def acquire(self, candidate: Candidate) -> Any:
        """Return a token to release/settle later; raise StepRefused-like errors to refuse."""

    def release(self, token: Any) -> None:
        """The step failed before the provider charged anything: free its reservation."""

    def abandon(self, token: Any, candidate: Candidate, cost: Decimal | None = None) -> None:
        """The call was cut off (client gone, hedge lost) after reaching the provider:
        charge ``cost``, or else what it was surely billed (the prompt), instead of
        releasing."""


def _spare_rows(plan: Plan, steps: list[Any]) -> list[Row]:
    if len(plan.rows) <= len(steps):
        return []
    taken = {s.candidate.key for s in steps}
    return [r for r in plan.rows if r[0].key not in taken]


def _is_budget_refusal(exc: BaseException) -> bool:
    from billing.budgets import BudgetExceeded

    return isinstance(exc, BudgetExceeded)


def _overloaded(out: Outcome, ct: CallTarget, index: int) -> None:
    out.attempts.append(
        Attempt(
            ct.key,
            ct.provider,
            False,
            "overloaded",
            None,
            f"endpoint at its in-flight limit ({ct.max_in_flight})",
        )
    )
    if out.overloaded_step is None or index < out.overloaded_step:
        out.overloaded_step = index


def _tried(out: Outcome) -> bool:
    """Whether any step got further than a full endpoint."""
    return any(a.kind != "overloaded" for a in out.attempts)


async def _run_step(
    index: int,
    cand: Candidate,
    ct: CallTarget,
    slot: Slot | None,
    out: Outcome,
    call: Callable[[CallTarget, Any], Awaitable[Any]],
    guard: StepGuard | None,
    hold: bool,
    elsewhere: Callable[[], bool] | None = None,
) -> tuple[Any, ProviderError | None]:
    """One plan step holding ``slot``: admit (breaker), guard (budget), call with retries.
    The slot is released on every way out, except to ``out.slot`` when ``hold`` succeeds.
    ``elsewhere``: see ``_with_retries``."""
    try:
        if not await _admit(ct, cand.endpoint):
            out.attempts.append(
                Attempt(
                    ct.key,
                    ct.provider,
                    False,
                    "circuit_open",
                    None,
                    "circuit open: a probe is in progress",
                )
            )
            return None, None
        token = None
        if guard is not None:
            try:
                token = await guard.acquire(cand)
            except Exception as exc:
                # The first step the budget refuses decides (block -> 402, downgrade ->
                # re-plan); a fallback that does not fit after others failed is skipped.
                # (A step that was only full was not tried.)
                if not _is_budget_refusal(exc) or not _tried(out):
                    raise
                out.attempts.append(Attempt(ct.key, ct.provider, False, "budget", None, str(exc)))
                return None, None
        adapter = get_adapter(ct.wire_format)
        try:
            result, err = await _with_retries(
                ct, cand.endpoint, out, lambda: call(ct, adapter), elsewhere
            )
        except BaseException:
            if guard is not None:
                guard.abandon(token, cand)
            raise
        if result is not None:
            out.target, out.step_index, out.reservation = ct, index, token
            if hold:
                out.slot, slot = slot, None
            return result, None
        if guard is not None:
            guard.release(token)
        return None, err
    finally:
        if slot is not None:
            slot.release()


async def _run_plan(
    plan: Plan,
    ctx: RoutingContext,
    out: Outcome,
    call: Callable[[CallTarget, Any], Awaitable[Any]],
    guard: StepGuard | None,
    start_index: int = 0,
    *,
    hold: bool = False,
) -> Any:
    """Walk the plan: a slot (load shedding), admit (breaker), guard (budget), call with
    retries, fall back. A step whose endpoint is full is skipped; only when no step with
    room answered does the request queue, for the first full one. Queueing comes before
    the budget reservation, so a request never holds money while it waits.
    ``hold``: keep the answering step's slot in ``out.slot`` (a stream, until it ends).

    A step whose endpoint an earlier step found unreachable (a connection failure) is
    skipped too, and one of the eligible candidates the plan left out, best first and on
    another endpoint, takes its place: three models on one dead server do not use up every
    fallback the tenant allowed. (The spare list is built on a first connection failure
    only: the hot path never pays for it.)"""
    last: ProviderError | None = None
    steps = list(plan.steps)
    unreachable: set[str] = set()  # endpoints this request found dead

    def elsewhere_after(index: int, endpoint: str) -> Callable[[], bool]:
        def elsewhere() -> bool:
            if any(
                s.candidate.endpoint not in (endpoint, *unreachable) for s in steps[index + 1 :]
            ):
                return True
            return any(r[0].endpoint != endpoint for r in _spare_rows(plan, steps))

        return elsewhere

    index = start_index - 1
    while index + 1 < len(steps):
        index += 1
        cand = steps[index].candidate
        if cand.endpoint in unreachable:
            replacement = next(
                (r for r in _spare_rows(plan, steps) if r[0].endpoint not in unreachable), None
            )
            if replacement is not None:
                steps.append(scored_candidate(replacement, plan.weights or steps[0].weights))
            continue
        ct = ctx.targets[cand.key]
        slot = shedder.try_acquire(cand.endpoint, ct.max_in_flight)
        if slot is None:
            _overloaded(out, ct, index)
            continue
        result, err = await _run_step(
            index, cand, ct, slot, out, call, guard, hold, elsewhere_after(index, cand.endpoint)
        )
        if result is not None:
            return result
        if err is not None and err.kind in ENDPOINT_DOWN_KINDS:
            unreachable.add(cand.endpoint)
        last = err or last
    if out.overloaded_step is not None and steps[out.overloaded_step].candidate.endpoint not in (
        unreachable
    ):
        index = out.overloaded_step
        cand = steps[index].candidate
        ct = ctx.targets[cand.key]
        try:
            slot = await shedder.acquire(
                cand.endpoint,
                ct.max_in_flight,
                out.priority,
                queue_size=settings.SHED_QUEUE_SIZE,
                max_wait=settings.SHED_QUEUE_TIMEOUT,
                typical_ms=stats.latency_ms.get(ct.key),
            )
        except Shed as exc:
            raise Overloaded(out, exc) from None
        result, err = await _run_step(index, cand, ct, slot, out, call, guard, hold)
        if result is not None:
            return result
        last = err or last
    raise AllFailed(out, last)


def _fresh_run(out: Outcome | None) -> Outcome:
    """The outcome for a run of a plan. A re-plan (budget downgrade) runs again on the same
    outcome: the full step it remembers was a step of the previous plan."""
    if out is None:
        return Outcome()
    out.overloaded_step = None
    return out


async def complete(
    plan: Plan,
    ctx: RoutingContext,
    body: Mapping[str, Any],
    out: Outcome | None = None,
    guard: StepGuard | None = None,
    prompt_tokens: int = 0,
) -> tuple[Completion, Outcome]:
    """Non-streamed chat completion along the plan (hedging the first ``plan.hedge`` steps).

    Pass ``out`` to see the attempts made so far if this is cancelled (client gone).
    ``prompt_tokens`` (the local count) prices hedged calls cancelled before they answered.
    """
    out = _fresh_run(out)

    async def call(ct: CallTarget, adapter: Any) -> Completion:
        result: Completion = await adapter.complete(ct.target, body)
        return result

    start_index = 0
    if plan.hedge > 1:
        result = await _hedge(list(plan.steps[: plan.hedge]), ctx, out, call, guard, prompt_tokens)
        if result is not None:
            return result, out
        start_index = plan.hedge
    return await _run_plan(plan, ctx, out, call, guard, start_index), out


async def _hedge(
    steps: list[Any],
    ctx: RoutingContext,
    out: Outcome,
    call: Callable[[CallTarget, Any], Awaitable[Any]],
    guard: StepGuard | None,
    prompt_tokens: int,
) -> Completion | None:
    """Fire the same request at several models; first success wins, the rest are cancelled.

    Every hedged call reserves its own worst case. A call that did not win is paid for if
    it reached its provider: its own usage if it answered anyway, else its prompt (by local
    count, flagged estimated); one that failed is not (as a failed fallback step). What
    they cost goes to ``out.hedge_cost`` and settles their reservations."""
    tokens: dict[int, Any] = {}
    cut: set[int] = set()  # cancelled while calling its provider

    async def one(index: int) -> tuple[int, Completion | None]:
        cand = steps[index].candidate
        ct = ctx.targets[cand.key]
        slot = shedder.try_acquire(cand.endpoint, ct.max_in_flight)
        if slot is None:  # a hedge is for speed: never wait for a full endpoint
            _overloaded(out, ct, index)
            return index, None
        try:
            adapter = get_adapter(ct.wire_format)
            if guard is not None:
                tokens[index] = await guard.acquire(cand)
            try:
                result, _ = await _with_retries(ct, cand.endpoint, out, lambda: call(ct, adapter))
            except asyncio.CancelledError:
                cut.add(index)
                raise
            return index, result
        finally:
            slot.release()

    tasks = [asyncio.create_task(one(i)) for i in range(len(steps))]
    winner: int | None = None
    try:
        for fut in asyncio.as_completed(tasks):
            index, result = await fut
            if result is not None:
                winner = index
                out.target, out.step_index = ctx.targets[steps[index].candidate.key], index
                out.reservation = tokens.get(index)
                return result
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for index, task in enumerate(tasks):
            if index == winner:
                continue
            cand = steps[index].candidate
            charge = _hedge_loser_cost(task, index in cut, ctx.targets[cand.key], prompt_tokens)
            if charge is not None:
                cost, estimated = charge
                out.hedge_cost += cost
                out.hedge_estimated = out.hedge_estimated or estimated
                for attempt in reversed(out.attempts):
                    if attempt.key == cand.key:
                        attempt.cost_usd = cost
                        break
            token = tokens.get(index)
            if guard is not None and token is not None:
                if charge is None:
                    guard.release(token)
                else:
                    guard.abandon(token, cand, charge[0])
    return None


def _hedge_loser_cost(
    task: asyncio.Task[tuple[int, Completion | None]],
    cut: bool,
    ct: CallTarget,
    prompt_tokens: int,
) -> tuple[Decimal, bool] | None:
    """(cost, estimated) of a hedged call that did not win, or None if nothing is owed."""
    if not task.cancelled() and task.exception() is None:
        _, result = task.result()
        if result is None:
            return None  # every attempt failed: providers do not bill a refusal
        if result.usage is not None:  # answered too late to win: billed in full
            u = result.usage
            return ct.cost(u.prompt_tokens, u.completion_tokens, u.cached_tokens), False
        return ct.cost(prompt_tokens, 0), True
    if cut:
        return ct.cost(prompt_tokens, 0), True
    return None


async def embed(
    plan: Plan,
    ctx: RoutingContext,
    body: Mapping[str, Any],
    out: Outcome | None = None,
    guard: StepGuard | None = None,
) -> tuple[dict[str, Any], Outcome]:
    out = _fresh_run(out)

    async def call(ct: CallTarget, adapter: Any) -> dict[str, Any]:
        result: dict[str, Any] = await adapter.embed(ct.target, body)
        return result

    return await _run_plan(plan, ctx, out, call, guard), out


async def open_stream(
    plan: Plan,
    ctx: RoutingContext,
    body: Mapping[str, Any],
    out: Outcome | None = None,
    guard: StepGuard | None = None,
) -> tuple[dict[str, Any], AsyncIterator[dict[str, Any]], Outcome]:
    """Start a stream along the plan; fails over only until the first chunk arrives.

    Returns the first chunk, the iterator for the rest (the caller must ``aclose()`` it),
    and the outcome so far. After this returns, an upstream failure is the caller's to
    report in-stream: the client has (or is about to have) bytes already. Pass ``out`` to
    see the attempts made so far if this is cancelled.
    """
    out = _fresh_run(out)

    async def first(ct: CallTarget, adapter: Any) -> tuple[dict[str, Any], Any]:
        agen = adapter.stream(ct.target, body)
        try:
            chunk = await agen.__anext__()
        except StopAsyncIteration:
            raise ProviderError(
                f"{ct.provider} closed the stream before any event",
                kind="malformed",
                retryable=True,
            ) from None
        except BaseException:
            await agen.aclose()
            raise
        return chunk, agen

    chunk, agen = await _run_plan(plan, ctx, out, first, guard, hold=True)
    return chunk, agen, out
