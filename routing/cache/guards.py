"""Guards of the semantic cache: refuse a hit when two prompts differ in what flips an answer.

Mean-pooled sentence embeddings score "convert USD to EUR" and "convert EUR to USD" at a
cosine of 0.99, so a similarity threshold alone cannot keep a wrong answer out of a hit.
Each guard here reads both prompts (the stored one and the new one, each the last user
turn) and says whether they differ in one thing that changes the answer:

``number``       the numbers, in order (digits, written numbers, ordinals, "50k", "$1,500")
``unit``         units and currencies, in order ("kg to lb" vs "lb to kg"); durations
                 only right after a number ("3-day trip")
``time``         dates and times: today/tomorrow, weekdays, months, seasons, am/pm,
                 before/after/ago/last/next
``negation``     how many negations (not, no, never, without, none, "gluten-free", ...) and
                 prefix negation of a word the other prompt has ("cooked" vs "uncooked")
``polarity``     opposite poles of one axis: enable/disable, add/remove, install/uninstall,
                 increase/decrease, import/export, pros/cons, safe/toxic, eat/avoid, ...
``comparison``   opposite comparative poles: more/less, cheaper/pricier, faster/slower,
                 newest/oldest, better/worse, ...
``scope``        all/every/entire vs one/single/only, and "except"
``direction``    the same two things on swapped sides of to/into/than/in ("from Madrid to
                 Barcelona" vs "from Barcelona to Madrid"), or the same words reordered
``role``         who is asking ("as a landlord" vs "as a tenant", "I'm the sender")
``entity``       a capitalised name, acronym or quoted literal of one prompt that the other
                 does not mention ("Japan" vs "China", "'happy'")
``technology``   programming languages, databases, frameworks, tools and platforms
``substitution`` the prompts share most of their content words, and each has content
                 words the other lacks ("dolphin" vs "shark"), synonyms aside
``constraint``   one prompt is the other plus a qualifier ("a vegan lasagna recipe")

The rules are English word lists and patterns (``lexicon.py``, read by ``features.py``):
cheap (a few hundred microseconds a prompt, cached by text), explainable (the dry run names
the guard), and on the safe side: a paraphrase that a guard refuses is a miss that costs
one upstream call, a wrong hit is a wrong answer.
They are heuristics, and ``bench/cache_eval.py`` measures what they let through.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from routing.cache import lexicon as lx
from routing.cache.features import (
    LEXICON,
    NEGATION_PREFIXES,
    SYNONYM_GROUPS,
    Features,
    normalise,
    prompt_features,
    stem,
    tokenise,
)

GUARDS: tuple[str, ...] = (
    "number",
    "unit",
    "time",
    "negation",
    "polarity",
    "comparison",
    "scope",
    "direction",
    "role",
    "entity",
    "technology",
    "substitution",
    "constraint",
)


def guard_refusal(stored: str, new: str, *, guards: Iterable[str] | None = None) -> str | None:
    """The name of the first guard that refuses to serve ``stored``'s answer for ``new``,
    or None when no guard objects. ``guards`` limits the check to those names."""
    a, b = prompt_features(stored), prompt_features(new)
    for name in GUARDS if guards is None else guards:
        if _CHECKS[name](a, b):
            return name
    return None


# --- the guards -----------------------------------------------------------------------------


def _number(a: Features, b: Features) -> bool:
    return a.numbers != b.numbers


def _unit(a: Features, b: Features) -> bool:
    return a.units != b.units


def _time(a: Features, b: Features) -> bool:
    return a.times != b.times


def _negation(a: Features, b: Features) -> bool:
    if a.negations != b.negations:
        return True
    # "cooked" vs "uncooked", "safe" vs "unsafe": a word of one is negated in the other.
    for x, y in ((a, b), (b, a)):
        for word in x.negated_stems:
            if stem(word) in y.stems:
                continue
            for prefix in NEGATION_PREFIXES:
                rest = word[len(prefix) :]
                if word.startswith(prefix) and len(rest) >= 3 and stem(rest) in y.stems:
                    return True
    return False


def _axis_conflict(a: Features, b: Features, guard: str) -> bool:
    for key, pa in a.poles.items():
        if key[0] != guard:
            continue
        pb = b.poles[key]
        if pa == pb:
            continue
        if key == ("scope", "except"):
            return True
        if key == ("scope", "all/one") and ("a" in pa) != ("a" in pb):
            return True  # "the kitchen cabinets" vs "my entire home"
        # One takes a pole the other lacks while the other takes the opposite pole.
        if (pa - pb and pb - pa) or (pa and pb and pa != pb):
            return True
    return False


def _polarity(a: Features, b: Features) -> bool:
    return _axis_conflict(a, b, "polarity")


def _comparison(a: Features, b: Features) -> bool:
    return _axis_conflict(a, b, "comparison")


def _scope(a: Features, b: Features) -> bool:
    return _axis_conflict(a, b, "scope")


def _direction(a: Features, b: Features) -> bool:
    for kind, pairs in a.relations.items():
        other = b.relations.get(kind, frozenset())
        for x, y in pairs:
            if (y, x) in other and (x, y) not in other:
                return True
    return False


def _role(a: Features, b: Features) -> bool:
    if a.roles != b.roles:
        return True
    sa, sb = set(a.role_order), set(b.role_order)
    for r1, r2 in lx.ROLE_PAIRS:
        r1, r2 = stem(r1), stem(r2)
        if (r1 in sa and r2 not in sa and r2 in sb and r1 not in sb) or (
            r2 in sa and r1 not in sa and r1 in sb and r2 not in sb
        ):
            return True
    common = [r for r in a.role_order if r in sb]
    return common != [r for r in b.role_order if r in sa]


def _mentions(name: str, other: Features) -> bool:
    words = tokenise(normalise(name))
    joined = " " + " ".join(other.tokens) + " "
    if " " + " ".join(words) + " " in joined or name.replace(" ", "") in joined.replace(" ", ""):
        return True
    if all(w in other.stems or stem(w) in other.stems for w in words):
        return True
    if name in other.tech:
        return True
    canon = {
        c
        for _, _, table, c in LEXICON.scan(tokenise(normalise(name)))
        if table in ("tech", "unit", "time")
    }
    return bool(canon) and canon <= (other.tech | set(other.units) | other.times)


def _entity(a: Features, b: Features) -> bool:
    for x, y in ((a, b), (b, a)):
        if any(not _mentions(e, y) for e in x.entities):
            return True
        other_text = " " + " ".join(y.tokens) + " "
        if any(f" {q} " not in other_text for q in x.quoted if q):
            return True
    return False


def _technology(a: Features, b: Features) -> bool:
    return a.tech != b.tech


def _same(x: str, y: str) -> bool:
    return x == y or bool(SYNONYM_GROUPS.get(x, frozenset()) & SYNONYM_GROUPS.get(y, frozenset()))


def _split_content(a: Features, b: Features) -> tuple[set[str], set[str], set[str]]:
    ca, cb = set(a.content), set(b.content)
    shared = {x for x in ca if any(_same(x, y) for y in cb)}
    only_a = ca - shared
    only_b = {y for y in cb if not any(_same(x, y) for x in ca)}
    return shared, only_a, only_b


def _wording(a: Features, b: Features) -> float:
    """How much of the wording (every word, in order) two prompts share: 0..1."""
    return difflib.SequenceMatcher(None, a.tokens, b.tokens, autojunk=False).ratio()


# A rewording shares less of its wording than a template with one word swapped: on
# hand-written paraphrases, wording >= 0.5 with a content word swapped on each side is rare,
# and it is the shape of "take ibuprofen while pregnant" vs "take acetaminophen ...".
SUBSTITUTION_WORDING = 0.5
CONSTRAINT_WORDING = 0.7


def _substitution(a: Features, b: Features) -> bool:
    shared, only_a, only_b = _split_content(a, b)
    if not (only_a and only_b and shared):
        return False
    if len(shared) < 0.5 * min(len(set(a.content)), len(set(b.content))):
        return False
    return _wording(a, b) >= SUBSTITUTION_WORDING


def _constraint(a: Features, b: Features) -> bool:
    shared, only_a, only_b = _split_content(a, b)
    if bool(only_a) == bool(only_b) or len(shared) < 2:
        return False
    smaller = len(set(a.content)) if only_b else len(set(b.content))
    return len(shared) >= smaller and _wording(a, b) >= CONSTRAINT_WORDING


_CHECKS = {
    "number": _number,
    "unit": _unit,
    "time": _time,
    "negation": _negation,
    "polarity": _polarity,
    "comparison": _comparison,
    "scope": _scope,
    "direction": _direction,
    "role": _role,
    "entity": _entity,
    "technology": _technology,
    "substitution": _substitution,
    "constraint": _constraint,
}
assert set(_CHECKS) == set(GUARDS)
