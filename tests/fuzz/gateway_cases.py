"""The fuzz families for /v1: valid chat-completions and embeddings bodies, mutated.

Each family is a function ``(rng) -> list[Case]``. Bodies start valid (every field of them
accepted by the gateway and the fakes) so that one mutation is the only thing wrong.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Callable
from typing import Any

from tests.fuzz.cases import OMIT, Case
from tests.fuzz.jsonbytes import Pairs, Raw, dumps, nested
from tests.fuzz.mutations import (
    HUGE_NUMBERS,
    LONE_SURROGATES,
    NON_FINITE,
    WRONG_TYPES,
    Path,
    dict_paths,
    extended,
    fmt,
    key_paths,
    number_paths,
    renamed,
    replaced,
    sample,
    string_paths,
    walk,
    wrong_types_for,
)

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


def _models(rng: random.Random, names: tuple[str, ...]) -> Callable[[], str]:
    """A deterministic rotation over the models (so every wire format gets cases)."""
    start = rng.randrange(len(names))
    counter = iter(range(10**9))
    return lambda: names[(start + next(counter)) % len(names)]


def _chat(label: str, body: Any, **kw: Any) -> Case:
    return Case(label=label, body=dumps(body), path=CHAT, **kw)


def _embed(label: str, body: Any, **kw: Any) -> Case:
    return Case(label=label, body=dumps(body), path=EMBEDDINGS, **kw)


# --------------------------------------------------------------------------- wrong types

# Paths that get every wrong-typed value (the rest get a seeded sample of them).
EVERY_WRONG_TYPE = re.compile(
    r"^(messages|messages\[\d+\]|messages\[\d+\]\.(role|content|tool_calls|tool_call_id)"
    r"|messages\[\d+\]\.content\[\d+\](\.type|\.text|\.image_url)?"
    r"|messages\[\d+\]\.tool_calls\[\d+\](\.function(\.name|\.arguments)?)?"
    r"|tools|tools\[\d+\](\.function(\.name|\.parameters)?)?|tool_choice"
    r"|response_format(\.type|\.json_schema(\.schema)?)?|stream|stream_options(\.include_usage)?"
    r"|metadata|model|input|input\[\d+\])$"
)
SAMPLED_WRONG_TYPES = 3


def _with_model(body: Any, model: str) -> Any:
    """``body`` sent to ``model`` unless the mutation was of the model itself."""
    if not isinstance(body, dict) or body.get("model") not in (*CHAT_MODELS, *EMBEDDING_MODELS):
        return body
    data = body.get("input")
    if isinstance(data, list) and data and not isinstance(data[0], str):
        return body  # token input: OpenAI's only
    return dict(body, model=model)


def _wrong_type_cases(
    rng: random.Random,
    bodies: list[tuple[str, Any]],
    make: Callable[..., Case],
    models: tuple[str, ...],
    wanted: Callable[[str], bool] = lambda where: True,
) -> list[Case]:
    model = _models(rng, models)
    cases = []
    for name, body in bodies:
        for path, value in walk(body):
            where = fmt(path)
            if not wanted(where):
                continue
            wrong = wrong_types_for(value)
            if not EVERY_WRONG_TYPE.match(where):
                wrong = sample(rng, wrong, SAMPLED_WRONG_TYPES)
            for w in wrong:
                mutated = _with_model(replaced(body, path, w), model())
                cases.append(make(f"{name}: {where} = {json.dumps(w)}", mutated))
    return cases


# Which paths of its body each wrong-types family mutates, so that one root cause shows up
# in one family (every body has messages; only the messages family mutates their roles).
AREAS: dict[str, Callable[[str], bool]] = {
    "parameters": lambda w: w.split(".")[0].split("[")[0] != "messages",
    "messages": lambda w: w.startswith("messages"),
    "content-parts": lambda w: bool(re.match(r"messages\[\d+\]\.content\[", w)),
    "tools": lambda w: w.startswith(("tools", "tool_choice", "parallel_tool_calls")),
    "tool-calls": lambda w: (
        bool(re.match(r"messages\[\d+\]\.(tool_calls|tool_call_id)", w))
        or w == "messages[1].content"
    ),
    "response-format": lambda w: w.startswith("response_format"),
    "stream": lambda w: w.startswith("stream"),
    "metadata": lambda w: w.startswith("metadata"),
}


def wrong_types(area: str) -> Callable[[random.Random], list[Case]]:
    """Wrong JSON types at every node of ``area`` in the chat body that exercises it."""

    def family(rng: random.Random) -> list[Case]:
        body = chat_bodies(CHAT_MODELS[0])[area]
        return _wrong_type_cases(rng, [(area, body)], _chat, CHAT_MODELS, AREAS[area])

    return family


def wrong_types_embeddings(rng: random.Random) -> list[Case]:
    bodies = [(f"embeddings {k}", v) for k, v in embedding_bodies(EMBEDDING_MODELS[0]).items()]
    return _wrong_type_cases(rng, bodies, _embed, EMBEDDING_MODELS)


# --------------------------------------------------------------------------- hints

HINT_GARBAGE = (
    "",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "-0",
    "1e309",
    "1e-400",
    "0x10",
    "1_000",
    "[]",
    "{}",
    "null",
    "true",
    "BALANCED",
    "eco\teco",
    "x" * 4000,
    b"\xff\xfe",
    b"caf\xc3\xa9",
    "\u0661",
)
HINT_HEADERS = ("x-aura-objective", "x-aura-max-cost", "x-aura-session-id", "x-aura-tier")


HINT_PATHS: tuple[Path, ...] = (
    ("user",),
    ("metadata", "session_id"),
    ("metadata", "aura_objective"),
    ("metadata", "aura_max_cost"),
)


def routing_hints(rng: random.Random) -> list[Case]:
    """x-aura-* headers with garbage, and the same hints (metadata.aura_*, session_id, user)
    in the body with wrong types and odd strings."""
    model = _models(rng, CHAT_MODELS)
    cases = []
    for header in HINT_HEADERS:
        for value in HINT_GARBAGE:
            raw = value.encode("utf-8") if isinstance(value, str) else value
            body = _with_model(chat_bodies(CHAT_MODELS[0])["messages"], model())
            cases.append(_chat(f"header {header}: {raw[:40]!r}", body, headers={header: raw}))
    body = chat_bodies(CHAT_MODELS[0])["routing-hints"]
    odd = [v for v in HINT_GARBAGE if isinstance(v, str) and len(v) < 50]
    for path in HINT_PATHS:
        for w in (*WRONG_TYPES, *odd, Raw(b"1e400")):
            mutated = _with_model(replaced(body, path, w), model())
            cases.append(_chat(f"routing-hints: {fmt(path)} = {w!r}", mutated))
    # The header and the body disagree: the header wins, nothing breaks.
    headers = {"x-aura-objective": "minimize_cost"}
    cases.append(_chat("header objective vs metadata", _with_model(body, model()), headers=headers))
    return cases


def auth_headers(rng: random.Random) -> list[Case]:
    """Odd Authorization / api-key / x-request-id headers: a 401 (or 200) in OpenAI's shape."""
    model = _models(rng, CHAT_MODELS)
    values: list[Any] = [
        OMIT,
        "",
        "Bearer",
        "Bearer\t\tx",
        "Basic dXNlcjpwYXNz",
        "Bearer " + "x" * 6000,
        "Bearer aura-",
        "Bearer aura-.",
        "Bearer aura-abc.def",
        b"Bearer \xff\xfe",
        b"Bearer aura-\xc3\xa9.x",
        "Bearer aura-" + "a" * 200 + "." + "b" * 200,
        "Token abc",
    ]
    cases = []
    for v in values:
        body = chat_bodies(model())["messages"]
        cases.append(_chat(f"authorization: {v!r:.60}", body, headers={"authorization": v}))
    for v in ("", "aura-", b"\xff", "x" * 3000):
        body = chat_bodies(model())["messages"]
        cases.append(
            _chat(f"api-key: {v!r:.60}", body, headers={"authorization": OMIT, "api-key": v})
        )
    for v in (
        "",
        "short",
        "../../etc/passwd",
        "a" * 2000,
        b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8",
        "req_" + "0" * 60,
    ):
        body = chat_bodies(model())["messages"]
        cases.append(_chat(f"x-request-id: {v!r:.60}", body, headers={"x-request-id": v}))
    return cases


# --------------------------------------------------------------------------- strings


Template = tuple[str, str, Any, Callable[[], str]]


def _templates(rng: random.Random) -> list[Template]:
    """(label, path, valid body, model rotation) for every valid body: each case built from
    a template goes to the rotation's next model, so every wire format gets cases."""
    chat_model, embed_model = _models(rng, CHAT_MODELS), _models(rng, EMBEDDING_MODELS)
    out: list[Template] = [
        (name, CHAT, body, chat_model) for name, body in chat_bodies(CHAT_MODELS[0]).items()
    ]
    out += [
        (f"embeddings {name}", EMBEDDINGS, body, embed_model)
        for name, body in embedding_bodies(EMBEDDING_MODELS[0]).items()
    ]
    return out


def _from(template: Template, label: str, body: Any, **kw: Any) -> Case:
    name, path, _, model = template
    return Case(f"{name}: {label}", dumps(_with_model(body, model())), path=path, **kw)


def lone_surrogates(rng: random.Random) -> list[Case]:
    """A lone surrogate (escaped, as JSON allows) in every string, key and extra field."""
    cases = []
    for t in _templates(rng):
        body = t[2]
        for p in string_paths(body):
            s = rng.choice(LONE_SURROGATES)
            cases.append(_from(t, f"{fmt(p)} = {s!r}", replaced(body, p, s)))
        for p in sample(rng, key_paths(body), 3):
            s = rng.choice(LONE_SURROGATES)
            cases.append(_from(t, f"key {fmt(p)} -> {s!r}", renamed(body, p, s)))
        for key, value in (("extra", "\ud800"), ("x\udfff", 1), ("extra", ["a", {"b": "\udc00"}])):
            cases.append(_from(t, f"extra {key!r}: {value!r}", extended(body, (), key, value)))
    return cases


def non_finite_numbers(rng: random.Random) -> list[Case]:
    """NaN / Infinity / -Infinity (not JSON) anywhere: always 400, never forwarded."""
    cases = []
    for t in _templates(rng):
        body = t[2]
        spots: list[Path] = number_paths(body) + sample(rng, string_paths(body), 2)
        for p in spots:
            bad = rng.choice(NON_FINITE)
            label = f"{fmt(p)} = {bad.data.decode()}"
            cases.append(_from(t, label, replaced(body, p, bad), want_status=400))
        for bad in NON_FINITE:
            where = rng.choice(dict_paths(body))
            label = f"extra {fmt((*where, 'x'))} = {bad.data.decode()}"
            cases.append(_from(t, label, extended(body, where, "x", bad), want_status=400))
    return cases


def huge_numbers(rng: random.Random) -> list[Case]:
    """Numbers beyond a double or a 64-bit int, wherever a number (or anything) may go."""
    cases = []
    for t in _templates(rng):
        body = t[2]
        for p in number_paths(body) + sample(rng, string_paths(body), 1):
            for big in sample(rng, HUGE_NUMBERS, 3):
                cases.append(
                    _from(t, f"{fmt(p)} = {big.data[:24].decode()}", replaced(body, p, big))
                )
        where = rng.choice(dict_paths(body))
        big = rng.choice(HUGE_NUMBERS)
        label = f"extra {fmt((*where, 'x'))} = {big.data[:24].decode()}"
        cases.append(_from(t, label, extended(body, where, "x", big)))
    return cases


DEPTHS = (50, 300, 600, 900, 980, 1000, 1100, 2000, 5000, 100_000)


def deep_nesting(rng: random.Random) -> list[Case]:
    """Arrays and objects nested from 50 to 100,000 deep, at the places that take any JSON."""
    model, embed = _models(rng, CHAT_MODELS), _models(rng, EMBEDDING_MODELS)
    spots: list[tuple[str, str, Callable[[], Any], Path, str]] = [
        ("extra field", CHAT, lambda: chat_bodies(model())["messages"], ("x",), "array"),
        (
            "metadata value",
            CHAT,
            lambda: chat_bodies(model())["metadata"],
            ("metadata", "nested"),
            "object",
        ),
        (
            "content",
            CHAT,
            lambda: chat_bodies(model())["messages"],
            ("messages", 1, "content"),
            "array",
        ),
        (
            "tool parameters",
            CHAT,
            lambda: chat_bodies(model())["tools"],
            ("tools", 0, "function", "parameters"),
            "object",
        ),
        (
            "json schema",
            CHAT,
            lambda: chat_bodies(model())["response-format"],
            ("response_format", "json_schema", "schema"),
            "object",
        ),
        ("logit_bias", CHAT, lambda: chat_bodies(model())["parameters"], ("logit_bias",), "object"),
        ("tool_choice", CHAT, lambda: chat_bodies(model())["tools"], ("tool_choice",), "object"),
        (
            "embeddings input",
            EMBEDDINGS,
            lambda: embedding_bodies(embed())["token-arrays"],
            ("input",),
            "array",
        ),
        (
            "embeddings extra",
            EMBEDDINGS,
            lambda: embedding_bodies(embed())["text"],
            ("x",),
            "object",
        ),
    ]
    cases = []
    for depth in DEPTHS:
        cases.append(
            Case(
                f"whole body {depth} deep",
                nested(depth).data,
                path=rng.choice((CHAT, EMBEDDINGS)),
                want_status=400,
            )
        )
        for name, path, make, where, kind in spots:
            body = make()
            if where[-1] not in body and len(where) == 1:
                body = extended(body, (), where[0], None)
            value = nested(
                depth, kind=kind, leaf=b'{"type":"object"}' if kind == "object" else b"1"
            )
            cases.append(
                Case(
                    f"{name} {fmt(where)} {kind}s {depth} deep",
                    dumps(replaced(body, where, value)),
                    path=path,
                )
            )
    return cases


def odd_keys(rng: random.Random) -> list[Case]:
    """Empty, duplicate, NUL-carrying, very long and very many keys."""
    model = _models(rng, CHAT_MODELS)
    hi = [{"role": "user", "content": "hi"}]
    cases = [
        _chat("empty key", Pairs((("model", model()), ("messages", hi), ("", "x")))),
        _chat(
            "nested empty keys", Pairs((("model", model()), ("messages", hi), ("", {"": {"": []}})))
        ),
        _chat(
            "model twice, garbage last",
            Pairs((("model", model()), ("messages", hi), ("model", []))),
        ),
        _chat(
            "model twice, garbage first",
            Pairs((("model", {}), ("messages", hi), ("model", model()))),
        ),
        _chat("messages twice", Pairs((("model", model()), ("messages", "x"), ("messages", hi)))),
        _chat(
            "messages twice, empty last",
            Pairs((("model", model()), ("messages", hi), ("messages", []))),
        ),
        _chat(
            "role twice, valid last",
            {
                "model": model(),
                "messages": [Pairs((("role", []), ("role", "user"), ("content", "hi")))],
            },
        ),
        _chat(
            "content twice",
            {
                "model": model(),
                "messages": [Pairs((("role", "user"), ("content", "a"), ("content", 5)))],
            },
        ),
        _chat(
            "stream twice",
            Pairs((("model", model()), ("messages", hi), ("stream", True), ("stream", "yes"))),
        ),
        _chat("NUL in a key", {"model": model(), "messages": hi, "a\u0000b": 1}),
        _chat("NUL in the model", {"model": "fake-ok\u0000", "messages": hi}),
        _chat(
            "NUL in content",
            {"model": model(), "messages": [{"role": "user", "content": "a\u0000b"}]},
        ),
        _chat(
            "NUL in metadata",
            {"model": model(), "messages": hi, "metadata": {"k\u0000": "v\u0000"}},
        ),
        _chat("100 KB key", {"model": model(), "messages": hi, "k" * 100_000: 1}),
        _chat(
            "10,000 extra keys",
            {"model": model(), "messages": hi, **{f"k{i}": i for i in range(10_000)}},
        ),
        _chat("__proto__ key", {"model": model(), "messages": hi, "__proto__": {"admin": True}}),
        _chat("aura key", {"model": model(), "messages": hi, "aura": {"objective": []}}),
        _chat(
            "odd logit_bias keys",
            {"model": model(), "messages": hi, "logit_bias": {"abc": 1, "-1": 2, "9" * 30: 3}},
        ),
        _chat(
            "extra message keys",
            {
                "model": model(),
                "messages": [{"role": "user", "content": "hi", "weird": [], "name": {}}],
            },
        ),
        _chat(
            "metadata with 5,000 keys",
            {"model": model(), "messages": hi, "metadata": {f"k{i}": "v" for i in range(5_000)}},
        ),
        _embed("embeddings: empty key", Pairs((("model", "embed-ok"), ("input", "a"), ("", 1)))),
        _embed(
            "embeddings: input twice", Pairs((("model", "embed-ok"), ("input", "a"), ("input", [])))
        ),
        _embed("embeddings: NUL in input", {"model": "embed-ok", "input": "a\u0000b"}),
    ]
    return cases


# Inserted into a string's bytes: none of these is valid UTF-8.
INVALID_UTF8 = (
    b"\xff",
    b"\xfe\xff",
    b"\x80",
    b"\xc3",
    b"\xc0\xaf",
    b"\xe0\x80\xaf",
    b"\xed\xa0\x80",  # a UTF-8-encoded surrogate (CESU-8)
    b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xf8\x88\x80\x80\x80",
)
# Raw control characters: not allowed unescaped inside a JSON string.
CONTROL = (b"\x00", b"\x01", b"\x1f", b"\n", b"\t")


def invalid_utf8(rng: random.Random) -> list[Case]:
    """Bytes that are not UTF-8 (or raw control characters) inside strings and keys: 400."""
    cases = []
    for t in _templates(rng):
        body = t[2]
        for p in sample(rng, string_paths(body), 3):
            bad = rng.choice(INVALID_UTF8 + CONTROL)
            raw = Raw(b'"x' + bad + b'y"')
            cases.append(
                _from(t, f"{fmt(p)} with bytes {bad!r}", replaced(body, p, raw), want_status=400)
            )
        bad = rng.choice(INVALID_UTF8)
        key = Raw(b'"k' + bad + b'"')
        cases.append(
            _from(t, f"key with bytes {bad!r}", extended(body, (), key, 1), want_status=400)
        )
    for bad in INVALID_UTF8:
        cases.append(Case(f"whole body is {bad!r}", bad, want_status=400))
    return cases


def not_a_json_object(rng: random.Random) -> list[Case]:
    """Top levels that are not an object, syntax errors and bodies cut short: 400."""
    valid = dumps(chat_bodies(rng.choice(CHAT_MODELS))["parameters"])
    raws = [
        b"",
        b" ",
        b"\r\n",
        b"null",
        b"true",
        b"0",
        b"-1",
        b"1e400",
        b'"hello"',
        b"[]",
        b"[{}]",
        b"[" + valid + b"]",
        b"{}",
        valid + b"x",
        valid + b" " + valid,
        valid + b",",
        b"{,}",
        b"{'model': 'fake-ok'}",
        b'{model: "fake-ok"}',
        valid[:-1] + b",}",
        b"/* comment */" + valid,
        b"\x00" + valid,
        valid + b"\x00",
    ]
    cases = [
        Case(f"body {r[:30]!r}", r, path=rng.choice((CHAT, EMBEDDINGS)), want_status=400)
        for r in raws
    ]
    for name, path, body, model in _templates(rng):
        data = dumps(_with_model(body, model()))
        for cut in sorted(rng.sample(range(1, len(data)), 3)):
            label = f"{name} cut at byte {cut} of {len(data)}"
            cases.append(Case(label, data[:cut], path=path, want_status=400))
    return cases


def content_types(rng: random.Random) -> list[Case]:
    """Valid JSON under odd content types and encodings; non-JSON bodies with a JSON type."""
    model = _models(rng, CHAT_MODELS)
    body = chat_bodies(model())["messages"]
    valid = dumps(body)
    cases = []
    for ctype in (
        OMIT,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "application/json; charset=utf-16",
        "application/json; charset=iso-8859-1",
        "application/json; charset=nonsense",
        b"\xff\xfe",
        "application/" + "j" * 3000,
    ):
        cases.append(Case(f"content-type {ctype!r:.50}", valid, headers={"content-type": ctype}))
    text = json.dumps(body)
    for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"):
        cases.append(Case(f"body encoded as {encoding}", text.encode(encoding)))
    cases += [
        Case(
            "form-encoded body",
            b"model=fake-ok&messages=hi",
            headers={"content-type": "application/x-www-form-urlencoded"},
            want_status=400,
        ),
        Case(
            "multipart body",
            b'--xyz\r\nContent-Disposition: form-data; name="model"\r\n\r\nfake-ok\r\n--xyz--\r\n',
            headers={"content-type": "multipart/form-data; boundary=xyz"},
            want_status=400,
        ),
        Case("gzip body", gzip.compress(valid), headers={"content-encoding": "gzip"}),
        Case("content-encoding gzip, plain body", valid, headers={"content-encoding": "gzip"}),
        Case(
            "embeddings as text/plain",
            dumps(embedding_bodies("embed-ok")["text"]),
            path=EMBEDDINGS,
            headers={"content-type": "text/plain"},
        ),
    ]
    return cases


MAX_BODY = 16 * 1024 * 1024


def oversized_bodies(rng: random.Random) -> list[Case]:
    model = _models(rng, CHAT_MODELS)
    hi = [{"role": "user", "content": "hi"}]
    filler = "word " * ((MAX_BODY // 5) + 10)
    return [
        _chat(
            "body over 16 MiB",
            {"model": model(), "messages": [{"role": "user", "content": filler}]},
            want_status=413,
        ),
        _embed(
            "embeddings body over 16 MiB", {"model": "embed-ok", "input": filler}, want_status=413
        ),
        _chat(
            "3 MB prompt",
            {"model": model(), "messages": [{"role": "user", "content": "word " * 600_000}]},
        ),
        _chat("10,001 messages", {"model": model(), "messages": hi * 10_001}),
        _chat("9,999 messages", {"model": model(), "messages": hi * 9_999}),
        _chat("2,000 tools", {"model": model(), "messages": hi, "tools": [TOOL] * 2_000}),
        _chat("1 MB model name", {"model": "m" * 1_000_000, "messages": hi}),
        _chat(
            "1 MB tool name",
            {
                "model": model(),
                "messages": hi,
                "tools": [{"type": "function", "function": {"name": "t" * 1_000_000}}],
            },
        ),
        _chat("1 MB stop", {"model": model(), "messages": hi, "stop": ["s" * 1_000_000]}),
        _chat(
            "5 stop sequences",
            {"model": model(), "messages": hi, "stop": ["a", "b", "c", "d", "e"]},
        ),
        _chat(
            "200,000 content parts",
            {
                "model": model(),
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "a"}] * 200_000}
                ],
            },
        ),
        _embed("embeddings: 20,000 inputs", {"model": "embed-ok", "input": ["a"] * 20_000}),
        _embed("embeddings: 100,000 tokens", {"model": "embed-ok", "input": list(range(100_000))}),
        _chat(
            "1 MB session id header",
            {"model": model(), "messages": hi},
            headers={"x-aura-session-id": "s" * 8000},
        ),
    ]


def odd_methods_and_paths(rng: random.Random) -> list[Case]:
    model = _models(rng, CHAT_MODELS)
    valid = dumps(chat_bodies(model())["messages"])
    cases = []
    for method in ("GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "PROPFIND"):
        for path in (CHAT, EMBEDDINGS, "/v1/models", "/v1/models/fake-ok"):
            cases.append(
                Case(
                    f"{method} {path}",
                    valid if method not in ("GET", "HEAD", "TRACE") else None,
                    method=method,
                    path=path,
                )
            )
    for path in (
        "/v1",
        "/v1?stream=true",
        "/v1/",
        "/v1//chat/completions",
        "/v1/chat/completions/",
        "/v1/chat//completions",
        "/v1/CHAT/COMPLETIONS",
        "/v1/chat/completions%00",
        "/v1/chat/completions;x=1",
        "/v1/%63hat/completions",
        "/v1/chat/completions?stream=true&model=%ff",
        "/v1/completions",
        "/v1/engines/x/completions",
        "/v1/embeddings/",
        "/v1/" + "a" * 6000,
    ):
        cases.append(Case(f"POST {path[:60]}", valid, path=path))
    for name in (
        "%ff",
        "%00",
        "%c0%af",
        "%ed%a0%80",
        "a/b",
        "..%2f..%2fapi%2fv1%2fkeys",
        "m" * 6000,
        "fake-ok%20",
        "%F0%9F%98%80",
        "auto",
    ):
        cases.append(
            Case(f"GET /v1/models/{name[:40]}", None, method="GET", path=f"/v1/models/{name}")
        )
    return cases


UPSTREAM_FAULTS = (
    "fake-500",
    "fake-503",
    "fake-529",
    "fake-malformed",
    "fake-cut-stream",
    "fake-truncated-stream",
    "fake-stream-error",
    "fake-no-usage",
    "fake-400",
    "fake-401",
    "fake-404",
    "fake-context-length",
)


def upstream_failures(rng: random.Random) -> list[Case]:
    """Valid requests while every upstream fails: 502/503 allowed, the error shape is not."""
    model, embed = _models(rng, CHAT_MODELS), _models(rng, EMBEDDING_MODELS)
    cases = []
    for fault in UPSTREAM_FAULTS:
        for label, path, body in (
            ("chat", CHAT, chat_bodies(model())["parameters"]),
            ("stream", CHAT, chat_bodies(model())["stream"]),
            ("tools", CHAT, chat_bodies(model())["tools"]),
            ("embeddings", EMBEDDINGS, embedding_bodies(embed())["texts"]),
        ):
            cases.append(
                Case(
                    f"{fault}: {label} ({body['model']})",
                    dumps(body),
                    path=path,
                    upstream_fails=True,
                    scenario=fault,
                )
            )
    return cases


def valid_bodies() -> list[Case]:
    """Every valid body on every model it may go to: all must be answered 200."""
    cases = []
    for model in CHAT_MODELS:
        cases += [_chat(f"{name} ({model})", body) for name, body in chat_bodies(model).items()]
    for model in EMBEDDING_MODELS:
        cases += [
            _embed(f"embeddings {name} ({body['model']})", body)
            for name, body in embedding_bodies(model).items()
        ]
    return cases


FAMILIES: dict[str, Callable[[random.Random], list[Case]]] = {
    "wrong-types-parameters": wrong_types("parameters"),
    "wrong-types-messages": wrong_types("messages"),
    "wrong-types-content-parts": wrong_types("content-parts"),
    "wrong-types-tools": wrong_types("tools"),
    "wrong-types-tool-calls": wrong_types("tool-calls"),
    "wrong-types-response-format": wrong_types("response-format"),
    "wrong-types-stream": wrong_types("stream"),
    "wrong-types-metadata": wrong_types("metadata"),
    "wrong-types-embeddings": wrong_types_embeddings,
    "routing-hints": routing_hints,
    "auth-headers": auth_headers,
    "lone-surrogates": lone_surrogates,
    "non-finite-numbers": non_finite_numbers,
    "huge-numbers": huge_numbers,
    "deep-nesting": deep_nesting,
    "odd-keys": odd_keys,
    "invalid-utf8": invalid_utf8,
    "not-a-json-object": not_a_json_object,
    "content-types": content_types,
    "oversized-bodies": oversized_bodies,
    "odd-methods-and-paths": odd_methods_and_paths,
    "upstream-failures": upstream_failures,
}
