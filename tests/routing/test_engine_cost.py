from __future__ import annotations

import pytest

from routing.engine import estimate_cost
from tests.routing import make_candidate, make_request, route


def test_it_prices_prompt_and_requested_output_at_their_own_rates() -> None:
    c = make_candidate("openai/gpt-4o-mini", input_price=0.15, output_price=0.60)
    # 2000 * 0.15 / 1e6 + 500 * 0.60 / 1e6 = 0.0003 + 0.0003
    assert estimate_cost(c, 2000, 500) == pytest.approx(0.0006)


def test_without_max_tokens_the_worst_case_is_the_model_output_limit() -> None:
    c = make_candidate("x/m", input_price=3, output_price=15, max_output=8192)
    # 1000 * 3 / 1e6 + 8192 * 15 / 1e6 = 0.003 + 0.12288
    assert estimate_cost(c, 1000, None) == pytest.approx(0.12588)


def test_zero_output_tokens_is_honoured() -> None:
    c = make_candidate("x/embed", input_price=0.02, output_price=0.0)
    assert estimate_cost(c, 1_000_000, 0) == pytest.approx(0.02)


def test_plans_report_the_worst_case_cost_of_each_step() -> None:
    c = make_candidate("x/m", input_price=2.5, output_price=10, max_output=16_384)
    result = route([c], make_request(prompt_tokens=400, max_output_tokens=None))
    assert result.steps[0].cost_usd == pytest.approx((400 * 2.5 + 16_384 * 10) / 1e6)


def test_embedding_requests_cost_only_their_input() -> None:
    c = make_candidate("x/embed", input_price=0.1, capabilities=("embeddings",), max_output=0)
    result = route([c], make_request(kind="embeddings", prompt_tokens=5000, max_output_tokens=None))
    assert result.steps[0].cost_usd == pytest.approx(0.0005)
