"""Where learned state lives between processes (Redis):

- ``aura:learning:v1:model:<tenant>``: the fitted predictor (numpy arrays, npz bytes),
  written by the refit task, read by every gateway and API process;
- ``aura:learning:v1:version:<tenant>``: bumped on each write, so a process notices a new
  predictor with one small GET a second per tenant, never a database query;
- ``aura:learning:v1:served:<tenant>:<request id>``: a served request's prompt features,
  kept ``LEARNING_FEEDBACK_DAYS`` so feedback on it can join the memory.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from routing.learning.predict import Predictor

PREFIX = "aura:learning:v1:"
REFIT_LOCK_SECONDS = 30  # feedback and records refit at most this often per tenant


def model_key(tenant_id: int) -> str:
    return f"{PREFIX}model:{tenant_id}"


def version_key(tenant_id: int) -> str:
    return f"{PREFIX}version:{tenant_id}"


def served_key(tenant_id: int, request_id: str) -> str:
    return f"{PREFIX}served:{tenant_id}:{request_id}"


def refit_lock_key(tenant_id: int) -> str:
    return f"{PREFIX}refit-lock:{tenant_id}"


def dumps(p: Predictor) -> bytes:
    buf = io.BytesIO()
    np.savez(
        buf,
        models=np.asarray(p.models, dtype=object).astype(str),
        points=p.points,
        qsum=p.qsum,
        count=p.count,
        ridge=p.ridge,
        outcomes=p.outcomes,
        mean=p.mean,
        params=np.asarray([p.ridge_lambda, p.k, p.shrink], np.float64),
    )
    return buf.getvalue()


def loads(raw: bytes) -> Predictor:
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        lam, k, shrink = (float(x) for x in z["params"])
        return Predictor(
            tuple(str(m) for m in z["models"]),
            z["points"],
            z["qsum"],
            z["count"],
            z["ridge"],
            z["outcomes"],
            z["mean"],
            lam,
            int(k),
            shrink,
        )


@dataclass(frozen=True, slots=True)
class Served:
    """What feedback on a served request needs: its prompt features and what it cost."""

    model: str
    embedding: list[float]
    lexical: list[int]
    cost_usd: str
    latency_ms: float
    prompt_hash: str
    prompt: str = ""

    def dumps(self) -> bytes:
        body: dict[str, Any] = {
            "m": self.model,
            "e": np.asarray(self.embedding, np.float16).tobytes().hex(),
            "x": self.lexical,
            "c": self.cost_usd,
            "l": self.latency_ms,
            "h": self.prompt_hash,
        }
        if self.prompt:
            body["p"] = self.prompt
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> Served:
        body = json.loads(raw)
        vector = np.frombuffer(bytes.fromhex(body["e"]), np.float16).astype(np.float32)
        return cls(
            body["m"],
            vector.tolist(),
            list(body["x"]),
            body["c"],
            float(body["l"]),
            body["h"],
            body.get("p", ""),
        )
