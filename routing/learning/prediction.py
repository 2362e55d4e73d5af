"""Predictions for one request, shared by the gateway and the routing API so a dry run
explains exactly what the gateway does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from routing.learning.features import PromptFeatures, base_key, prompt_features
from routing.learning.predict import Prediction, Predictor


@dataclass(frozen=True, slots=True)
class Learned:
    """Per catalog key predictions for a prompt, and the features (kept for feedback)."""

    features: PromptFeatures
    predictions: dict[str, Prediction] = field(default_factory=dict)
    memory_points: int = 0

    def quality_by_candidate(self, candidates: Sequence[Any]) -> dict[str, float]:
        preds = self.predictions
        out: dict[str, float] = {}
        for c in candidates:
            p = preds.get(base_key(c.key))
            if p is not None:
                out[c.key] = p.quality
        return out

    def evidence(self, candidate_key: str) -> dict[str, Any] | None:
        p = self.predictions.get(base_key(candidate_key))
        if p is None:
            return None
        return {
            "neighbours": p.neighbours,
            "neighbour_outcomes": round(p.mass, 3),
            "confidence": round(p.confidence, 4),
            "prior": round(p.prior, 4),
            "memory_points": self.memory_points,
        }


def learned_for_text(predictor: Predictor | None, text: str) -> Learned | None:
    """The prompt's features and, when the tenant has a predictor, its predictions.
    None when there is no text to key on."""
    if not text.strip():
        return None
    feats = prompt_features(text)
    if predictor is None:
        return Learned(feats)
    preds = predictor.predict(feats.embedding, feats.ridge_vector())
    return Learned(feats, preds, predictor.size)
