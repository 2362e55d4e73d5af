"""Prompt task-category and complexity-tier classification, and token estimation.

Everything here runs on the hot path before routing, so it is heuristic, bounded and
download-free (no tokenizer files, no models).

**Token estimation** (``estimate_tokens``) approximates OpenAI's cl100k/o200k BPE counts
from character-class statistics computed with C-speed ``bytes.translate``/``count`` calls
(a few microseconds per KB, no per-character Python loop):

- a run of ASCII letters (a word) costs ``0.6 + 0.09 * letters`` tokens: common words are
  one token whatever their length, rarer long words split (only the average is known, so
  a rare 28-letter word comes out at ~3 instead of 6);
- digits are tokenised in groups of up to three, plus a separate token for a leading space;
- a punctuation run costs one token plus ~1/3 per extra character (``()``, ``",`` merge),
  minus one when it sits between letters (``let's``, ``top-line`` merge with the word);
- newlines cost 0.75 (blank lines merge) plus 0.5 for an indented line (code);
- characters of three UTF-8 bytes (CJK, kana, Hangul, Indic scripts, typographic quotes)
  cost 1 token each, two-byte characters (Cyrillic, Greek, accented Latin) 0.4 each,
  four-byte ones (emoji) about 1.6.

On reference strings with known cl100k counts (OpenAI's cookbook) the error is within
about 10% for English prose and chat transcripts (the cookbook's 129-token conversation
comes out at 127), up to ~50% on single rare words and short identifiers; CJK is over-estimated by up to ~30% for o200k models, which is the safe side
for budget reservations. Callers that need exact counts should use provider-reported usage.

**Classification** (``classify``) scans only the system prompt and the last user message,
each capped at ``SCAN_CHARS`` (head and tail, since instructions often come after a pasted
document), with one precompiled regex per category. Each category scores points for
explicit intent phrases (strong) and structural hints (code fences, equations, LaTeX);
the best score wins, ties going to the earlier category in ``CATEGORIES`` order, and no
hits at all means ``chat``. The tier adds points for prompt size, conversation length,
difficulty markers and inherently hard categories, and removes them for short, simple
requests. Limits: keyword heuristics are English-centric, can be fooled by quoted text,
and do not understand the task; learned per-prompt quality (routing memory) is what
refines routing beyond them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

SCAN_CHARS = 2000
# OpenAI chat format overheads (the "how to count tokens" recipe for current models).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
# Image parts: low detail is a flat 85; high/auto detail depends on the size we do not
# know here, so assume a 1024x1024 image (765 tokens).
IMAGE_TOKENS_LOW = 85
IMAGE_TOKENS_DEFAULT = 765
TOOL_CALL_OVERHEAD = 3


def _class_table(mapping: Mapping[bytes, bytes], default: bytes) -> bytes:
    table = bytearray(default * 256)
    for chars, cls in mapping.items():
        for ch in chars:
            table[ch] = cls[0]
    return bytes(table)


_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DIGITS = b"0123456789"
_WHITESPACE = b" \t\r\x0b\x0c"
# One byte per class: 'a' letter, '0' digit, ' ' blank, '\n' newline, '.' anything else.
_CLASSES = _class_table(
    {_LETTERS: b"a", _DIGITS: b"0", _WHITESPACE: b" ", b"\n": b"\n"}, default=b"."
)
_ONLY_LETTERS = _class_table({_LETTERS: b"a"}, default=b" ")
_ONLY_DIGITS = _class_table({_DIGITS: b"0"}, default=b" ")
_ONLY_PUNCT = _class_table({_LETTERS + _DIGITS + _WHITESPACE + b"\n": b" "}, default=b".")


_WORD_BASE = 0.6
_PER_LETTER = 0.09


def _runs(mapped: bytes, mark: bytes) -> int:
    """Number of maximal runs of ``mark`` in a two-valued byte string."""
    return mapped.count(b" " + mark) + (mapped[:1] == mark)


def estimate_tokens(text: str) -> int:
    """Approximate BPE token count of ``text`` (see the module docstring for the method)."""
    if not text:
        return 0
    extra = 0.0
    if text.isascii():
        raw = text.encode("ascii")
    else:
        raw = text.encode("ascii", "ignore")
        non_ascii = len(text) - len(raw)
        # UTF-8 extra bytes = n2 + 2*n3 + 3*n4; minus the non-ASCII count leaves n3 + 2*n4.
        wide = len(text.encode("utf-8", "surrogatepass")) - len(text) - non_ascii
        narrow = max(0, non_ascii - wide)
        extra = wide * 1.0 + narrow * 0.4
    classes = raw.translate(_CLASSES)
    letters = classes.count(b"a")
    digits = classes.count(b"0")
    punct = classes.count(b".")
    words = _runs(raw.translate(_ONLY_LETTERS), b"a")
    numbers = _runs(raw.translate(_ONLY_DIGITS), b"0")
    punct_runs = _runs(raw.translate(_ONLY_PUNCT), b".")
    total = (
        _WORD_BASE * words
        + _PER_LETTER * letters
        + digits / 3.0
        + 0.67 * numbers
        + classes.count(b" 0")
        + punct_runs
        - classes.count(b"a.a")
        + (punct - punct_runs) / 3.0
        + 0.75 * classes.count(b"\n")
        + 0.5 * classes.count(b"\n ")
        + extra
    )
    return max(1, int(total + 0.5))


def _content_text_and_extra(content: Any) -> tuple[str, int]:
    """Text of a message's content (string or list of parts) and fixed costs of non-text."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return str(content), 0
    texts: list[str] = []
    extra = 0
    for part in content:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "text" or "text" in part:
            texts.append(str(part.get("text") or ""))
        elif kind == "image_url":
            image = part.get("image_url")
            detail = image.get("detail") if isinstance(image, Mapping) else None
            extra += IMAGE_TOKENS_LOW if detail == "low" else IMAGE_TOKENS_DEFAULT
    return "\n".join(texts), extra


def count_message_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Estimated prompt tokens of OpenAI chat ``messages``, with the format's overheads.

    Counts every message's role, content (string or parts; images at a fixed cost), name
    and tool calls (function name + JSON arguments), plus the per-message and reply-priming
    overheads of OpenAI's chat format. Tool *definitions* sent in ``tools`` are not
    messages: add ``estimate_tokens(json.dumps(tools))`` for them.
    """
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE + 1  # the role is one token
        text, extra = _content_text_and_extra(message.get("content"))
        total += extra + (estimate_tokens(text) if text else 0)
        name = message.get("name")
        if name:
            total += TOKENS_PER_NAME + estimate_tokens(str(name))
        calls = message.get("tool_calls") or ()
        legacy = message.get("function_call")
        functions = [c.get("function") for c in calls if isinstance(c, Mapping)]
        if isinstance(legacy, Mapping):
            functions.append(legacy)
        for fn in functions:
            if isinstance(fn, Mapping):
                total += TOOL_CALL_OVERHEAD + estimate_tokens(str(fn.get("name") or ""))
                total += estimate_tokens(str(fn.get("arguments") or ""))
    return total


def _gated(phrases: tuple[str, ...]) -> tuple[tuple[bytes | None, str], ...]:
    # A phrase that starts with a word is only searched for when that word occurs, so most
    # phrase checks cost a set lookup instead of a substring scan of the whole prompt.
    gated = []
    for phrase in phrases:
        head = phrase.split(" ", 1)[0]
        gate = head.encode() if head.isalpha() else None
        gated.append((gate, phrase))
    return tuple(gated)


class _Rule:
    """Signals for one category: strong ones count 3 points each, weak ones 1 (max 3)."""

    __slots__ = ("strong_phrases", "strong_words", "weak_phrases", "weak_words")

    def __init__(
        self,
        strong_words: str,
        strong_phrases: tuple[str, ...] = (),
        weak_words: str = "",
        weak_phrases: tuple[str, ...] = (),
    ) -> None:
        self.strong_words = frozenset(w.encode() for w in strong_words.split())
        self.strong_phrases = _gated(strong_phrases)
        self.weak_words = frozenset(w.encode() for w in weak_words.split())
        self.weak_phrases = _gated(weak_phrases)

    def score(self, words: frozenset[bytes], low: str) -> int:
        strong = len(self.strong_words & words)
        for gate, phrase in self.strong_phrases:
            if (gate is None or gate in words) and phrase in low:
                strong += 1
        weak = len(self.weak_words & words)
        for gate, phrase in self.weak_phrases:
            if (gate is None or gate in words) and phrase in low:
                weak += 1
        return 3 * strong + min(3, weak)


# Matching is on lower-cased whole words (sets, so one word counts once) and substrings
# for phrases: both run in C, unlike large regex alternations, which cost milliseconds
# on a 4 KB prompt.
_RULES = {
    "code": _Rule(
        "traceback segfault nullpointerexception typeerror valueerror stacktrace refactor debug",
        (
            "```",
            "stack trace",
            "syntax error",
            "compiler error",
            "write a function",
            "write code",
            "fix the bug",
            "fix this bug",
            "unit test",
            "this code",
            "the code",
            "a script",
            "sql query",
        ),
        "python javascript typescript java golang rust sql regex bash django react kotlin "
        "swift api function class method compile runtime endpoint bug variable",
        ("c++", "def ", "return ", "import ", "#include", "();", "=>", "){", ") {"),
    ),
    "math": _Rule(
        "solve integrate integral differentiate derivative equation equations matrix "
        "eigenvalue eigenvalues probability theorem lemma polynomial logarithm algebra calculus "
        "geometry factorize factorise",
        ("\\frac", "\\int", "\\sum", "\\sqrt", "x^2", "dy/dx"),
        "calculate compute percent percentage average sum product ratio number numbers",
        ("how many", "how much", " = ", " + ", " * ", " / "),
    ),
    "extraction": _Rule(
        "extract parse",
        (
            "pull out",
            "named entit",
            "as json",
            "in json",
            "json format",
            "json object",
            "list all the",
            "following fields",
        ),
        "json fields field structured schema csv yaml entities key value",
    ),
    "summarization": _Rule(
        "summarize summarise summary summarization summarisation tldr condense recap",
        ("tl;dr", "key points", "key takeaways", "in a nutshell", "gist of", "boil it down"),
        "shorten overview brief bullet",
        ("main ideas", "main points"),
    ),
    "creative": _Rule(
        "poem haiku limerick sonnet lyrics screenplay fable poetry",
        ("short story", "a story", "bedtime story", "fairy tale", "write a song", "a song about"),
        "imagine fiction fictional character plot creative rhyme rhyming metaphor novel",
    ),
    "reasoning": _Rule(
        "prove riddle",
        (
            "step by step",
            "step-by-step",
            "explain why",
            "reason about",
            "reason through",
            "think carefully",
            "think through",
            "logic puzzle",
            "pros and cons",
            "trade-off",
            "tradeoff",
        ),
        "why compare analyze analyse evaluate justify implications deduce infer assumptions "
        "because",
        ("what would happen",),
    ),
}
_DIFFICULTY = _Rule(
    "prove rigorous rigorously formally comprehensive optimize optimise architecture "
    "distributed concurrency concurrent complex advanced research nuanced",
    (
        "step by step",
        "step-by-step",
        "in depth",
        "in-depth",
        "edge case",
        "first principles",
        "design a system",
        "trade-off",
        "tradeoff",
        "detailed analysis",
    ),
)
# Lower-case ASCII letters stay, everything else becomes a word separator.
_WORD_BYTES = bytes(i if 97 <= i <= 122 else 32 for i in range(256))
# An equation such as "3x + 4 = 19" or "12 * 7": a digit, an operator, an operand.
_EQUATION = re.compile(r"\d\s*[-+*/^=\u00d7\u00f7]\s*[\d(a-z]")
_HARD_CATEGORIES = frozenset({"code", "math", "reasoning"})
_EASY_CATEGORIES = frozenset({"chat", "extraction", "summarization"})


def _bounded(text: str) -> str:
    if len(text) <= SCAN_CHARS:
        return text
    half = SCAN_CHARS // 2
    return text[:half] + "\n" + text[-half:]


def _scan_text(messages: Sequence[Mapping[str, Any]]) -> str:
    system = ""
    user = ""
    for message in messages:
        if message.get("role") in ("system", "developer") and not system:
            system = _content_text_and_extra(message.get("content"))[0]
            break
    for message in reversed(messages):
        if message.get("role") == "user":
            user = _content_text_and_extra(message.get("content"))[0]
            break
    if not system:
        return _bounded(user)
    return _bounded(system) + "\n" + _bounded(user)


def classify_text(text: str) -> str:
    """Task category of an already-extracted prompt text."""
    low = text.lower()
    return _best_category(low, _words(low))


def _words(low: str) -> frozenset[bytes]:
    return frozenset(low.encode("ascii", "ignore").translate(_WORD_BYTES).split())


def _best_category(low: str, words: frozenset[bytes]) -> str:
    best, best_score = "chat", 0
    for category, rule in _RULES.items():
        score = rule.score(words, low)
        if category == "math":
            equations = 0
            for _ in _EQUATION.finditer(low):
                equations += 1
                if equations == 2:
                    break
            score += 3 * equations
        if score > best_score:
            best, best_score = category, score
    return best


def classify(
    messages: Sequence[Mapping[str, Any]], prompt_tokens: int | None = None
) -> tuple[str, str]:
    """(task category, complexity tier) of a chat request; see the module docstring.

    ``prompt_tokens`` (the whole prompt, if the caller already counted it) sizes the tier;
    otherwise only the scanned text is estimated.
    """
    text = _scan_text(messages)
    low = text.lower()
    words = _words(low)
    category = _best_category(low, words)
    tokens = prompt_tokens if prompt_tokens is not None else estimate_tokens(text)
    turns = sum(1 for m in messages if m.get("role") == "user")

    points = 0
    if tokens > 4000:
        points += 1
    if turns > 8:
        points += 1
    points += min(2, _DIFFICULTY.score(words, low) // 3)
    if category in _HARD_CATEGORIES:
        points += 1
    elif category in _EASY_CATEGORIES and tokens < 150 and turns <= 3:
        points -= 1
    if points >= 2:
        return category, "premium"
    if points <= -1:
        return category, "eco"
    return category, "balanced"
