"""Budget enforcement by reservation, not check-then-spend.

Before a request goes upstream, its worst case (prompt tokens at the model's input price
plus ``max_tokens`` — or the model's max output — at the output price) is *reserved*
against every budget that applies (the tenant's and the key's; hour/day/week/month in the
tenant's time zone) in one atomic Redis script: either every counter takes the
reservation or none does. After the call the reservation is *settled* to the real cost (or
*released* on failure). Concurrent requests therefore cannot overshoot a ``block`` budget
by more than what they reserved, which the check refused up front.

Counters hold integers in nano-USD. Each counter is a hash ``{spent, reserved}`` with a
sorted set of live reservations (score = expiry) and their amounts, so a reservation whose
request died (process killed) expires by itself and stops holding money
(``RESERVATION_TTL``). Postgres stays the truth: ``budget_counters_rebuild`` recomputes
``spent`` from usage records (periodically and after Redis loss).

Redis unreachable: budgets in ``block`` mode fail closed (the request is refused with a
503) unless ``BUDGET_FAIL_OPEN`` is set; others fail open. Either way it is logged.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from billing.periods import PERIODS, period_bounds

log = logging.getLogger(__name__)

NANO = Decimal(1_000_000_000)
RESERVATION_TTL_MS = 15 * 60 * 1000  # longer than any upstream total timeout

# Amounts travel as integer strings and are never negated or formatted by Lua: Lua would
# turn -0 into "-0" and large values into "1e+15", both refused by HINCRBY.
_LUA_SUB = """
local function sub(k, field, amt)
  if amt and amt ~= '0' then redis.call('HINCRBY', k, field, '-' .. amt) end
end
"""

_RESERVE = (
    _LUA_SUB
    + """
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local ttl = tonumber(ARGV[3])
local n = #KEYS
for i = 1, n do
  local k = KEYS[i]
  local expired = redis.call('ZRANGEBYSCORE', k .. ':z', '-inf', now)
  for _, m in ipairs(expired) do
    sub(k, 'reserved', redis.call('HGET', k .. ':a', m))
    redis.call('HDEL', k .. ':a', m)
    redis.call('ZREM', k .. ':z', m)
  end
end
for i = 1, n do
  local k = KEYS[i]
  local limit = tonumber(ARGV[3 + (i - 1) * 3 + 1])
  local enforce = tonumber(ARGV[3 + (i - 1) * 3 + 2])
  local amount = tonumber(ARGV[3 + (i - 1) * 3 + 3])
  local spent = redis.call('HGET', k, 'spent') or '0'
  local reserved = redis.call('HGET', k, 'reserved') or '0'
  if enforce == 1 and tonumber(spent) + tonumber(reserved) + amount > limit then
    return {i, spent, reserved}
  end
end
for i = 1, n do
  local k = KEYS[i]
  local amount = ARGV[3 + (i - 1) * 3 + 3]
  local expire_s = ARGV[3 + n * 3 + i]
  redis.call('HINCRBY', k, 'reserved', amount)
  redis.call('ZADD', k .. ':z', now + ttl, rid)
  redis.call('HSET', k .. ':a', rid, amount)
  redis.call('EXPIRE', k, expire_s)
  redis.call('EXPIRE', k .. ':z', expire_s)
  redis.call('EXPIRE', k .. ':a', expire_s)
end
return {0}
"""
)

_SETTLE = (
    _LUA_SUB
    + """
local rid = ARGV[1]
local actual = ARGV[2]
local out = {}
for i = 1, #KEYS do
  local k = KEYS[i]
  local amt = redis.call('HGET', k .. ':a', rid)
  if amt then
    sub(k, 'reserved', amt)
    redis.call('HDEL', k .. ':a', rid)
    redis.call('ZREM', k .. ':z', rid)
  end
  out[i] = redis.call('HINCRBY', k, 'spent', actual)
end
return out
"""
)


@dataclass(frozen=True, slots=True)
class BudgetRule:
    """A budget as the gateway caches it (in the routing context)."""

    id: int
    api_key_id: int | None
    period: str
    limit_usd: Decimal
    mode: str
    thresholds: tuple[int, ...]

    @property
    def enforced(self) -> bool:
        return self.mode != "alert_only"

    @property
    def limit_nano(self) -> int:
        return int(self.limit_usd * NANO)


def rules_from_rows(rows: Sequence[Any]) -> tuple[BudgetRule, ...]:
    return tuple(
        BudgetRule(
            id=b.pk,
            api_key_id=b.api_key_id,
            period=b.period,
            limit_usd=Decimal(b.limit_usd),
            mode=b.mode,
            thresholds=tuple(b.alert_thresholds),
        )
        for b in rows
    )


def counter_key(rule: BudgetRule, start: datetime) -> str:
    return f"aura:bud:{rule.id}:{int(start.timestamp())}"


def to_nano(usd: Decimal | float) -> int:
    return int((Decimal(str(usd)) * NANO).to_integral_value())


@dataclass(slots=True)
class Counter:
    rule: BudgetRule
    key: str
    start: datetime
    end: datetime


class BudgetExceeded(Exception):
    def __init__(
        self,
        rule: BudgetRule,
        *,
        spent: Decimal,
        reserved: Decimal,
        needed: Decimal,
        end: datetime | None,
    ) -> None:
        super().__init__(f"budget {rule.id} exceeded")
        self.rule = rule
        self.spent = spent
        self.reserved = reserved
        self.needed = needed
        self.resets_at = end

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.rule.limit_usd - self.spent - self.reserved)


class BudgetUnavailable(Exception):
    """Redis is unreachable and a block budget applies (fail closed)."""


@dataclass(slots=True)
class Reservation:
    id: str
    counters: list[Counter]
    amount_nano: int


_scripts: dict[int, tuple[Any, Any]] = {}


def _scripts_for(redis: Any) -> tuple[Any, Any]:
    """EVALSHA handles (redis-py reloads on NOSCRIPT), one pair per client."""
    pair = _scripts.get(id(redis))
    if pair is None:
        pair = _scripts[id(redis)] = (
            redis.register_script(_RESERVE),
            redis.register_script(_SETTLE),
        )
    return pair


class Budgets:
    """The reservation operations for one request's applicable budgets."""

    def __init__(
        self,
        rules: Sequence[BudgetRule],
        *,
        tz_name: str,
        redis: Any,
        now: datetime,
        fail_open: bool = False,
    ) -> None:
        self.per_request = [r for r in rules if r.period == "request"]
        self.periodic = [r for r in rules if r.period in PERIODS]
        self.redis = redis
        self.fail_open = fail_open
        self.counters: list[Counter] = []
        for rule in self.periodic:
            start, end = period_bounds(rule.period, now, tz_name)
            self.counters.append(Counter(rule, counter_key(rule, start), start, end))

    async def reserve(
        self, amount_usd: float, now_ms: int, ttl_ms: int = RESERVATION_TTL_MS
    ) -> Reservation | None:
        """Reserve ``amount_usd`` on every applicable budget, or raise BudgetExceeded."""
        needed = Decimal(str(amount_usd))
        for rule in self.per_request:
            if rule.enforced and needed > rule.limit_usd:
                raise BudgetExceeded(
                    rule, spent=Decimal(0), reserved=Decimal(0), needed=needed, end=None
                )
        if not self.counters:
            return None
        amount = to_nano(needed)
        rid = uuid.uuid4().hex
        args: list[Any] = [now_ms, rid, ttl_ms]
        for c in self.counters:
            args += [c.rule.limit_nano, int(c.rule.enforced), amount]
        now_s = now_ms / 1000
        args += [max(60, int(c.end.timestamp() - now_s) + 86400) for c in self.counters]
        try:
            reserve_script = _scripts_for(self.redis)[0]
            result = await reserve_script(keys=[c.key for c in self.counters], args=args)
        except Exception as exc:
            if self.fail_open or not any(c.rule.mode == "block" for c in self.counters):
                log.warning("budget reservation skipped (Redis unavailable, failing open): %s", exc)
                return None
            log.error("budget reservation refused (Redis unavailable, failing closed): %s", exc)
            raise BudgetUnavailable(str(exc)) from None
        failed = int(result[0])
        if failed:
            c = self.counters[failed - 1]
            raise BudgetExceeded(
                c.rule,
                spent=Decimal(int(result[1])) / NANO,
                reserved=Decimal(int(result[2])) / NANO,
                needed=needed,
                end=c.end,
            )
        return Reservation(rid, self.counters, amount)

    async def settle(
        self, reservation: Reservation | None, actual_usd: Decimal
    ) -> list[tuple[Counter, int]]:
        """Replace the reservation by the real cost; returns each counter's new spent (nano)."""
        if reservation is None:
            return []
        actual = to_nano(actual_usd)
        try:
            settle_script = _scripts_for(self.redis)[1]
            spent = await settle_script(
                keys=[c.key for c in reservation.counters], args=[reservation.id, actual]
            )
        except Exception as exc:
            # The reservation expires by itself; the rebuild task restores `spent` from Postgres.
            log.error("budget settlement failed (%s); counters will be rebuilt from Postgres", exc)
            return []
        return [(c, int(s)) for c, s in zip(reservation.counters, spent, strict=True)]

    async def release(self, reservation: Reservation | None) -> None:
        await self.settle(reservation, Decimal(0))


def crossed_thresholds(rule: BudgetRule, before_nano: int, after_nano: int) -> list[int]:
    """Thresholds (percent) that this settlement crossed, lowest first."""
    limit = rule.limit_nano
    if limit <= 0 or after_nano <= before_nano:
        return []
    return [t for t in rule.thresholds if before_nano < limit * t // 100 <= after_nano]


def budget_counters_rebuild(
    *, tenant_ids: Sequence[int] | None = None, keep_higher: bool = False
) -> int:
    """Recompute every current-period counter's ``spent`` from usage records (the truth).

    ``keep_higher`` (the periodic reconcile) never lowers a counter: records settled in the
    last moments may not be written yet. After Redis loss, run it without (the command).
    Returns how many counters were written.
    """
    from django.db.models import Sum
    from django.utils import timezone

    from aura.redis import sync_client
    from billing.models import Budget, UsageRecord

    now = timezone.now()
    redis = sync_client()
    qs = Budget.objects.filter(enabled=True, period__in=PERIODS).select_related("tenant")
    if tenant_ids is not None:
        qs = qs.filter(tenant_id__in=tenant_ids)
    written = 0
    for budget in qs:
        rule = rules_from_rows([budget])[0]
        start, end = period_bounds(rule.period, now, budget.tenant.timezone)
        usage = UsageRecord.objects.filter(
            tenant_id=budget.tenant_id, created_at__gte=start, created_at__lt=end
        )
        if budget.api_key_id:
            usage = usage.filter(api_key_id=budget.api_key_id)
        total = usage.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)
        key = counter_key(rule, start)
        value = to_nano(total)
        ttl = int((end - now).total_seconds()) + 86400
        # Atomic in Redis: a settlement landing between a read and a write here must not
        # be overwritten (it may not be in Postgres yet).
        before = int(redis.eval(_RAISE if keep_higher else _SET, 1, key, value, ttl))
        after = max(before, value) if keep_higher else value
        for threshold in crossed_thresholds(rule, before, after):
            _alert_sync(rule.id, start, threshold, Decimal(after) / NANO)
        written += 1
    return written


def _alert_sync(budget_id: int, start: datetime, threshold: int, spent: Decimal) -> None:
    from billing.alerts import budget_alert_enqueue

    budget_alert_enqueue(
        budget_id=budget_id, period_start=start, threshold=threshold, spent_usd=spent
    )


# Both return the previous value of `spent`.
_RAISE = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
if tonumber(ARGV[1]) > cur then redis.call('HSET', KEYS[1], 'spent', ARGV[1]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return cur
"""
_SET = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
redis.call('HSET', KEYS[1], 'spent', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return cur
"""
