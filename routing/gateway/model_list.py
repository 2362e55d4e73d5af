"""GET /v1/models and /v1/models/{id}: the models this tenant may call."""

from __future__ import annotations

import json
from typing import Any

from routing.gateway.context import RoutingContext, cache
from routing.gateway.errors import GatewayError
from routing.gateway.framing import Request, Send, send_json
from tenants.auth import KeyPrincipal


def _visible_models(ctx: RoutingContext) -> list[dict[str, Any]]:
    """Models this tenant may call: allowed by policy, credentials present."""
    p = ctx.policy
    seen: dict[str, dict[str, Any]] = {}
    ids = [c.model_id for c in ctx.candidates]
    for c in ctx.candidates:
        if not c.has_credentials:
            continue
        if p.allowed_providers is not None and c.provider not in p.allowed_providers:
            continue
        if c.provider in p.denied_providers:
            continue
        if p.allowed_models is not None and not ({c.key, c.model_id} & p.allowed_models):
            continue
        if {c.key, c.model_id} & p.denied_models:
            continue
        if p.local_only and not c.is_local:
            continue
        model_id = c.model_id if ids.count(c.model_id) == 1 else c.key
        seen[model_id] = {
            "id": model_id,
            "object": "model",
            "created": 0,
            "owned_by": c.provider,
            "aura": {
                "key": c.key,
                "tier": c.tier,
                "capabilities": sorted(c.capabilities),
                "context_window": c.context_window,
                "local": c.is_local,
            },
        }
    out = [{"id": "auto", "object": "model", "created": 0, "owned_by": "aura"}]
    for alias in p.aliases:
        out.append({"id": alias, "object": "model", "created": 0, "owned_by": "aura"})
    return out + sorted(seen.values(), key=lambda m: m["id"])


async def models(req: Request, send: Send, principal: KeyPrincipal) -> None:
    req.kind = "models"
    ctx = await cache.aget(principal.tenant_id)
    data = _visible_models(ctx)
    if req.path.startswith("/v1/models/"):
        wanted = req.path[len("/v1/models/") :]
        match = next((m for m in data if m["id"] == wanted), None)
        if match is None:
            raise GatewayError(
                404, f"The model '{wanted}' does not exist.", param="model", code="model_not_found"
            )
        payload: Any = match
    else:
        payload = {"object": "list", "data": data}
    await send_json(
        send, 200, json.dumps(payload).encode(), [(b"x-aura-request-id", req.request_id.encode())]
    )
