from __future__ import annotations

import pytest

from routing.engine.classify import classify, count_message_tokens, estimate_tokens


def _user(text: str, system: str | None = None) -> list[dict[str, object]]:
    messages: list[dict[str, object]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": text})
    return messages


@pytest.mark.parametrize(
    ("prompt", "category"),
    [
        (
            "Why does this raise a TypeError?\n```python\ndef add(a, b):\n    return a + b\n"
            "add(1, '2')\n```",
            "code",
        ),
        ("Write a Python function that checks whether a string is a palindrome.", "code"),
        ("I get this stack trace from my Django app when I save a form, how do I fix it?", "code"),
        ("Solve for x: 3x + 7 = 22", "math"),
        ("What is the derivative of sin(x) * x^2?", "math"),
        ("A bag has 3 red and 5 blue balls. What is the probability of drawing two reds?", "math"),
        (
            "Summarize the following article in three bullet points: The city council...",
            "summarization",
        ),
        ("tl;dr this thread for me please", "summarization"),
        (
            "Extract the invoice number, date and total from this email and return them as JSON.",
            "extraction",
        ),
        ("Write a short poem about autumn leaves.", "creative"),
        ("Tell me a bedtime story about a dragon who is afraid of the dark.", "creative"),
        ("Explain step by step why the sky appears blue rather than violet.", "reasoning"),
        ("What are the pros and cons of remote work for a small startup?", "reasoning"),
        ("Hi! How are you today?", "chat"),
        ("Can you recommend a good restaurant in Lisbon?", "chat"),
    ],
)
def test_it_classifies_realistic_prompts(prompt: str, category: str) -> None:
    assert classify(_user(prompt))[0] == category


def test_it_reads_the_last_user_message_not_earlier_turns() -> None:
    messages = [
        {"role": "user", "content": "Write a poem about the sea."},
        {"role": "assistant", "content": "The sea, the sea..."},
        {"role": "user", "content": "Now summarize it in one sentence."},
    ]
    assert classify(messages)[0] == "summarization"


def test_the_system_prompt_counts_too() -> None:
    system = "You are a senior Python engineer. Review code and point out bugs."
    assert classify(_user("Here you go:\n```\nx = [1,2\n```", system))[0] == "code"


def test_text_parts_in_list_content_are_read() -> None:
    content = [
        {"type": "text", "text": "Summarize this screenshot"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]
    assert classify([{"role": "user", "content": content}])[0] == "summarization"


def test_short_small_talk_is_eco_tier() -> None:
    assert classify(_user("hey, thanks!")) == ("chat", "eco")


def test_hard_proofs_are_premium_tier() -> None:
    prompt = "Prove rigorously that there are infinitely many primes, step by step."
    category, tier = classify(_user(prompt))
    assert category in ("reasoning", "math")
    assert tier == "premium"


def test_ordinary_code_questions_are_balanced_tier() -> None:
    assert classify(_user("Write a Python function that reverses a list."))[1] == "balanced"


def test_long_prompts_and_long_conversations_raise_the_tier() -> None:
    short = _user("What's a good name for a cat?")
    assert classify(short)[1] == "eco"
    assert classify(short, prompt_tokens=20_000)[1] == "balanced"
    many_turns = [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "ok"}] * 10
    many_turns.append({"role": "user", "content": "Design a distributed architecture for it."})
    assert classify(many_turns)[1] == "premium"


def test_empty_messages_are_plain_chat() -> None:
    assert classify([])[0] == "chat"


# Reference counts from OpenAI's tiktoken (cl100k_base), as published in its cookbook.
@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("The quick brown fox jumps over the lazy dog.", 10),
        ("Hello world", 2),
        ("tiktoken is great!", 6),
        ("2 + 2 = 4", 7),
        ("お誕生日おめでとう", 9),
    ],
)
def test_token_estimates_are_close_on_known_strings(text: str, tokens: int) -> None:
    assert abs(estimate_tokens(text) - tokens) <= max(2, tokens * 0.35)


def test_empty_text_is_zero_tokens() -> None:
    assert estimate_tokens("") == 0


def test_estimates_scale_with_length() -> None:
    paragraph = "The committee reviewed the proposal and approved the budget for next year. "
    one = estimate_tokens(paragraph)
    assert 13 <= one <= 17  # cl100k: 14
    assert estimate_tokens(paragraph * 100) == pytest.approx(one * 100, rel=0.05)


def test_cjk_text_is_not_undercounted_like_four_chars_per_token_would() -> None:
    text = "我们今天讨论一下这个项目的进度和下一步的计划。" * 10
    assert estimate_tokens(text) >= len(text) * 0.8


def test_message_counts_match_the_openai_cookbook_example() -> None:
    # tiktoken counts 129 prompt tokens for this conversation on gpt-4 / gpt-3.5-turbo.
    messages = [
        {
            "role": "system",
            "content": "You are a helpful, pattern-following assistant that translates "
            "corporate jargon into plain English.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "New synergies will help drive top-line growth.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Things working well together will increase revenue.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "Let's circle back when we have more bandwidth to touch base on "
            "opportunities for increased leverage.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Let's talk later when we're less busy about how to do better.",
        },
        {
            "role": "user",
            "content": "This late pivot means we don't have time to boil the ocean for the "
            "client deliverable.",
        },
    ]
    assert count_message_tokens(messages) == pytest.approx(129, rel=0.1)


def test_message_overheads_are_counted() -> None:
    # 3 priming + (3 per message + 1 role + 2 content ("Hello world")).
    assert count_message_tokens([{"role": "user", "content": "Hello world"}]) == 9


def test_images_and_tool_calls_add_to_the_count() -> None:
    text_only = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}]}]
    with_image = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:...", "detail": "low"}},
            ],
        }
    ]
    assert count_message_tokens(with_image) - count_message_tokens(text_only) == 85
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    bare = {"role": "assistant", "content": None}
    assert count_message_tokens([call]) - count_message_tokens([bare]) >= 8
