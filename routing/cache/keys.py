"""What makes two chat requests the same question.

The **partition** holds everything that changes the answer except the last turn: the
tenant, the model (the name asked for; for ``auto`` and aliases also the policy version, as
the policy decides which model answers), the system prompt and every earlier turn, tools,
tool choice, response format and every sampling parameter (temperature, top_p, max_tokens,
seed, stop, n, penalties, logit bias, ...). It is built from the whole body minus a short
list of fields known not to change the answer, so a parameter added to the API tomorrow
splits partitions rather than sharing answers. Nothing is ever looked up across
partitions: the exact key is the partition plus the last turn, and the semantic layer
searches only inside one partition.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Transport and bookkeeping: the answer is the same whatever these say.
NOT_ANSWER_FIELDS = frozenset(
    {"model", "messages", "stream", "stream_options", "user", "metadata", "store", "service_tier"}
)

_canonical = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
).encode


@dataclass(frozen=True, slots=True)
class CacheKey:
    partition: str  # sha256 hex
    exact: str  # sha256 hex of the partition and the last turn
    model: str  # the partition's model scope (shown in stats, used by purges)
    prompt: str  # the last user turn's text; "" when the last turn is not a user's text


def model_scope(model: str, *, resolved_by_policy: bool, policy_version: int) -> str:
    """The model part of a partition: a name the policy resolves (``auto``, an alias) is
    tied to the policy version that resolved it."""
    return f"{model}@policy-v{policy_version}" if resolved_by_policy else model


def last_user_text(message: Mapping[str, Any]) -> str:
    """The text of a user message (a string, or text-only content parts), else ""."""
    if message.get("role") != "user":
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list) and content:
        texts = []
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") != "text":
                return ""  # images, audio, files: the text alone is not the question
            texts.append(str(part.get("text") or ""))
        return "\n".join(texts).strip()
    return ""


def _last_turn(message: Mapping[str, Any]) -> dict[str, Any]:
    turn = dict(message)
    if isinstance(turn.get("content"), str):
        turn["content"] = turn["content"].strip()
    return turn


def cache_key(body: Mapping[str, Any], *, tenant_id: int, model: str) -> CacheKey:
    """The cache key of a validated chat body (``messages`` non-empty)."""
    messages = body["messages"]
    params = {k: v for k, v in body.items() if k not in NOT_ANSWER_FIELDS}
    partition = hashlib.sha256(
        _canonical([tenant_id, model, messages[:-1], params, messages[-1].get("role")]).encode()
    ).hexdigest()
    exact = hashlib.sha256((partition + _canonical(_last_turn(messages[-1]))).encode()).hexdigest()
    return CacheKey(partition, exact, model, last_user_text(messages[-1]))
