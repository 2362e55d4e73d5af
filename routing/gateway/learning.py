"""Learned routing on the request path: predict from the tenant's outcome memory, and keep
the served request's prompt features for feedback (``routing.learning``)."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings

from aura.redis import async_client
from routing.gateway.context import RoutingContext
from routing.gateway.framing import Request

if TYPE_CHECKING:
    from routing.learning.prediction import Learned

log = logging.getLogger(__name__)
_pending: set[asyncio.Task[None]] = set()


async def learned_for_request(ctx: RoutingContext, body: dict[str, Any]) -> Learned | None:
    """Predictions for this request's prompt (an embedding of its last user turn, ~0.1 ms
    inline; the predictor is in memory, refreshed from Redis at most once a second)."""
    # Imported here: numpy and the predictor load only once a tenant turns learning on.
    from routing.learning.features import prompt_text
    from routing.learning.index import predictors
    from routing.learning.prediction import learned_for_text

    predictor = await predictors.aget(ctx.tenant_id)
    return learned_for_text(predictor, prompt_text(body.get("messages")))


def remember_later(
    req: Request,
    ctx: RoutingContext,
    learned: Learned,
    model_key: str,
    cost: Decimal,
    body: dict[str, Any],
) -> None:
    """Keep the prompt's features under the request id for LEARNING_FEEDBACK_DAYS, after
    the answer has gone out (a failed write only means feedback cannot be learned from)."""
    from routing.learning import store
    from routing.learning.features import base_key, prompt_text

    served = store.Served(
        model=base_key(model_key),
        embedding=learned.features.embedding,
        lexical=learned.features.lexical,
        cost_usd=str(cost),
        latency_ms=round((time.perf_counter() - req.started) * 1000, 1),
        prompt_hash=learned.features.prompt_hash,
        prompt=prompt_text(body.get("messages")) if ctx.learning.store_prompts else "",
    )
    ttl = settings.LEARNING_FEEDBACK_DAYS * 86_400

    async def write() -> None:
        try:
            await async_client().set(
                store.served_key(ctx.tenant_id, req.request_id), served.dumps(), ex=ttl
            )
        except Exception:
            log.warning("could not keep request %s for feedback", req.request_id)

    task = asyncio.get_running_loop().create_task(write())
    _pending.add(task)
    task.add_done_callback(_pending.discard)
