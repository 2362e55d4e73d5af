"""The valid /v1 bodies the fuzzer starts from, the models they go to, and how a case is
built from them (one mutation each, the model rotating over the wire formats)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from tests.fuzz.cases import Case
from tests.fuzz.jsonbytes import dumps

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
CHAT_MODELS = ("fake-ok", "claude-ok", "gemini-ok", "llama-ok")
EMBEDDING_MODELS = ("embed-ok", "gemini-embed", "llama-embed")
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a word up.",
        "parameters": {
            "type": "object",
            "properties": {"q": {"type": "string"}},
            "required": ["q"],
        },
    },
}


def chat_bodies(model: str) -> dict[str, dict[str, Any]]:
    """Valid chat bodies, each exercising one area of the request."""
    user = {"role": "user", "content": "hello there"}
    return {
        "parameters": {
            "model": model,
            "messages": [{"role": "system", "content": "Be brief."}, user],
            "temperature": 0.5,
            "top_p": 1,
            "presence_penalty": 0,
            "frequency_penalty": 0.5,
            "max_tokens": 16,
            "max_completion_tokens": 16,
            "n": 1,
            "seed": 7,
            "stop": ["\n\n", "END"],
            "logit_bias": {"50256": -100},
            "logprobs": False,
        },
        "messages": {
            "model": model,
            "messages": [
                {"role": "developer", "content": "Answer in English."},
                {"role": "user", "content": "hello", "name": "alice"},
                {"role": "assistant", "content": "hi"},
                {"role": "user", "content": "how are you"},
            ],
        },
        "content-parts": {
            "model": model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "describe this"},
                        {
                            "type": "image_url",
                            "image_url": {
                                "url": "data:image/png;base64,iVBORw0KGgo=",
                                "detail": "low",
                            },
                        },
                    ],
                }
            ],
        },
        "tools": {
            "model": model,
            "messages": [user],
            "tools": [TOOL],
            "tool_choice": "auto",
            "parallel_tool_calls": True,
        },
        "tool-calls": {
            "model": model,
            "messages": [
                user,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"q": "x"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            ],
            "tools": [TOOL],
        },
        "response-format": {
            "model": model,
            "messages": [user],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                    "strict": True,
                },
            },
        },
        "stream": {
            "model": model,
            "messages": [user],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        "metadata": {
            "model": model,
            "messages": [user],
            "metadata": {"note": "fuzz", "team": "a", "nested": {"k": "v"}},
        },
        "routing-hints": {
            "model": model,
            "messages": [user],
            "user": "user-1",
            "metadata": {
                "session_id": "session-1",
                "aura_objective": "balanced",
                "aura_max_cost": "0.5",
            },
        },
    }


def embedding_bodies(model: str) -> dict[str, dict[str, Any]]:
    return {
        "text": {
            "model": model,
            "input": "hello world",
            "encoding_format": "float",
            "dimensions": 8,
            "user": "u",
        },
        "texts": {"model": model, "input": ["alpha beta", "gamma"]},
        # Token input is OpenAI's alone (the other adapters refuse it with a 400).
        "token-arrays": {"model": EMBEDDING_MODELS[0], "input": [[1, 2, 3], [4, 5]]},
        "tokens": {"model": EMBEDDING_MODELS[0], "input": [1, 2, 3]},
    }


def model_rotation(rng: random.Random, names: tuple[str, ...]) -> Callable[[], str]:
    """A deterministic rotation over the models (so every wire format gets cases)."""
    start = rng.randrange(len(names))
    counter = iter(range(10**9))
    return lambda: names[(start + next(counter)) % len(names)]


def chat_case(label: str, body: Any, **kw: Any) -> Case:
    return Case(label=label, body=dumps(body), path=CHAT, **kw)


def embeddings_case(label: str, body: Any, **kw: Any) -> Case:
    return Case(label=label, body=dumps(body), path=EMBEDDINGS, **kw)


def with_model(body: Any, model: str) -> Any:
    """``body`` sent to ``model`` unless the mutation was of the model itself."""
    if not isinstance(body, dict) or body.get("model") not in (*CHAT_MODELS, *EMBEDDING_MODELS):
        return body
    data = body.get("input")
    if isinstance(data, list) and data and not isinstance(data[0], str):
        return body  # token input: OpenAI's only
    return dict(body, model=model)


Template = tuple[str, str, Any, Callable[[], str]]


def templates(rng: random.Random) -> list[Template]:
    """(label, path, valid body, model rotation) for every valid body: each case built from
    a template goes to the rotation's next model, so every wire format gets cases."""
    chat_model, embed_model = (
        model_rotation(rng, CHAT_MODELS),
        model_rotation(rng, EMBEDDING_MODELS),
    )
    out: list[Template] = [
        (name, CHAT, body, chat_model) for name, body in chat_bodies(CHAT_MODELS[0]).items()
    ]
    out += [
        (f"embeddings {name}", EMBEDDINGS, body, embed_model)
        for name, body in embedding_bodies(EMBEDDING_MODELS[0]).items()
    ]
    return out


def from_template(template: Template, label: str, body: Any, **kw: Any) -> Case:
    name, path, _, model = template
    return Case(f"{name}: {label}", dumps(with_model(body, model())), path=path, **kw)


def valid_bodies() -> list[Case]:
    """Every valid body on every model it may go to: all must be answered 200."""
    cases = []
    for model in CHAT_MODELS:
        cases += [chat_case(f"{name} ({model})", body) for name, body in chat_bodies(model).items()]
    for model in EMBEDDING_MODELS:
        cases += [
            embeddings_case(f"embeddings {name} ({body['model']})", body)
            for name, body in embedding_bodies(model).items()
        ]
    return cases
