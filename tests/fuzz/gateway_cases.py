"""The fuzz families for /v1: valid chat-completions and embeddings bodies (gateway_bodies),
mutated one node at a time; wrong types, routing hints, auth headers and odd values.

Each family is a function ``(rng) -> list[Case]``; FAMILIES lists them all, including the
body-level and transport-level ones of gateway_transport_cases.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from typing import Any

from tests.fuzz.cases import OMIT, Case
from tests.fuzz.gateway_bodies import (
    CHAT,
    CHAT_MODELS,
    EMBEDDING_MODELS,
    EMBEDDINGS,
    chat_bodies,
    chat_case,
    embedding_bodies,
    embeddings_case,
    from_template,
    model_rotation,
    templates,
    with_model,
)
from tests.fuzz.gateway_transport_cases import (
    content_types,
    not_a_json_object,
    odd_methods_and_paths,
    oversized_bodies,
    upstream_failures,
)
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


def _wrong_type_cases(
    rng: random.Random,
    bodies: list[tuple[str, Any]],
    make: Callable[..., Case],
    models: tuple[str, ...],
    wanted: Callable[[str], bool] = lambda where: True,
) -> list[Case]:
    model = model_rotation(rng, models)
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
                mutated = with_model(replaced(body, path, w), model())
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
        return _wrong_type_cases(rng, [(area, body)], chat_case, CHAT_MODELS, AREAS[area])

    return family


def wrong_types_embeddings(rng: random.Random) -> list[Case]:
    bodies = [(f"embeddings {k}", v) for k, v in embedding_bodies(EMBEDDING_MODELS[0]).items()]
    return _wrong_type_cases(rng, bodies, embeddings_case, EMBEDDING_MODELS)


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
    model = model_rotation(rng, CHAT_MODELS)
    cases = []
    for header in HINT_HEADERS:
        for value in HINT_GARBAGE:
            raw = value.encode("utf-8") if isinstance(value, str) else value
            body = with_model(chat_bodies(CHAT_MODELS[0])["messages"], model())
            cases.append(chat_case(f"header {header}: {raw[:40]!r}", body, headers={header: raw}))
    body = chat_bodies(CHAT_MODELS[0])["routing-hints"]
    odd = [v for v in HINT_GARBAGE if isinstance(v, str) and len(v) < 50]
    for path in HINT_PATHS:
        for w in (*WRONG_TYPES, *odd, Raw(b"1e400")):
            mutated = with_model(replaced(body, path, w), model())
            cases.append(chat_case(f"routing-hints: {fmt(path)} = {w!r}", mutated))
    # The header and the body disagree: the header wins, nothing breaks.
    headers = {"x-aura-objective": "minimize_cost"}
    cases.append(
        chat_case("header objective vs metadata", with_model(body, model()), headers=headers)
    )
    return cases


def auth_headers(rng: random.Random) -> list[Case]:
    """Odd Authorization / api-key / x-request-id headers: a 401 (or 200) in OpenAI's shape."""
    model = model_rotation(rng, CHAT_MODELS)
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
        cases.append(chat_case(f"authorization: {v!r:.60}", body, headers={"authorization": v}))
    for v in ("", "aura-", b"\xff", "x" * 3000):
        body = chat_bodies(model())["messages"]
        cases.append(
            chat_case(f"api-key: {v!r:.60}", body, headers={"authorization": OMIT, "api-key": v})
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
        cases.append(chat_case(f"x-request-id: {v!r:.60}", body, headers={"x-request-id": v}))
    return cases


# --------------------------------------------------------------------------- strings


def lone_surrogates(rng: random.Random) -> list[Case]:
    """A lone surrogate (escaped, as JSON allows) in every string, key and extra field."""
    cases = []
    for t in templates(rng):
        body = t[2]
        for p in string_paths(body):
            s = rng.choice(LONE_SURROGATES)
            cases.append(from_template(t, f"{fmt(p)} = {s!r}", replaced(body, p, s)))
        for p in sample(rng, key_paths(body), 3):
            s = rng.choice(LONE_SURROGATES)
            cases.append(from_template(t, f"key {fmt(p)} -> {s!r}", renamed(body, p, s)))
        for key, value in (("extra", "\ud800"), ("x\udfff", 1), ("extra", ["a", {"b": "\udc00"}])):
            cases.append(
                from_template(t, f"extra {key!r}: {value!r}", extended(body, (), key, value))
            )
    return cases


def non_finite_numbers(rng: random.Random) -> list[Case]:
    """NaN / Infinity / -Infinity (not JSON) anywhere: always 400, never forwarded."""
    cases = []
    for t in templates(rng):
        body = t[2]
        spots: list[Path] = number_paths(body) + sample(rng, string_paths(body), 2)
        for p in spots:
            bad = rng.choice(NON_FINITE)
            label = f"{fmt(p)} = {bad.data.decode()}"
            cases.append(from_template(t, label, replaced(body, p, bad), want_status=400))
        for bad in NON_FINITE:
            where = rng.choice(dict_paths(body))
            label = f"extra {fmt((*where, 'x'))} = {bad.data.decode()}"
            cases.append(from_template(t, label, extended(body, where, "x", bad), want_status=400))
    return cases


def huge_numbers(rng: random.Random) -> list[Case]:
    """Numbers beyond a double or a 64-bit int, wherever a number (or anything) may go."""
    cases = []
    for t in templates(rng):
        body = t[2]
        for p in number_paths(body) + sample(rng, string_paths(body), 1):
            for big in sample(rng, HUGE_NUMBERS, 3):
                cases.append(
                    from_template(t, f"{fmt(p)} = {big.data[:24].decode()}", replaced(body, p, big))
                )
        where = rng.choice(dict_paths(body))
        big = rng.choice(HUGE_NUMBERS)
        label = f"extra {fmt((*where, 'x'))} = {big.data[:24].decode()}"
        cases.append(from_template(t, label, extended(body, where, "x", big)))
    return cases


DEPTHS = (50, 300, 600, 900, 980, 1000, 1100, 2000, 5000, 100_000)


def deep_nesting(rng: random.Random) -> list[Case]:
    """Arrays and objects nested from 50 to 100,000 deep, at the places that take any JSON."""
    model, embed = model_rotation(rng, CHAT_MODELS), model_rotation(rng, EMBEDDING_MODELS)
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
    model = model_rotation(rng, CHAT_MODELS)
    hi = [{"role": "user", "content": "hi"}]
    cases = [
        chat_case("empty key", Pairs((("model", model()), ("messages", hi), ("", "x")))),
        chat_case(
            "nested empty keys", Pairs((("model", model()), ("messages", hi), ("", {"": {"": []}})))
        ),
        chat_case(
            "model twice, garbage last",
            Pairs((("model", model()), ("messages", hi), ("model", []))),
        ),
        chat_case(
            "model twice, garbage first",
            Pairs((("model", {}), ("messages", hi), ("model", model()))),
        ),
        chat_case(
            "messages twice", Pairs((("model", model()), ("messages", "x"), ("messages", hi)))
        ),
        chat_case(
            "messages twice, empty last",
            Pairs((("model", model()), ("messages", hi), ("messages", []))),
        ),
        chat_case(
            "role twice, valid last",
            {
                "model": model(),
                "messages": [Pairs((("role", []), ("role", "user"), ("content", "hi")))],
            },
        ),
        chat_case(
            "content twice",
            {
                "model": model(),
                "messages": [Pairs((("role", "user"), ("content", "a"), ("content", 5)))],
            },
        ),
        chat_case(
            "stream twice",
            Pairs((("model", model()), ("messages", hi), ("stream", True), ("stream", "yes"))),
        ),
        chat_case("NUL in a key", {"model": model(), "messages": hi, "a\u0000b": 1}),
        chat_case("NUL in the model", {"model": "fake-ok\u0000", "messages": hi}),
        chat_case(
            "NUL in content",
            {"model": model(), "messages": [{"role": "user", "content": "a\u0000b"}]},
        ),
        chat_case(
            "NUL in metadata",
            {"model": model(), "messages": hi, "metadata": {"k\u0000": "v\u0000"}},
        ),
        chat_case("100 KB key", {"model": model(), "messages": hi, "k" * 100_000: 1}),
        chat_case(
            "10,000 extra keys",
            {"model": model(), "messages": hi, **{f"k{i}": i for i in range(10_000)}},
        ),
        chat_case(
            "__proto__ key", {"model": model(), "messages": hi, "__proto__": {"admin": True}}
        ),
        chat_case("aura key", {"model": model(), "messages": hi, "aura": {"objective": []}}),
        chat_case(
            "odd logit_bias keys",
            {"model": model(), "messages": hi, "logit_bias": {"abc": 1, "-1": 2, "9" * 30: 3}},
        ),
        chat_case(
            "extra message keys",
            {
                "model": model(),
                "messages": [{"role": "user", "content": "hi", "weird": [], "name": {}}],
            },
        ),
        chat_case(
            "metadata with 5,000 keys",
            {"model": model(), "messages": hi, "metadata": {f"k{i}": "v" for i in range(5_000)}},
        ),
        embeddings_case(
            "embeddings: empty key", Pairs((("model", "embed-ok"), ("input", "a"), ("", 1)))
        ),
        embeddings_case(
            "embeddings: input twice", Pairs((("model", "embed-ok"), ("input", "a"), ("input", [])))
        ),
        embeddings_case("embeddings: NUL in input", {"model": "embed-ok", "input": "a\u0000b"}),
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
    for t in templates(rng):
        body = t[2]
        for p in sample(rng, string_paths(body), 3):
            bad = rng.choice(INVALID_UTF8 + CONTROL)
            raw = Raw(b'"x' + bad + b'y"')
            cases.append(
                from_template(
                    t, f"{fmt(p)} with bytes {bad!r}", replaced(body, p, raw), want_status=400
                )
            )
        bad = rng.choice(INVALID_UTF8)
        key = Raw(b'"k' + bad + b'"')
        cases.append(
            from_template(t, f"key with bytes {bad!r}", extended(body, (), key, 1), want_status=400)
        )
    for bad in INVALID_UTF8:
        cases.append(Case(f"whole body is {bad!r}", bad, want_status=400))
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
