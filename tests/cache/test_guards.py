"""Every guard refuses what flips an answer and lets the same question through.

Examples are this file's own (not the eval data). Each guard is checked alone
(``guards=[name]``) so a case fails when that guard breaks, whatever the others do.
"""

from __future__ import annotations

import pytest

from routing.cache.guards import GUARDS, guard_refusal, prompt_features

# (guard, stored prompt, new prompt): the guard must refuse.
REFUSED = [
    ("number", "How many calories are in 3 bananas?", "How many calories are in 4 bananas?"),
    ("number", "Plan a five day trip to Oslo", "Plan a 10 day trip to Oslo"),
    ("number", "Who came fourth in the 1998 race?", "Who came fifth in the 1998 race?"),
    ("number", "What is 3 to the power of 4?", "What is 4 to the power of 3?"),
    ("number", "Budget for a $2k laptop", "Budget for a $20k laptop"),
    ("unit", "How many grams are in a stone?", "How many ounces are in a stone?"),
    ("unit", "Bake the bread at 220°C for how long?", "Bake the bread at 220°F for how long?"),
    ("unit", "Change 30 euros into yen", "Change 30 yen into euros"),
    ("unit", "Is 80 km/h fast for a bike?", "Is 80 mph fast for a bike?"),
    ("time", "What's on TV tonight?", "What's on TV tomorrow?"),
    ("time", "Is the museum open on Sundays?", "Is the museum open on Mondays?"),
    ("time", "Should I stretch before running?", "Should I stretch after running?"),
    ("time", "Where do swallows live in winter?", "Where do swallows live in spring?"),
    ("negation", "Which mushrooms are edible?", "Which mushrooms are not edible?"),
    ("negation", "Can I fly with a pet?", "Can't I fly with a pet?"),
    ("negation", "Suggest a dairy-free cheesecake", "Suggest a cheesecake"),
    ("negation", "Is this berry poisonous when ripe?", "Is this berry poisonous when unripe?"),
    ("polarity", "How do I mute a Slack channel?", "How do I unmute a Slack channel?"),
    ("polarity", "How do I enable spell check?", "How do I turn off spell check?"),
    ("polarity", "How do I encrypt a zip archive?", "How do I decrypt a zip archive?"),
    (
        "polarity",
        "What are the upsides of leasing a car?",
        "What are the drawbacks of leasing a car?",
    ),
    (
        "polarity",
        "How do I import contacts to my phone?",
        "How do I export contacts from my phone?",
    ),
    (
        "comparison",
        "Which is the tallest mountain in Wales?",
        "Which is the shortest mountain in Wales?",
    ),
    ("comparison", "List the cheapest flights to Rome", "List the priciest flights to Rome"),
    ("comparison", "Show the newest comments first", "Show the oldest comments first"),
    ("scope", "How do I refund one item of an order?", "How do I refund the entire order?"),
    ("scope", "Format this table", "Format every table in the document"),
    ("scope", "List the files in this folder", "List the files in this folder except images"),
    ("direction", "Translate this from Italian to Greek", "Translate this from Greek to Italian"),
    ("direction", "Is a wolf heavier than a coyote?", "Is a coyote heavier than a wolf?"),
    ("direction", "How many pints are in a quart?", "How many quarts are in a pint?"),
    ("direction", "Is a cucumber a fruit?", "Is a fruit a cucumber?"),
    (
        "role",
        "As a landlord, can I raise the rent mid-lease?",
        "As a tenant, can I refuse a rent raise mid-lease?",
    ),
    ("role", "I'm the seller. When do I ship the item?", "I'm the buyer. When do I get the item?"),
    (
        "role",
        "Write a thank-you note from a guest to the host",
        "Write a thank-you note from the host to a guest",
    ),
    ("entity", "What's the population of Lyon?", "What's the population of Nice?"),
    ("entity", "Who founded Nvidia?", "Who founded Intel?"),
    ("entity", "What rhymes with 'orange'?", "What rhymes with 'purple'?"),
    ("entity", "Summarise the plot of Hamlet", "Summarise the plot of Macbeth"),
    ("technology", "How do I parse a date in Ruby?", "How do I parse a date in Kotlin?"),
    ("technology", "How do I add an index in MySQL?", "How do I add an index in SQLite?"),
    ("technology", "How do I make a tuple in Python?", "How do I make a tuple in C#?"),
    ("technology", "How do I center text in React?", "How do I center text in Vue?"),
    ("substitution", "How long should I steep green tea?", "How long should I steep black tea?"),
    ("substitution", "Can hamsters eat grapes?", "Can hamsters eat almonds?"),
    ("substitution", "How do I clean a leather sofa?", "How do I clean a velvet sofa?"),
    (
        "constraint",
        "Recommend a thriller novel for my flight",
        "Recommend a short thriller novel for my flight",
    ),
]

# (guard, stored prompt, new prompt): the same question reworded; the guard must let it be.
PASSED = [
    ("number", "Plan a two week trip to Chile", "Plan a 2-week trip to Chile"),
    ("number", "Which one should I pick, tea or coffee?", "Tea or coffee: which should I pick?"),
    ("number", "What is 12% of 50?", "What's twelve percent of 50?"),
    ("unit", "How many kilograms is 10 pounds?", "how many kg is 10 lbs"),
    ("unit", "Boil water at what temperature in Fahrenheit?", "At what °F does water boil?"),
    ("time", "How long to boil an egg?", "How many minutes should an egg boil?"),
    ("time", "Drink how much water a day?", "how much water am i meant to drink daily"),
    (
        "negation",
        "My laptop won't charge, what do I do?",
        "What do I do when my laptop does not charge?",
    ),
    ("negation", "How do I fix a squeaky door?", "Squeaky door: how can I fix it?"),
    ("polarity", "How do I enable dark mode?", "How can I turn on dark mode?"),
    ("polarity", "How do I delete a branch?", "How can I remove a branch?"),
    ("comparison", "Which is the biggest ocean?", "What is the largest ocean?"),
    ("scope", "Drink coffee every day: is that bad?", "is drinking coffee daily bad?"),
    ("scope", "How do I clean my whole car?", "How do I clean my entire car?"),
    ("direction", "How do I go from Porto to Lisbon?", "Best way to travel from Porto to Lisbon?"),
    ("direction", "Is tea healthier than coffee?", "Is tea healthier than coffee for me?"),
    ("role", "As a tenant, who fixes the boiler?", "Who fixes the boiler? I'm a tenant."),
    ("entity", "What is the capital of Peru?", "Which city is Peru's capital?"),
    ("entity", "Explain what a REST API is", "explain what a rest api is"),
    ("technology", "How do I reverse a string in JavaScript?", "js: reverse a string?"),
    ("technology", "Select the first 5 rows in Postgres", "Postgresql: get the first 5 rows"),
    ("substitution", "How do I quit Emacs?", "How do I exit Emacs?"),
    (
        "substitution",
        "How do I remove duplicates from a list?",
        "How can I delete duplicates from a list?",
    ),
    ("constraint", "What is a Roth IRA?", "Please explain what a Roth IRA is."),
]

# Reworded questions that no guard refuses (all guards together).
PARAPHRASES = [
    ("How do I reset my router?", "What's the way to reset my router?"),
    ("How can I get red wine out of a carpet?", "Red wine on my carpet: how do I get it out?"),
    ("What is the speed of sound?", "How fast does sound travel?"),
    ("How do I cancel my subscription?", "I'd like to cancel my subscription, how?"),
    ("Convert 5 miles to kilometers", "convert 5 miles to km"),
]


@pytest.mark.parametrize(("guard", "stored", "new"), REFUSED)
def test_the_guard_refuses_a_prompt_that_needs_another_answer(
    guard: str, stored: str, new: str
) -> None:
    assert guard_refusal(stored, new, guards=[guard]) == guard
    assert guard_refusal(new, stored, guards=[guard]) == guard  # whichever was cached


@pytest.mark.parametrize(("guard", "stored", "new"), PASSED)
def test_the_guard_lets_a_rewording_through(guard: str, stored: str, new: str) -> None:
    assert guard_refusal(stored, new, guards=[guard]) is None


@pytest.mark.parametrize(("stored", "new"), PARAPHRASES)
def test_no_guard_refuses_a_plain_paraphrase(stored: str, new: str) -> None:
    assert guard_refusal(stored, new) is None


def test_every_guard_has_cases_both_ways() -> None:
    assert {g for g, _, _ in REFUSED} == set(GUARDS)
    assert {g for g, _, _ in PASSED} == set(GUARDS)


def test_the_first_refusing_guard_is_named_and_identical_prompts_pass() -> None:
    assert guard_refusal("Is 7 prime?", "Is 9 not prime?") == "number"
    assert guard_refusal("Is 7 prime?", "Is 9 not prime?", guards=["negation"]) == "negation"
    assert guard_refusal("Is 7 prime?", "Is 7 prime?") is None


def test_written_numbers_and_digits_read_the_same() -> None:
    assert prompt_features("twenty five people and a dozen eggs").numbers == ("25", "12")
    assert prompt_features("25 people and 12 eggs").numbers == ("25", "12")
    assert prompt_features("$1,500 or 1.5k").numbers == ("1500", "1500")
