"""What the semantic-cache guards compare, read from one prompt: normalised tokens, numbers,
units, time words, negations, poles of opposite-meaning axes, roles, names, quoted literals,
technologies, who-goes-where relations and content words. One n-gram index of every word
list (``lexicon.py``) is scanned once per prompt; results are cached by text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from routing.cache import lexicon as lx

# --- normalisation --------------------------------------------------------------------------

_QUOTES = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00b4": "'", "`": "'"}
)
_CONTRACTIONS = (
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\b(\w+)n't\b"), r"\1 not"),
    (
        re.compile(r"\b(do|does|did|is|are|was|were|should|would|could|has|have|had)nt\b"),
        r"\1 not",
    ),
    (re.compile(r"\bw/o\b"), "without"),
    (re.compile(r"\bw/(?=\s)"), "with"),
    (re.compile(r"&"), " and "),
)
_RETIREMENT_PLAN = re.compile(r"\b(401|403|457)\s*\(?([kb])\)?")
_THOUSANDS = re.compile(r"\b(\d+(?:\.\d+)?)k\b")
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[a-z])|(?<=[a-z])(?=\d)")
_TOKEN = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?|[a-z]+(?:'[a-z]+)?|[$€£¥₹%°]")


def normalise(text: str) -> str:
    """Lower-case text with quotes unified, contractions expanded, numbers split from
    words ("3-day" -> "3 day", "python3" -> "python 3") and hyphens made spaces."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    text = _RETIREMENT_PLAN.sub(r" plan\1\2 ", text)
    text = _THOUSANDS.sub(lambda m: f"{float(m.group(1)) * 1000:g}", text)
    keep_slash = re.sub(r"(?<=\w)[-–—](?=\w)", " ", text)  # noqa: RUF001
    return _DIGIT_LETTER.sub(" ", keep_slash)


# Spellings with symbols become one word before tokenising ("c++" -> "cpp", "km/h" -> "kmh").
_SYMBOLIC = {
    "asp.net": "dotnet", ".net": "dotnet", "c++": "cpp", "c#": "csharp", "f#": "fsharp",
    "node.js": "nodejs", "next.js": "nextjs", "vue.js": "vuejs", "react.js": "reactjs",
    "pl/sql": "plsql", "km/h": "kmh", "mi/h": "mph", "m/s": "mps", "ft/s": "ftps",
    "°c": "celsius", "°f": "fahrenheit", "a.m.": "am", "p.m.": "pm", "µg": "ug", "μg": "ug",
    "₹": "inr",
}  # fmt: skip
_SYMBOLIC_RE = re.compile("|".join(re.escape(k) for k in sorted(_SYMBOLIC, key=len, reverse=True)))


def tokenise(norm: str) -> tuple[str, ...]:
    """Words, numbers and currency/percent signs of normalised text, in order."""
    return tuple(_TOKEN.findall(_SYMBOLIC_RE.sub(lambda m: f" {_SYMBOLIC[m.group(0)]} ", norm)))


Span = tuple[int, int, str, str]  # first token, end token, table, canonical value


class _Lexicon:
    """Every word list as one index of token tuples, scanned once per prompt (n-gram dict
    lookups: tens of microseconds where one regex per list cost milliseconds)."""

    def __init__(self, tables: dict[str, dict[str, tuple[str, ...]]]) -> None:
        self.index: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for table, entries in tables.items():
            for canon, spellings in entries.items():
                for spelling in spellings:
                    key = tokenise(normalise(spelling))
                    if key:
                        self.index.setdefault(key, []).append((table, canon))
        self.longest = max(len(k) for k in self.index)

    def scan(self, tokens: tuple[str, ...]) -> list[Span]:
        """Longest match first, per table; a table's matches do not overlap."""
        found: list[Span] = []
        taken: dict[str, int] = {}
        for i in range(len(tokens)):
            for n in range(min(self.longest, len(tokens) - i), 0, -1):
                for table, canon in self.index.get(tokens[i : i + n], ()):
                    if taken.get(table, 0) <= i:
                        found.append((i, i + n, table, canon))
                        taken[table] = i + n
        return found


def _axis_table(key: tuple[str, str]) -> str:
    return f"{key[0]}:{key[1]}"


_FREQUENCY_UNITS = "day night time week month year morning afternoon evening hour minute weekend"
_NOT_SCOPE_PHRASES = (
    *(f"every {w}" for w in _FREQUENCY_UNITS.split()),
    "every single day",
    "all over",
    "all the time",
    "all along",
    "at all",
    "just now",
)
LEXICON = _Lexicon(
    {
        "unit": lx.UNITS,
        "duration": lx.DURATIONS,
        "time": lx.TIME_WORDS,
        "tech": lx.TECH,
        "notscope": {"x": _NOT_SCOPE_PHRASES},
        **{
            _axis_table(key): {"a": poles[0], "b": poles[1]} if poles[1] else {"a": poles[0]}
            for key, poles in lx.AXES.items()
        },
    }
)


def stem(word: str) -> str:
    """A light suffix strip, enough to equate "inches"/"inch" and "declining"/"decline"."""
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"),
                         ("shes", "sh"), ("ing", ""), ("ed", ""), ("es", "e"), ("s", "")):  # fmt: skip
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                break
            word = word[: len(word) - len(suffix)] + repl
            break
    if len(word) > 4 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # running -> runn -> run
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


SYNONYM_GROUPS: dict[str, frozenset[int]] = {}
for _i, _group in enumerate(lx.SYNONYMS):
    for _w in _group:
        _s = stem(_w)
        SYNONYM_GROUPS[_s] = SYNONYM_GROUPS.get(_s, frozenset()) | {_i}
_FILLER_STEMS = frozenset(stem(w) for w in lx.FILLERS) | lx.FILLERS
NEGATION_PREFIXES = ("un", "non", "dis", "in", "im", "il", "ir", "anti")
_FUNCTION_WORDS = frozenset(
    "a an the my your our their his her its this that these those some any of is are was "
    "were be am do does did how what which i you we it".split()
)
_CONNECTORS = {"to": "to", "into": "to", "towards": "to", "than": "than", "in": "in"}
_CLAUSE_END = frozenset(",.;:?!")
RELATION_WINDOW = 6  # words each side of a connector, within its clause
_COPULA = re.compile(r"\b(?:is|are|was|were)\s+(?:a|an|the)?\s*([a-z]+)\s+(?:a|an|the)\s+([a-z]+)")


@dataclass(frozen=True, slots=True)
class Features:
    """What the guards compare, read once per prompt (cached by text)."""

    tokens: tuple[str, ...]
    numbers: tuple[str, ...]
    units: tuple[str, ...]
    times: frozenset[str]
    negations: int
    negated_stems: frozenset[str]
    poles: dict[tuple[str, str], frozenset[str]]
    roles: frozenset[str]
    role_order: tuple[str, ...]
    entities: frozenset[str]
    quoted: tuple[str, ...]
    tech: frozenset[str]
    relations: dict[str, frozenset[tuple[str, str]]]
    content: tuple[str, ...]
    stems: frozenset[str] = field(default_factory=frozenset)


@lru_cache(maxsize=4096)
def prompt_features(text: str) -> Features:
    norm = normalise(text)
    tokens = tokenise(norm)
    spans = LEXICON.scan(tokens)
    units, unit_spans = _units(tokens, spans)
    times = frozenset(
        c
        for i, _, table, c in spans
        if table == "time" and (c not in ("am", "pm") or _after_number(tokens, i))
    ) | _months_cased(text)
    tech = frozenset(c for _, _, table, c in spans if table == "tech") | _tech_cased(text)
    special = {canon for canon in (*units, *times, *tech)}
    special_words = {
        tokens[j]
        for i, e, table, _ in (*unit_spans, *spans)
        if table in ("unit", "duration", "time", "tech")
        for j in range(i, e)
    }
    negations = sum(1 for t in tokens if t in lx.NEGATIONS) + len(
        re.findall(r"\b[a-z]+[- ]free\b", unicodedata.normalize("NFKC", text).lower())
    )
    stems = [stem(t) for t in tokens]
    entities = _entities(text)
    content = tuple(
        s
        for t, s in zip(tokens, stems, strict=True)
        if t not in lx.FILLERS
        and s not in _FILLER_STEMS
        and t not in special_words
        and t not in special
        and not t[0].isdigit()
        and t not in lx.NUMBER_WORDS
        and t not in lx.ORDINALS
        and t not in lx.NEGATIONS
        and t.isalpha()
        and len(t) > 1
    )
    return Features(
        tokens=tokens,
        numbers=_numbers(tokens),
        units=units,
        times=times,
        negations=negations,
        negated_stems=frozenset(t for t in tokens if t.startswith(NEGATION_PREFIXES)),
        poles=_poles(spans),
        roles=_roles(norm),
        role_order=_role_order(stems),
        entities=entities,
        quoted=_quoted(text),
        tech=tech,
        relations=_relations(norm, entities | tech),
        content=content,
        stems=frozenset(stems),
    )


# --- feature extraction ---------------------------------------------------------------------


def _numbers(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Numeric values in order: digits, written numbers ("twenty five"), ordinals, "a dozen"."""
    out: list[str] = []
    run: float | None = None  # a written number being composed
    part = 0.0
    prev = ""
    padded = (*tokens, "", "")
    for i, tok in enumerate(padded[:-1]):
        nxt = padded[i + 1]
        word_value = lx.NUMBER_WORDS.get(tok)
        if tok == "one" and (prev in lx.ONE_AS_PRONOUN_AFTER or nxt in ("of", "")):
            word_value = None
        if tok in ("couple", "pair", "half", "quarter", "double", "single") and prev not in (
            "a",
            "one",
            "and",
        ):
            word_value = None
        if word_value is not None:
            part = (part or 0) + word_value
            run = run or 0.0
        elif tok in lx.MULTIPLIERS and run is not None and tok not in ("k", "m", "bn"):
            part = (part or 1) * lx.MULTIPLIERS[tok]
            if lx.MULTIPLIERS[tok] >= 1000:
                run += part
                part = 0.0
        elif tok == "and" and run is not None:
            pass
        else:
            if run is not None:
                out.append(f"{run + part:g}")
                run, part = None, 0.0
            if tok and tok[0].isdigit():
                value = float(tok.replace(",", ""))
                out.append(f"{value:g}" if "." not in tok else tok.replace(",", ""))
            elif tok in lx.ORDINALS:
                out.append(f"{lx.ORDINALS[tok]:g}")
            elif tok in lx.MULTIPLIERS and out and prev and prev[0].isdigit():
                out[-1] = f"{float(out[-1]) * lx.MULTIPLIERS[tok]:g}"
        prev = tok
    return tuple(out)


def _after_number(tokens: tuple[str, ...], i: int) -> bool:
    prev = tokens[i - 1] if i > 0 else ""
    return prev[:1].isdigit() or (prev in lx.NUMBER_WORDS and prev != "single")


def _units(tokens: tuple[str, ...], spans: list[Span]) -> tuple[tuple[str, ...], list[Span]]:
    found = [sp for sp in spans if sp[2] == "unit"]
    # Durations count right after a number only ("3 day trip", not "how many days").
    found += [sp for sp in spans if sp[2] == "duration" and _after_number(tokens, sp[0])]
    # "400 c" / "400 f": a temperature after a number.
    covered = {j for i, e, _, _ in found for j in range(i, e)}
    found += [
        (i, i + 1, "unit", "celsius" if tok == "c" else "fahrenheit")
        for i, tok in enumerate(tokens)
        if tok in ("c", "f") and i not in covered and i > 0 and tokens[i - 1][:1].isdigit()
    ]
    found.sort()
    seq: list[str] = []
    for _, _, _, canon in found:
        if not seq or seq[-1] != canon:
            seq.append(canon)
    return tuple(seq), found


_MONTH_CASED = re.compile(r"(?<![A-Za-z])(May|Mar)(?![A-Za-z])")


def _months_cased(text: str) -> frozenset[str]:
    found = set()
    for m in _MONTH_CASED.finditer(text):
        if not _sentence_initial(text, m.start()):
            found.add("may" if m.group(1) == "May" else "march")
    return frozenset(found)


def _sentence_initial(text: str, pos: int) -> bool:
    before = text[:pos].rstrip(" \t\"'(")
    return not before or before[-1] in ".?!:\n"


_CASED_TECH = re.compile(
    r"(?<![A-Za-z0-9.])(" + "|".join(re.escape(k) for k in lx.TECH_CASED) + r")(?![A-Za-z0-9+#°])"
)


def _tech_cased(text: str) -> frozenset[str]:
    found = set()
    for m in _CASED_TECH.finditer(text):
        word = m.group(1)
        if len(word) == 1 and text[m.end() : m.end() + 1] in ("'", "-"):
            continue  # "C-section", "R's"
        if not _sentence_initial(text, m.start()) or len(word) == 1:
            found.add(lx.TECH_CASED[word])
    return frozenset(found)


_CAPITALISED = re.compile(
    r"(?<![\w'°])([A-Z][A-Za-z0-9]*(?:[.'][A-Za-z]+)*(?:[ -][A-Z][A-Za-z0-9]*(?:'s)?)*)"
)
_GENERIC_NAME_WORDS = frozenset(
    "airport inc ltd llc corp co company city station university street pc app".split()
)
_COMMON_CAPS = frozenset({"i", "i'm", "i'd", "i've", "i'll", "ok", "hi", "hello", "hey"})


def _entities(text: str) -> frozenset[str]:
    """Capitalised words not at the start of a sentence, and acronyms anywhere."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    found = set()
    for m in _CAPITALISED.finditer(text):
        words = m.group(1).replace("-", " ").split()
        if _sentence_initial(text, m.start()):
            # "How", "Convert": a sentence's first word is capitalised anyway; an acronym
            # there ("IDP required?") still names something.
            first = words.pop(0)
            if len(first) >= 2 and first.isupper() and first.lower() not in _COMMON_CAPS:
                found.add(first.lower())
        name = " ".join(
            w.lower().removesuffix("'s")
            for w in words
            if w.lower().removesuffix("'s") not in _GENERIC_NAME_WORDS
        )
        if len(name) >= 2 and name not in _COMMON_CAPS:
            found.add(name)
    return frozenset(found)


_QUOTED = re.compile(r"(?:(?<=[\s(:])|^)['\"]([^'\"]{1,80}?)['\"](?=[\s.,?!:;)]|$)")


def _quoted(text: str) -> tuple[str, ...]:
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return tuple(" ".join(_TOKEN.findall(normalise(q))) for q in _QUOTED.findall(text))


def _poles(spans: list[Span]) -> dict[tuple[str, str], frozenset[str]]:
    not_scope = {j for i, e, table, _ in spans if table == "notscope" for j in range(i, e)}
    found: dict[str, set[str]] = {}
    for i, _, table, pole in spans:
        if table.startswith("scope:") and i in not_scope:
            continue
        found.setdefault(table, set()).add(pole)
    return {key: frozenset(found.get(_axis_table(key), ())) for key in lx.AXES}


# "As a landlord, ...", "... as a tenant?", "I'm the sender": who asks. A mid-sentence
# "serves as a repository" is not a role.
_ROLE = re.compile(
    r"(?:(?:^|[,.;:?!]\s*)as|\bi\s*'?m|\bi am)\s+(?:a|an|the)\s+((?:[a-z]+\s+)?[a-z]+?)"
    r"(?=[\s,.?!;:]|$)|\bas\s+(?:a|an|the)\s+((?:[a-z]+\s+)?[a-z]+)(?=\s*[,.?!;:]|\s*$)"
)
_ROLE_WORDS = frozenset(stem(r) for pair in lx.ROLE_PAIRS for r in pair)


def _roles(norm: str) -> frozenset[str]:
    found = set()
    for m in _ROLE.finditer(norm):
        words = [stem(w) for w in (m.group(1) or m.group(2)).split() if w not in _FUNCTION_WORDS]
        role = next((w for w in reversed(words) if w in _ROLE_WORDS), words[-1] if words else "")
        if role:
            found.add(role)
    return frozenset(found)


def _role_order(stems: list[str]) -> tuple[str, ...]:
    seq: list[str] = []
    for s in stems:
        if s in _ROLE_WORDS and s not in seq:
            seq.append(s)
    return tuple(seq)


def _relations(norm: str, names: frozenset[str]) -> dict[str, frozenset[tuple[str, str]]]:
    """Ordered pairs (x, y) with x before and y after a connector (to/into, than, in) in one
    clause, at most three words away: who goes where, what is compared with what."""
    words: list[str] = []
    for m in re.finditer(r"\d+(?:,\d{3})*(?:\.\d+)?|[a-z]+(?:'[a-z]+)?|[,.;:?!]", norm):
        w = m.group(0)
        if w in _FUNCTION_WORDS and w not in _CONNECTORS:
            continue
        words.append(w if w in _CONNECTORS or w in _CLAUSE_END else stem(w))
    out: dict[str, set[tuple[str, str]]] = {}
    for i, w in enumerate(words):
        kind = _CONNECTORS.get(w)
        if kind is None:
            continue
        left = _window(words, range(i - 1, -1, -1))
        right = _window(words, range(i + 1, len(words)))
        out.setdefault(kind, set()).update((x, y) for x in left for y in right if x != y)
    # "is a square a rectangle" vs "is a rectangle a square"
    for m in _COPULA.finditer(norm):
        out.setdefault("is", set()).add((stem(m.group(1)), stem(m.group(2))))
    return {k: frozenset(v) for k, v in out.items()}


def _window(words: list[str], indices: Iterable[int]) -> list[str]:
    got: list[str] = []
    for j in indices:
        w = words[j]
        if w in _CLAUSE_END or len(got) == RELATION_WINDOW:
            break
        if w not in _CONNECTORS:
            got.append(w)
    return got
