"""Realistic demo conversations, so that every example of the spec answers something meaningful.

`demo_conversations` is deterministic for a given seed and `now_ms`. Besides random conversations
across everyday topics it always contains what the spec's curl examples ask for: the conversation
`550e8400-e29b-41d4-a716-446655440000` (examples 9 and 10), `gpt-4o` conversations (4 and 8), names
containing `Python` (5), and the assistant `123e4567-e89b-12d3-a456-426614174000` (6). Every third
random conversation dates from late 2024, the others from the last 60 days, so that examples 7 and 8
(created after 2025-01-01) visibly leave some out, by the same count whenever the demo runs. A few
conversations of another user show isolation.

`load_demo` puts them in a store with a new key for the demo user; `instructions` is what the CLI
prints after it.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any, Final

from ayeto.auth import create_key
from ayeto.config import DEFAULT_DATABASE_URL, DEFAULT_HOST, DEFAULT_PORT
from ayeto.store import Store

# The user of the spec's sample response, and another whose conversations the demo key never sees.
DEMO_USER: Final = "880e8400-e29b-41d4-a716-446655440003"
OTHER_USER: Final = "990e8400-e29b-41d4-a716-446655440004"

# The ids the spec's examples name.
SPEC_CONVERSATION: Final = "550e8400-e29b-41d4-a716-446655440000"
SPEC_ASSISTANT: Final = "123e4567-e89b-12d3-a456-426614174000"
# Example 7 asks for conversations created after this instant (2025-01-01T00:00:00Z).
SPEC_SINCE: Final = 1_735_689_600_000

OTHER_USER_COUNT: Final = 4
IMG_GEN_MODEL: Final = "dall-e-3"

_ASSISTANTS: Final = (SPEC_ASSISTANT, "123e4567-e89b-12d3-a456-426614174001")
_ORGANIZATIONS: Final = (
    "aa0e8400-e29b-41d4-a716-446655440010",
    "aa0e8400-e29b-41d4-a716-446655440011",
)
# Model and how often it is picked; o1 answers carry their reasoning.
_MODELS: Final = (("gpt-4o", 35), ("gpt-4o-mini", 20), ("claude-3-5-sonnet", 25), ("o1", 20))
_REASONING_MODELS: Final = frozenset({"o1"})

_SECOND: Final = 1_000
_MINUTE: Final = 60 * _SECOND
_HOUR: Final = 60 * _MINUTE
_DAY: Final = 24 * _HOUR
_SPREAD: Final = 60 * _DAY
# The older conversations end before this instant (2024-12-20T00:00:00Z), whatever `now_ms` is.
_ARCHIVE_END: Final = SPEC_SINCE - 12 * _DAY
# Every this many random conversations, one is from the archive.
_ARCHIVE_EVERY: Final = 3

# The demo key's name: what tells the earlier demo keys apart from the user's own.
DEMO_KEY_NAME: Final = "demo"
# A demo key is a real credential to the demo database; it should not outlive the tryout.
DEMO_KEY_DAYS: Final = 30

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DemoLoad:
    """What `load_demo` did: the new key, the conversations loaded, the earlier keys revoked."""

    key: str
    demo_user_count: int
    other_user_count: int
    revoked: int


def load_demo(store: Store, now_ms: int) -> DemoLoad:
    """Load (again) the demo conversations and give the demo user a new key.

    A plain key is shown only once and never stored, so an earlier demo key cannot be shown
    again: the demo user's earlier demo keys that still work are revoked, not left to pile up.
    """
    documents = demo_conversations(DEMO_USER, now_ms=now_ms)
    store.upsert(documents)
    expires_at = now_ms + DEMO_KEY_DAYS * _DAY
    key, record = create_key(store, DEMO_USER, name=DEMO_KEY_NAME, expires_at=expires_at)
    earlier = [
        each.id
        for each in store.list_keys(DEMO_USER)
        if each.name == DEMO_KEY_NAME
        and each.id != record.id
        and each.revoked_at is None
        and (each.expires_at is None or each.expires_at > now_ms)
    ]
    for key_id in earlier:
        store.revoke_key(key_id, None, now_ms)
    mine = sum(d["created"]["user_id"] == DEMO_USER for d in documents)
    return DemoLoad(key, mine, len(documents) - mine, len(earlier))


def instructions(load: DemoLoad, *, database_url: str, host: str, port: int, serving: bool) -> str:
    """What to tell the user after `load`: the key, a curl to paste, and how to reach the data.

    `serving` says whether a server starts next (`serve --demo`), or the user starts one.
    """
    url = f"http://{host}:{port}/api/v3/conversation/find"
    body = '{"sort_key": "updated.timestamp", "sort_order": 1, "limit_from": 0, "limit_to": 3}'
    total = load.demo_user_count + load.other_user_count
    lines = [
        f"Loaded {total} demo conversations: {load.demo_user_count} for the demo user "
        f"{DEMO_USER} (its key sees these) and {load.other_user_count} of another user "
        "(the key never sees them).",
    ]
    if load.revoked:
        plural = "s" if load.revoked > 1 else ""
        lines.append(
            f"Revoked {load.revoked} earlier demo key{plural}: a key is shown only once, "
            "so each run of the demo makes a new one."
        )
    lines += [
        f"The demo user's API key (shown only now; it expires in {DEMO_KEY_DAYS} days):",
        "",
        f"  export AYETO_KEY={load.key}",
        "",
        "Then try:",
        "",
        f'  curl -X POST "{url}" \\',
        '    -H "uni-api-key: $AYETO_KEY" -H "Content-Type: application/json" \\',
        f"    -d '{body}'",
        "",
        "or, without the variable:",
        "",
        f"  curl -X POST {url} -H 'uni-api-key: {load.key}' -d '{body}'",
        "",
        f"Or browse them: open http://{host}:{port}/web/ and sign in with the key.",
        "",
    ]
    if not serving:
        serve = ["ayeto serve"]
        if database_url != DEFAULT_DATABASE_URL:
            serve.append(f"--db {database_url}")
        if host != DEFAULT_HOST:
            serve.append(f"--host {host}")
        if port != DEFAULT_PORT:
            serve.append(f"--port {port}")
        lines += ["Serve it with:", "", f"  {' '.join(serve)}", ""]
    if database_url != DEFAULT_DATABASE_URL:
        lines += [
            f"The demo database is {database_url}, not the default one; for other ayeto commands "
            "(ayeto keys list, ...) to use it, first run in their terminal:",
            "",
            f"  export AYETO_DATABASE_URL={database_url}",
            "",
        ]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Exchange:
    """A question, its answer, and the reasoning a reasoning model would show before answering."""

    question: str
    answer: str
    reasoning: str
    image_prompt: str | None = None
    image_format: str = "1024x1024"


@dataclass(frozen=True, slots=True)
class _Topic:
    names: tuple[str, ...]
    system: str
    summary: str
    exchanges: tuple[_Exchange, ...]


def demo_conversations(
    user_id: str, *, now_ms: int, count: int = 40, seed: int = 7
) -> list[Document]:
    """`count` conversations of `user_id`, then `OTHER_USER_COUNT` of `OTHER_USER`.

    Documents are complete `PublicConversationView` dicts, never accessed. Every third random one
    was created in the 60 days before 2024-12-20, the others in the 60 days before `now_ms`
    (which must be later than `SPEC_SINCE` plus those 60 days).
    """
    if count < 3:
        raise ValueError(f"count must be at least 3 to hold the spec's examples, got {count}")
    if now_ms <= SPEC_SINCE + _SPREAD:
        raise ValueError(f"now_ms must be later than 2025-03-02, got {now_ms}")
    rng = random.Random(seed)
    documents = [
        _spec_conversation(user_id, now_ms),
        # Example 6 finds this one by its assistant.
        _conversation(
            rng,
            user_id,
            now_ms,
            topic=_WRITING,
            model="claude-3-5-sonnet",
            assistant_id=SPEC_ASSISTANT,
            organization_id=_ORGANIZATIONS[0],
        ),
        # Examples 4 and 5 still find something once example 10 has deleted the spec's conversation.
        _conversation(rng, user_id, now_ms, topic=_PYTHON, model="gpt-4o"),
    ]
    documents += [_conversation(rng, user_id, _until(n, now_ms)) for n in range(count - 3)]
    documents.append(_conversation(rng, OTHER_USER, now_ms, topic=_PYTHON, model="gpt-4o"))
    documents += [
        _conversation(rng, OTHER_USER, _until(n, now_ms)) for n in range(OTHER_USER_COUNT - 1)
    ]
    return documents


def _until(n: int, now_ms: int) -> int:
    """When the `n`th random conversation ends at the latest: now, or in the 2024 archive."""
    return _ARCHIVE_END if n % _ARCHIVE_EVERY == _ARCHIVE_EVERY - 1 else now_ms


def _spec_conversation(owner: str, now_ms: int) -> Document:
    """The conversation of the spec's sample response, as of half an hour ago."""
    created = now_ms - 30 * _MINUTE
    first, second = _PYTHON.exchanges[0], _PYTHON.exchanges[1]
    messages = [
        _message("660e8400-e29b-41d4-a716-446655440001", created + _SECOND, "user", first.question),
        _message(
            "770e8400-e29b-41d4-a716-446655440002",
            created + 2 * _SECOND,
            "assistant",
            first.answer,
            model="gpt-4o",
        ),
        _message(
            "770e8400-e29b-41d4-a716-446655440003", created + 3 * _MINUTE, "user", second.question
        ),
        _message(
            "770e8400-e29b-41d4-a716-446655440004",
            created + 3 * _MINUTE + 9 * _SECOND,
            "assistant",
            second.answer,
            model="gpt-4o",
        ),
    ]
    return {
        "id": SPEC_CONVERSATION,
        "name": "Writing functions in Python",
        "model": "gpt-4o",
        "img_gen_model": IMG_GEN_MODEL,
        "summary": "Discussion about Python programming: defining functions and default arguments.",
        "organization_id": None,
        "assistant_id": None,
        "messages": messages,
        "created": {"user_id": owner, "timestamp": created},
        "updated": {"user_id": owner, "timestamp": messages[-1]["timestamp"]},
        "accessed": {"user_id": None, "timestamp": 0},
    }


def _conversation(
    rng: random.Random,
    owner: str,
    until: int,
    *,
    topic: _Topic | None = None,
    model: str | None = None,
    assistant_id: str | None = None,
    organization_id: str | None = None,
) -> Document:
    # Every random draw happens, in the same order, whatever is forced, so forcing one field
    # does not reshuffle the rest of the data.
    drawn_topic = rng.choice(_TOPICS)
    drawn_model = rng.choices([m for m, _ in _MODELS], weights=[w for _, w in _MODELS])[0]
    drawn_assistant = rng.choice(_ASSISTANTS) if rng.random() < 0.2 else None
    drawn_organization = rng.choice(_ORGANIZATIONS) if rng.random() < 0.25 else None
    topic = topic or drawn_topic
    model = model or drawn_model
    assistant_id = assistant_id or drawn_assistant
    organization_id = organization_id or drawn_organization

    with_system = rng.random() < 0.25
    # 2 to 12 messages: user and assistant turns, after an optional system prompt.
    turns = rng.randint(1, 5 if with_system else 6)
    exchanges = _pick(rng, topic.exchanges, min(turns, len(topic.exchanges)))
    exchanges += _pick(rng, _FOLLOW_UPS, turns - len(exchanges))

    # Offsets from the creation time: reading and typing take a while, answers a few seconds,
    # and now and then the user comes back hours later.
    offsets: list[int] = []
    elapsed = rng.randint(1, 5) * _SECOND
    for _ in exchanges:
        offsets += [elapsed, elapsed + rng.randint(2, 40) * _SECOND]
        elapsed = offsets[-1] + rng.randint(20, 300) * _SECOND
        if rng.random() < 0.15:
            elapsed += rng.randint(1, 30) * _HOUR
    # Ends an hour before `until` at the latest: the spec's conversation stays the most recent.
    created = until - rng.randint(offsets[-1] + _HOUR, _SPREAD)

    messages: list[Document] = []
    if with_system:
        messages.append(_message(_uuid(rng), created, "system", topic.system))
    for exchange, (asked, answered) in zip(
        exchanges, zip(offsets[::2], offsets[1::2], strict=True), strict=True
    ):
        messages.append(_message(_uuid(rng), created + asked, "user", exchange.question))
        image = None
        if exchange.image_prompt is not None:
            image = _img_gen(rng, exchange, created + answered)
        messages.append(
            _message(
                _uuid(rng),
                created + answered,
                "assistant",
                exchange.answer.replace("{summary}", topic.summary),
                model=model,
                reasoning=exchange.reasoning if model in _REASONING_MODELS else None,
                img_gen=image,
            )
        )
    has_images = any(m["img_gen"] is not None for m in messages)
    return {
        "id": _uuid(rng),
        "name": rng.choice(topic.names),
        "model": model,
        "img_gen_model": IMG_GEN_MODEL if has_images else "",
        "summary": topic.summary if rng.random() < 0.5 else "",
        "organization_id": organization_id,
        "assistant_id": assistant_id,
        "messages": messages,
        "created": {"user_id": owner, "timestamp": created},
        "updated": {"user_id": owner, "timestamp": messages[-1]["timestamp"]},
        "accessed": {"user_id": None, "timestamp": 0},
    }


def _pick(rng: random.Random, exchanges: tuple[_Exchange, ...], count: int) -> list[_Exchange]:
    """`count` of the exchanges, in their written order, which is the order a chat would take."""
    return [exchanges[i] for i in sorted(rng.sample(range(len(exchanges)), count))]


def _message(
    id_: str,
    timestamp: int,
    role: str,
    content: str,
    *,
    model: str | None = None,
    reasoning: str | None = None,
    img_gen: Document | None = None,
) -> Document:
    return {
        "id": id_,
        "timestamp": timestamp,
        "role": role,
        "content": content,
        "reasoning_content": reasoning,
        "model": model,
        "img_gen": img_gen,
    }


def _img_gen(rng: random.Random, exchange: _Exchange, timestamp: int) -> Document:
    file_id = _uuid(rng)
    assert exchange.image_prompt is not None
    return {
        "id": _uuid(rng),
        "timestamp": timestamp,
        "model": IMG_GEN_MODEL,
        "format": exchange.image_format,
        "hd": rng.random() < 0.5,
        "prompt": exchange.image_prompt,
        # What the image model made of the prompt, as it reports it.
        "content": f"{exchange.image_prompt} Soft natural lighting, clean composition.",
        "response_id": f"resp_{rng.getrandbits(96):024x}",
        "image_url": f"https://files.ayeto.example/images/{file_id}.png",
        "image_file_id": file_id,
    }


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# -- what the conversations say ------------------------------------------------------------------

_PYTHON = _Topic(
    names=(
        "Python decorators explained",
        "Speeding up a Python CSV script",
        "Python packaging with pyproject.toml",
        "Async Python for a web scraper",
        "Python: reading JSON safely",
    ),
    system="You are a senior Python engineer. Answer with short, runnable examples.",
    summary="Python questions: functions, decorators, performance and packaging.",
    exchanges=(
        _Exchange(
            "Hi, how do I write a function in Python?",
            "You define a function in Python using the `def` keyword, followed by its name, its "
            "parameters in parentheses and a colon; the indented block below is its body:\n\n"
            "```python\ndef add(a, b):\n    return a + b\n```\n\n`add(2, 3)` returns `5`.",
            "A beginner question. Show the smallest complete function and how to call it.",
        ),
        _Exchange(
            "And how do I give a parameter a default value?",
            'Put the default in the signature:\n\n```python\ndef greet(name, greeting="Hello"):\n'
            '    return f"{greeting}, {name}!"\n```\n\nCall it as `greet("Ada")` or '
            '`greet("Ada", greeting="Hi")`. Avoid mutable defaults such as `[]`: they are '
            "created once and shared by every call. Use `None` and create the list inside.",
            "Default arguments. Mention the mutable-default pitfall, it bites everyone once.",
        ),
        _Exchange(
            "What does a decorator actually do?",
            "A decorator is a function that takes a function and returns a replacement. "
            "`@timed` above `def load(): ...` is just `load = timed(load)`. The usual shape:\n\n"
            "```python\nimport functools, time\n\ndef timed(fn):\n    @functools.wraps(fn)\n"
            "    def wrapper(*args, **kwargs):\n        start = time.perf_counter()\n"
            "        try:\n            return fn(*args, **kwargs)\n        finally:\n"
            "            print(fn.__name__, time.perf_counter() - start)\n    return wrapper\n```",
            "Explain the desugaring first, then a practical example with functools.wraps.",
        ),
        _Exchange(
            "My script takes 40 seconds to parse a 2 GB CSV. How can I make it faster?",
            "Measure first: `python -m cProfile -s cumtime script.py`. Usually the fix is one of: "
            "read with `csv.reader` instead of splitting lines by hand, avoid building a list of "
            "every row (iterate), and move per-row work out of Python (pandas or polars read the "
            "same file in a few seconds). If you only need a few columns, `usecols=` helps a lot.",
            "Performance question without code. Suggest profiling, then the common wins in order.",
        ),
        _Exchange(
            "How do I read a JSON file and handle a missing key?",
            '```python\nimport json\n\nwith open("config.json", encoding="utf-8") as f:\n'
            '    config = json.load(f)\n\nport = config.get("port", 8080)\n```\n\n`dict.get` '
            "returns the default when the key is absent. If the key is required, index it and "
            "let the `KeyError` tell you which one is missing.",
            "Two cases: optional key with a default, required key that should fail loudly.",
        ),
        _Exchange(
            "Should I use threads or processes to download 500 pages?",
            "Threads (or asyncio): downloading is waiting on the network, and the GIL is released "
            "while waiting. `concurrent.futures.ThreadPoolExecutor(max_workers=16)` with "
            "`pool.map(fetch, urls)` is the simplest. Processes only pay off for CPU-bound work.",
            "I/O-bound work, so threads or asyncio; explain why processes do not help here.",
        ),
    ),
)

_SQL = _Topic(
    names=(
        "Postgres query suddenly slow",
        "SQL window functions",
        "Designing an orders table",
        "Why is my index not used?",
    ),
    system="You are a database expert. Prefer standard SQL; say when something is Postgres-only.",
    summary="Database help: query plans, indexes and window functions.",
    exchanges=(
        _Exchange(
            "A query that took 20 ms now takes 4 seconds. Nothing changed in the code.",
            "Run `EXPLAIN (ANALYZE, BUFFERS)` on it. A plan that flipped from an index scan to a "
            "sequential scan usually means stale statistics after a big import: `ANALYZE "
            "orders;` fixes it. Also check for a new lock or bloat after mass deletes.",
            "Plan regression without code change: statistics, locks, bloat. Start with EXPLAIN.",
        ),
        _Exchange(
            "How do I get a running total per customer?",
            "With a window function:\n\n```sql\nSELECT customer_id, created_at, amount,\n"
            "       SUM(amount) OVER (PARTITION BY customer_id ORDER BY created_at) AS running\n"
            "FROM orders;\n```",
            "Classic window function; PARTITION BY customer, ORDER BY time.",
        ),
        _Exchange(
            "My index on (status, created_at) is not used for WHERE created_at > now() - '1 day'.",
            "A B-tree is usable from its leading column. Your filter skips `status`, so the index "
            "cannot narrow the range. Either add `status = ...` to the query or create an index "
            "that starts with `created_at`.",
            "Leading-column rule of composite indexes.",
        ),
        _Exchange(
            "Should order lines go in a JSON column or their own table?",
            "Their own table (`order_lines` with a foreign key to `orders`) if you ever query, "
            "sum or update lines; JSON if the lines are an opaque snapshot you only read back "
            "whole. Most shops need reports, so a table it is.",
            "Trade-off: relational for querying, JSON for opaque snapshots.",
        ),
    ),
)

_COOKING = _Topic(
    names=(
        "Weeknight pasta ideas",
        "Sourdough starter not rising",
        "Vegetarian dinner party menu",
        "Meal prep for the week",
    ),
    system="You are a friendly home cook. Give quantities in grams and keep recipes simple.",
    summary="Cooking help: quick dinners, sourdough troubleshooting and menu planning.",
    exchanges=(
        _Exchange(
            "I have 20 minutes, spaghetti, garlic, a lemon and some spinach. Ideas?",
            "Lemon-garlic spaghetti: cook 200 g spaghetti. Meanwhile warm 3 tbsp olive oil with "
            "3 sliced garlic cloves on low heat until golden. Add two handfuls of spinach, the "
            "zest of the lemon and a ladle of pasta water, toss with the pasta, finish with "
            "lemon juice, salt and pepper. Parmesan if you have it.",
            "Four ingredients and 20 minutes: aglio e olio with lemon and spinach fits.",
        ),
        _Exchange(
            "My sourdough starter bubbles but never doubles. What am I doing wrong?",
            "Usually it is temperature or flour. Keep it at 24-26 °C, feed 1:1:1 "
            "(starter:flour:water by weight) and use some whole-grain rye for a week. If it "
            "smells of acetone it is hungry: feed twice a day.",
            "Weak starter: temperature, feeding ratio, flour. Give concrete numbers.",
        ),
        _Exchange(
            "Plan a vegetarian dinner for six, one of them vegan.",
            "Starter: roasted carrot soup with ginger (vegan). Main: mushroom and chestnut "
            "wellington with a vegan puff pastry, served with garlic green beans. Dessert: "
            "poached pears in red wine with vanilla (vegan); offer cream on the side.",
            "Make every course vegan-compatible so nobody eats a separate meal.",
        ),
        _Exchange(
            "How long does cooked rice keep in the fridge?",
            "Up to one day is the safe rule. Cool it quickly (spread it on a tray), refrigerate "
            "within an hour, and reheat it until steaming hot. Rice can carry Bacillus cereus, "
            "whose toxins survive reheating.",
            "Food safety question: be precise and mention why.",
        ),
    ),
)

_TRAVEL = _Topic(
    names=(
        "Two weeks in Japan itinerary",
        "Long weekend in Lisbon",
        "Packing list for a hut-to-hut hike",
        "Train travel across Europe",
    ),
    system="You are a travel planner. Be practical: travel times, costs, bookings.",
    summary="Trip planning: itineraries, packing and getting around by train.",
    exchanges=(
        _Exchange(
            "Two weeks in Japan in April, first time. How would you split it?",
            "Tokyo 4 nights, Hakone 1 (onsen, Fuji views), Kyoto 4, Nara as a day trip, Osaka 2, "
            "Hiroshima and Miyajima 2, then back to Tokyo for the flight. Book Kyoto early: "
            "April is cherry blossom season.",
            "Classic first-timer route; April means sakura crowds, so mention booking.",
        ),
        _Exchange(
            "Is the Japan Rail Pass still worth it?",
            "Since the 2023 price rise, rarely for the route above. Single tickets for "
            "Tokyo-Kyoto-Hiroshima-Tokyo come to less than the 7-day pass. It pays off only if "
            "you add a long trip, such as to Kanazawa or Sendai.",
            "The pass price went up in October 2023; compare with point-to-point fares.",
        ),
        _Exchange(
            "What should I pack for a four-day hut-to-hut hike in the Alps in July?",
            "Layers: base layer, fleece, rain jacket. A sleeping-bag liner (huts require one), "
            "headlamp, blister kit, 2 L of water capacity, sun cream and cash: many huts do not "
            "take cards. Keep the pack under 8 kg.",
            "Huts provide blankets; liner and cash are the usual forgotten items.",
        ),
        _Exchange(
            "What can I do in Lisbon on a Sunday?",
            "Morning in Belém for the tower, the monastery and pastéis de nata, afternoon "
            "wandering Alfama, and sunset at the Miradouro da Senhora do Monte. The Feira da "
            "Ladra flea market runs on Tuesdays and Saturdays, so keep it for another day.",
            "Sunday: some markets closed; Belém and viewpoints are safe choices.",
        ),
    ),
)

_WRITING = _Topic(
    names=(
        "Cover letter for a data analyst role",
        "Opening paragraph of a short story",
        "Tightening a blog post intro",
        "Polite reminder email to a client",
    ),
    system="You are an editor. Keep the author's voice; cut filler; explain each change briefly.",
    summary="Writing help: cover letters, story openings and editing for concision.",
    exchanges=(
        _Exchange(
            "Can you make this opening less generic? 'I am writing to apply for the position of "
            "data analyst at your company.'",
            "Lead with what you bring: 'Last year I built the churn dashboard that cut "
            "Acme's customer losses by 12%; I would like to do the same for your analytics team.' "
            "Name the role in the subject line instead.",
            "Replace the formula with a concrete achievement; move the role to the subject.",
        ),
        _Exchange(
            "Write an opening line for a story about a lighthouse keeper who stops the light.",
            "On the night Elias let the lamp go dark, the sea came closer to listen.",
            "One striking sentence, a hint of the uncanny, no exposition.",
        ),
        _Exchange(
            "This intro is 180 words. Get it under 80 without losing the main point.",
            "Here is a 74-word version. I kept your claim and your example, dropped the history "
            "of the framework and the two rhetorical questions, and merged the last two sentences.",
            "Keep the thesis and one example; cut background and rhetorical questions.",
        ),
        _Exchange(
            "How do I remind a client about an unpaid invoice without sounding rude?",
            "Subject: Invoice 2024-117, due 15 March\n\nHi Sam, a quick reminder that the invoice "
            "above is now two weeks past due. I have attached it again for convenience. Could you "
            "let me know when payment is scheduled? Thanks, and all the best, Maria",
            "Friendly, factual, a clear request for a date. Attach the invoice again.",
        ),
    ),
)

_FITNESS = _Topic(
    names=(
        "Couch to 5k plan",
        "Stretching routine for desk work",
        "Strength training twice a week",
    ),
    system="You are a certified personal trainer. Recommend seeing a doctor for any pain.",
    summary="Fitness plans: a first 5k, desk stretches and short strength sessions.",
    exchanges=(
        _Exchange(
            "I have never run. Can I run 5 km in eight weeks?",
            "Yes. Three sessions a week, alternating running and walking: week 1 is 8 x (1 min "
            "run, 90 s walk), and each week adds a little running. By week 8 you run 30 minutes "
            "without stopping, which is about 5 km at an easy pace.",
            "Standard couch-to-5k progression; emphasize easy pace and rest days.",
        ),
        _Exchange(
            "My neck and shoulders are stiff after work. Quick routine?",
            "Five minutes, twice a day: chin tucks (10), shoulder rolls (10 each way), doorway "
            "chest stretch (30 s), upper-trap stretch (30 s each side), and cat-cow on the chair "
            "(10). Raise your screen to eye level too.",
            "Desk posture issue: mobility plus an ergonomic fix.",
        ),
        _Exchange(
            "What should a 30-minute full-body strength session look like?",
            "Warm up 5 minutes, then three rounds of: goblet squats (10), push-ups (8-12), "
            "dumbbell rows (10 each side), hip thrusts (12), plank (40 s). Rest 60-90 s between "
            "rounds. Add weight when the last reps feel easy.",
            "Cover the main patterns: squat, push, pull, hinge, core.",
        ),
    ),
)

_IMAGES = _Topic(
    names=(
        "Logo ideas for a bakery",
        "Illustration for a children's book",
        "Poster for a jazz night",
    ),
    system="You are a graphic designer. Propose a concept first, then generate the image.",
    summary="Image generation: a bakery logo, a picture-book illustration and an event poster.",
    exchanges=(
        _Exchange(
            "Create a logo for a small bakery called 'Crumb & Co.', warm colors, minimalist.",
            "Here is a first concept: a single wheat stalk forming the ampersand, in terracotta on "
            "cream, with the name set in a rounded serif. Tell me if you want a version without "
            "the stalk for small sizes.",
            "Minimalist logo: one mark, two colors, legible at small sizes.",
            image_prompt="Minimalist logo for a bakery named 'Crumb & Co.', a wheat stalk forming "
            "an ampersand, terracotta on cream, rounded serif lettering.",
        ),
        _Exchange(
            "Draw a fox reading a book under a tree, for a picture book for 4-year-olds.",
            "Here it is: a small red fox sitting between the roots of an oak, holding an open "
            "book, with fireflies around. I kept the shapes simple and the palette soft so that "
            "the text reads well on top.",
            "Picture-book style: soft palette, simple shapes, room for text.",
            image_prompt="Children's book illustration, a small red fox reading a book under an "
            "old oak tree at dusk, fireflies, soft watercolor style.",
            image_format="16:9",
        ),
        _Exchange(
            "A poster for a jazz night on Friday the 14th at The Blue Room.",
            "Here is a draft in a 1960s Blue Note style: bold condensed type, a silhouetted "
            "saxophonist, deep blue with one orange accent. The date and venue sit at the bottom "
            "so they can be edited.",
            "Jazz poster: Blue Note typography is the recognizable reference.",
            image_prompt="Poster for a jazz night at 'The Blue Room', 1960s record-cover style, "
            "silhouetted saxophonist, deep blue and orange, bold condensed typography.",
            image_format="1024x1792",
        ),
    ),
)

_LANGUAGES = _Topic(
    names=(
        "Spanish: pretérito vs imperfecto",
        "German cases cheat sheet",
        "Practising French small talk",
    ),
    system="You are a patient language teacher. Give short examples with translations.",
    summary="Language learning: Spanish past tenses, German cases and French conversation.",
    exchanges=(
        _Exchange(
            "When do I use the pretérito and when the imperfecto in Spanish?",
            "Pretérito for completed events: 'Ayer comí paella' (Yesterday I ate paella). "
            "Imperfecto for background, habits and descriptions: 'De niño comía paella los "
            "domingos' (As a child I used to eat paella on Sundays). Often both meet: "
            "'Leía cuando sonó el teléfono.'",
            "Completed event vs background or habit; one combined example helps.",
        ),
        _Exchange(
            "Give me a cheat sheet for German articles in the four cases.",
            "Masculine der/den/dem/des, feminine die/die/der/der, neuter das/das/dem/des, plural "
            "die/die/den/der (nominative/accusative/dative/genitive). Only the masculine changes "
            "in the accusative: 'Ich sehe den Hund.'",
            "A compact table in prose; point out that only masculine changes in accusative.",
        ),
        _Exchange(
            "Let's practise small talk in French. You start.",
            "Avec plaisir ! Alors, qu'est-ce que vous avez fait ce week-end ? (So, what did you "
            "do this weekend?) Answer in French, and I will correct gently.",
            "Open with an easy question in passé composé; offer corrections.",
        ),
    ),
)

_TOPICS: Final = (_PYTHON, _SQL, _COOKING, _TRAVEL, _WRITING, _FITNESS, _IMAGES, _LANGUAGES)

# Turns that fit any topic, the closing one last; `{summary}` is the topic's summary.
_FOLLOW_UPS: Final = (
    _Exchange(
        "Thanks! Can you sum that up in one sentence?",
        "In one sentence: {summary}",
        "They want a recap; one sentence, no new information.",
    ),
    _Exchange(
        "Could you explain the last part again, more slowly?",
        "Of course. Take it one step at a time: start from what you already have, change one "
        "thing, check the result, and only then move to the next step. Tell me which step "
        "is unclear and I will go into detail.",
        "Re-explain step by step and invite a more precise question.",
    ),
    _Exchange(
        "What is the most common mistake people make with this?",
        "Doing everything at once. Most problems come from changing several things together "
        "and not knowing which one mattered. Change one thing, observe, keep notes.",
        "General advice: isolate changes.",
    ),
    _Exchange(
        "Can you give me a checklist I can save?",
        "Here is a short checklist:\n\n1. Write down the goal.\n2. Gather what you need.\n"
        "3. Do the first small step today.\n4. Review after a week and adjust.",
        "A four-item checklist, generic enough to apply.",
    ),
    _Exchange(
        "Perfect, that is exactly what I needed.",
        "Glad it helped! Come back any time if something else comes up.",
        "The user is wrapping up; a short reply is enough.",
    ),
)

__all__ = [
    "DEMO_KEY_DAYS",
    "DEMO_KEY_NAME",
    "DEMO_USER",
    "OTHER_USER",
    "OTHER_USER_COUNT",
    "SPEC_ASSISTANT",
    "SPEC_CONVERSATION",
    "SPEC_SINCE",
    "DemoLoad",
    "demo_conversations",
    "instructions",
    "load_demo",
]
