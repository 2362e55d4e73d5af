"""/v1 fuzz families about the body as a whole and the HTTP around it: not a JSON object,
content types and encodings, sizes, methods and paths, and failing upstreams."""

from __future__ import annotations

import gzip
import json
import random

from tests.fuzz.cases import OMIT, Case
from tests.fuzz.gateway_bodies import (
    CHAT,
    CHAT_MODELS,
    EMBEDDING_MODELS,
    EMBEDDINGS,
    TOOL,
    chat_bodies,
    chat_case,
    embedding_bodies,
    embeddings_case,
    model_rotation,
    templates,
    with_model,
)
from tests.fuzz.jsonbytes import dumps


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
    for name, path, body, model in templates(rng):
        data = dumps(with_model(body, model()))
        for cut in sorted(rng.sample(range(1, len(data)), 3)):
            label = f"{name} cut at byte {cut} of {len(data)}"
            cases.append(Case(label, data[:cut], path=path, want_status=400))
    return cases


def content_types(rng: random.Random) -> list[Case]:
    """Valid JSON under odd content types and encodings; non-JSON bodies with a JSON type."""
    model = model_rotation(rng, CHAT_MODELS)
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
    model = model_rotation(rng, CHAT_MODELS)
    hi = [{"role": "user", "content": "hi"}]
    filler = "word " * ((MAX_BODY // 5) + 10)
    return [
        chat_case(
            "body over 16 MiB",
            {"model": model(), "messages": [{"role": "user", "content": filler}]},
            want_status=413,
        ),
        embeddings_case(
            "embeddings body over 16 MiB", {"model": "embed-ok", "input": filler}, want_status=413
        ),
        chat_case(
            "3 MB prompt",
            {"model": model(), "messages": [{"role": "user", "content": "word " * 600_000}]},
        ),
        chat_case("10,001 messages", {"model": model(), "messages": hi * 10_001}),
        chat_case("9,999 messages", {"model": model(), "messages": hi * 9_999}),
        chat_case("2,000 tools", {"model": model(), "messages": hi, "tools": [TOOL] * 2_000}),
        chat_case("1 MB model name", {"model": "m" * 1_000_000, "messages": hi}),
        chat_case(
            "1 MB tool name",
            {
                "model": model(),
                "messages": hi,
                "tools": [{"type": "function", "function": {"name": "t" * 1_000_000}}],
            },
        ),
        chat_case("1 MB stop", {"model": model(), "messages": hi, "stop": ["s" * 1_000_000]}),
        chat_case(
            "5 stop sequences",
            {"model": model(), "messages": hi, "stop": ["a", "b", "c", "d", "e"]},
        ),
        chat_case(
            "200,000 content parts",
            {
                "model": model(),
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "a"}] * 200_000}
                ],
            },
        ),
        embeddings_case(
            "embeddings: 20,000 inputs", {"model": "embed-ok", "input": ["a"] * 20_000}
        ),
        embeddings_case(
            "embeddings: 100,000 tokens", {"model": "embed-ok", "input": list(range(100_000))}
        ),
        chat_case(
            "1 MB session id header",
            {"model": model(), "messages": hi},
            headers={"x-aura-session-id": "s" * 8000},
        ),
    ]


def odd_methods_and_paths(rng: random.Random) -> list[Case]:
    model = model_rotation(rng, CHAT_MODELS)
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
    model, embed = model_rotation(rng, CHAT_MODELS), model_rotation(rng, EMBEDDING_MODELS)
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
