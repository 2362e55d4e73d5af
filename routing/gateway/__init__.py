"""Serving the OpenAI-compatible API: /v1/chat/completions, /v1/embeddings, /v1/models.

``POST /v1/chat/completions``, top to bottom:

1. ``app``        ASGI entry: route, authenticate (tenants.auth), read the body, catch errors
2. ``chat``       validate (``requests``), load the tenant's ``context``, plan (routing.engine)
3. ``dispatch``   rate limits (``ratelimit``), health (``breaker``), budgets (``guard``)
4. ``execution``  call the plan's steps: retries, fallbacks, hedging, circuit breakers
5. ``accounting`` usage record (billing.usage's journal), settlement, token charges
6. ``framing``    the JSON answer and its x-aura-* headers; ``streaming`` for SSE

``errors`` maps every failure to OpenAI's error object; ``embeddings`` and ``model_list``
are the other endpoint families. Decisions live in routing.engine, provider wire formats
in routing.providers; nothing here is imported by those, nor by billing.
"""
