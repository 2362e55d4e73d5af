"""Input no encoder can carry is refused with a 400 naming the field, before routing.

Each of these was a 500 found by an outside fuzzer: a lone surrogate survives json.loads but
not the UTF-8 encoding of the upstream request; NaN/Infinity parse in Python but are not
JSON, so they were forwarded upstream as invalid bodies; an unhashable role crashed the
validator.
"""

from __future__ import annotations

import pytest

from tests.gateway.test_errors import call, error_of

OK = '{"role": "user", "content": "hi"}'


@pytest.fixture(autouse=True)
def _ok_model(gw) -> None:
    from tests.gateway.conftest import add_model

    add_model(gw.providers["fakeai"], "fake-ok")


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (
            '{"model": "fake-ok", "messages": [{"role": "user", "content": "\\ud800"}]}',
            "messages[0].content",
        ),
        (
            '{"model": "fake-ok", "messages": [' + OK + '], "x_extra": {"k": ["\\uDFFF"]}}',
            "x_extra.k[0]",
        ),
        ('{"model": "fake-ok", "messages": [' + OK + '], "user": "a\\udc00b"}', "user"),
        ('{"model": "\\ud83d", "messages": [' + OK + "]}", "model"),
    ],
)
def test_a_lone_surrogate_in_any_string_is_a_400_naming_its_field(gw, raw, param) -> None:
    err = error_of(call(gw, content=raw.encode()), 400)
    assert err["param"] == param
    assert "surrogate" in err["message"]
    assert gw.fakes["openai"].calls == []


def test_a_surrogate_pair_is_ordinary_text(gw) -> None:
    raw = '{"model": "fake-ok", "messages": [{"role": "user", "content": "\\ud83d\\ude00 hi"}]}'
    resp = call(gw, content=raw.encode())
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "fake reply: \U0001f600 hi"


def test_a_lone_surrogate_in_an_embeddings_input_is_a_400(gw) -> None:
    from tests.gateway.conftest import add_model

    add_model(gw.providers["fakeai"], "fake-embed", kind="embeddings", caps=["embeddings"])
    raw = b'{"model": "fake-embed", "input": ["ok", "\\ud800"]}'
    err = error_of(call(gw, "POST", "/v1/embeddings", content=raw), 400)
    assert err["param"] == "input[1]"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(gw, literal) -> None:
    raw = f'{{"model": "fake-ok", "temperature": {literal}, "messages": [{OK}]}}'
    err = error_of(call(gw, content=raw.encode()), 400)
    assert err["code"] == "invalid_json"
    assert literal.lstrip("-") in err["message"]
    assert gw.fakes["openai"].calls == []


@pytest.mark.parametrize("role", [[], {}, None, 3, True])
def test_a_role_that_is_not_a_string_is_a_400(gw, role) -> None:
    body = {"model": "fake-ok", "messages": [{"role": role, "content": "hi"}]}
    err = error_of(call(gw, body=body), 400)
    assert err["param"] == "messages[0].role"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"response_format": {"type": []}}, "response_format"),
        ({"response_format": {"type": {"a": 1}}}, "response_format"),
        ({"metadata": {"aura_objective": ["balanced"]}}, "x-aura-objective"),
        ({"metadata": {"aura_max_cost": "nan"}}, "x-aura-max-cost"),
        ({"metadata": {"aura_max_cost": -1}}, "x-aura-max-cost"),
        ({"user": {"id": 1}}, "user"),
        ({"metadata": {"session_id": [1]}}, "user"),
    ],
)
def test_fields_of_the_wrong_type_are_a_400_naming_them(gw, change, param) -> None:
    body = {"model": "fake-ok", "messages": [{"role": "user", "content": "hi"}], **change}
    err = error_of(call(gw, body=body), 400)
    assert err["param"] == param


@pytest.mark.parametrize("dims", [0, -1, 2**64, "8", 1.5])
def test_embedding_dimensions_must_be_a_sensible_positive_integer(gw, dims) -> None:
    from tests.gateway.conftest import add_model

    add_model(gw.providers["fakeai"], "fake-embed", kind="embeddings", caps=["embeddings"])
    body = {"model": "fake-embed", "input": "hi", "dimensions": dims}
    err = error_of(call(gw, "POST", "/v1/embeddings", body=body), 400)
    assert err["param"] == "dimensions"
    assert gw.fakes["openai"].calls == []
