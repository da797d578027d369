"""The reference dataset of the benchmarks, as JSONL of `PublicConversationView` documents.

100,000 conversations with about ten messages each (about a million messages), owned by users whose
shares follow Zipf's law so that the top owner holds 20% of all conversations. Texts have realistic
lengths: a page of 20 conversations with their messages is about 250 KB of JSON. One model is used
in about a third of the conversations (the benchmarked `["model", "==", X]` filter); another marks
short question-and-answer conversations (the same page with little payload).

Seeded and deterministic: the same arguments give the same bytes. Writes
`bench/data/conversations-<N>-s<seed>.jsonl` and, beside it, `.meta.json` with the facts the
benchmark needs (the top owner, a conversation of theirs). Run `python bench/dataset.py --help`.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_CONVERSATIONS = 100_000
DEFAULT_SEED = 1
TOP_SHARE = 0.20
# A fixed "now", so that the data does not depend on the day it is generated.
NOW = 1_760_000_000_000
DAY = 86_400_000

BENCH_MODEL = "gpt-4o"
SMALL_MODEL = "gpt-4o-mini"
REASONING_MODEL = "o1"
# Model and weight: BENCH_MODEL is a third of the conversations; SMALL_MODEL's are one short
# question and answer each.
MODELS = (
    (BENCH_MODEL, 34),
    ("claude-3-5-sonnet", 22),
    ("gpt-4.1", 14),
    (REASONING_MODEL, 10),
    (SMALL_MODEL, 12),
    ("claude-3-5-haiku", 8),
)

VOCABULARY = (
    "the a an of to and in is it that for on with as be this by are or from at you can your "
    "function value query index table row column file request response server client cache "
    "memory thread process loop error retry timeout latency throughput page sort filter key "
    "model prompt token context answer question example result test build deploy release "
    "recipe oven flour butter garlic onion simmer roast bake minutes salt pepper lemon "
    "journey train ticket hotel museum beach mountain trail city river harbour itinerary "
    "chapter paragraph sentence draft edit voice tone reader story character scene "
    "workout stretch muscle recovery sleep protein pace interval strength balance "
    "budget invoice savings interest loan account tax report forecast quarter revenue "
    "café naïve Zürich résumé São Paulo Kraków 東京 😊 "
    "however because therefore usually often rarely first then finally also instead "
    "should would could might must will make use take give keep find check try "
    "simple quick careful small large fast slow new old better best common clear"
)
WORDS = tuple(VOCABULARY.split())
CODE = (
    "```python\ndef handler(request):\n    data = request.json()\n    return process(data)\n```",
    "```sql\nSELECT id, name FROM orders WHERE status = 'open' ORDER BY created_at DESC;\n```",
    "```bash\npip install -e '.[dev]' && pytest -q\n```",
)
NAME_SUBJECTS = (
    "Python decorators", "Python asyncio", "SQL window functions", "Postgres indexes",
    "React hooks", "Rust lifetimes", "Docker networking", "Kubernetes probes", "sourdough",
    "weeknight pasta", "meal prep", "Japan itinerary", "Lisbon weekend", "hiking gear",
    "cover letter", "short story", "blog post", "marathon training", "mobility routine",
    "budget spreadsheet", "tax questions", "Spanish grammar", "German cases", "logo ideas",
)  # fmt: skip
NAME_FORMS = ("{}", "Help with {}", "{} questions", "Notes on {}", "{}: next steps", "About {}")
ORGANIZATIONS = 50
ASSISTANTS = 200


@dataclass(frozen=True, slots=True)
class Meta:
    """What the benchmark needs to know about a generated dataset."""

    conversations: int
    messages: int
    owners: int
    seed: int
    top_owner: str
    top_owner_conversations: int
    top_owner_share: float
    bench_model: str
    bench_model_conversations: int
    small_model: str
    small_model_conversations: int
    sample_conversation: str
    bytes: int


def paths(conversations: int, seed: int, directory: Path = DATA) -> tuple[Path, Path]:
    stem = f"conversations-{conversations}-s{seed}"
    return directory / f"{stem}.jsonl", directory / f"{stem}.meta.json"


def load_meta(path: Path) -> Meta:
    return Meta(**orjson.loads(path.read_bytes()))


def generate(conversations: int, seed: int, directory: Path = DATA) -> Meta:
    """Write the dataset and its meta file (the data first, so a meta file means complete data)."""
    data_path, meta_path = paths(conversations, seed, directory)
    directory.mkdir(parents=True, exist_ok=True)
    generator = _Generator(random.Random(seed), owners=max(50, conversations // 20))
    counts = {"messages": 0, "top": 0, "bench": 0, "small": 0, "bytes": 0}
    sample = ""
    partial = data_path.with_suffix(".part")
    with partial.open("wb", buffering=1 << 20) as out:
        for owner in generator.draw_owners(conversations):
            document = generator.conversation(owner)
            line = orjson.dumps(document) + b"\n"
            out.write(line)
            counts["messages"] += len(document["messages"])
            counts["bytes"] += len(line)
            if owner == generator.top_owner:
                counts["top"] += 1
                if document["model"] == BENCH_MODEL:
                    counts["bench"] += 1
                    sample = sample or document["id"]
                elif document["model"] == SMALL_MODEL:
                    counts["small"] += 1
    partial.replace(data_path)
    meta = Meta(
        conversations=conversations,
        messages=counts["messages"],
        owners=len(generator.owners),
        seed=seed,
        top_owner=generator.top_owner,
        top_owner_conversations=counts["top"],
        top_owner_share=round(counts["top"] / conversations, 4),
        bench_model=BENCH_MODEL,
        bench_model_conversations=counts["bench"],
        small_model=SMALL_MODEL,
        small_model_conversations=counts["small"],
        sample_conversation=sample,
        bytes=counts["bytes"],
    )
    meta_path.write_bytes(orjson.dumps(asdict(meta), option=orjson.OPT_INDENT_2))
    return meta


def zipf_exponent(owners: int, top_share: float) -> float:
    """The exponent s for which the first of `owners` Zipf ranks holds `top_share` of the total."""
    low, high = 0.0, 10.0
    for _ in range(60):
        s = (low + high) / 2
        share = 1 / sum(k**-s for k in range(1, owners + 1))
        low, high = (s, high) if share < top_share else (low, s)
    return (low + high) / 2


class _Generator:
    def __init__(self, rng: random.Random, owners: int) -> None:
        self.rng = rng
        self.owners = [self.uuid() for _ in range(owners)]
        self.top_owner = self.owners[0]
        self.organizations = [self.uuid() for _ in range(ORGANIZATIONS)]
        self.assistants = [self.uuid() for _ in range(ASSISTANTS)]
        # Text is cut from one long seeded corpus: realistic words at the cost of a slice.
        self.corpus = self._corpus(2_000_000)
        self.model_names = [m for m, _ in MODELS]
        self.model_weights = list(itertools.accumulate(w for _, w in MODELS))

    def draw_owners(self, count: int) -> list[str]:
        s = zipf_exponent(len(self.owners), TOP_SHARE)
        weights = itertools.accumulate(k**-s for k in range(1, len(self.owners) + 1))
        return self.rng.choices(self.owners, cum_weights=list(weights), k=count)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def conversation(self, owner: str) -> dict[str, Any]:
        rng = self.rng
        model = self.model_names[
            bisect.bisect_right(self.model_weights, rng.random() * self.model_weights[-1])
        ]
        small = model == SMALL_MODEL
        exchanges = 1 if small else rng.randint(1, 10)
        created = NOW - rng.randint(DAY, 365 * DAY)
        at = created + rng.randint(1_000, 5_000)
        messages = []
        if rng.random() < 0.2:
            messages.append(self.message(created, "system", self.text(120, 300), None))
        for _ in range(exchanges):
            messages.append(self.message(at, "user", self.text(40, 700 if small else 450), None))
            at += rng.randint(2_000, 60_000)
            answer = self.text(80, 300) if small else self.text(200, 3_300)
            messages.append(self.message(at, "assistant", answer, model))
            at += rng.randint(20_000, 900_000)
            if rng.random() < 0.1:
                at += rng.randint(1, 72) * 3_600_000
        updated = messages[-1]["timestamp"]
        accessed: dict[str, Any] = {"user_id": None, "timestamp": 0}
        # Half were opened again after their last message.
        if rng.random() < 0.5:
            accessed = {"user_id": owner, "timestamp": updated + rng.randint(1_000, 10 * DAY)}
        images = any(m["img_gen"] is not None for m in messages)
        return {
            "id": self.uuid(),
            "name": rng.choice(NAME_FORMS).format(rng.choice(NAME_SUBJECTS)),
            "model": model,
            "img_gen_model": "dall-e-3" if images or rng.random() < 0.5 else "",
            "summary": self.text(80, 300) if rng.random() < 0.4 else "",
            "organization_id": rng.choice(self.organizations) if rng.random() < 0.3 else None,
            "assistant_id": rng.choice(self.assistants) if rng.random() < 0.15 else None,
            "messages": messages,
            "created": {"user_id": owner, "timestamp": created},
            "updated": {"user_id": owner, "timestamp": updated},
            "accessed": accessed,
        }

    def message(self, at: int, role: str, content: str, model: str | None) -> dict[str, Any]:
        rng = self.rng
        reasoning = None
        image = None
        if role == "assistant":
            if model == REASONING_MODEL:
                reasoning = self.text(200, 1_200)
            elif rng.random() < 0.02:
                image = self.img_gen(at)
        return {
            "id": self.uuid(),
            "timestamp": at,
            "role": role,
            "content": content,
            "reasoning_content": reasoning,
            "model": model,
            "img_gen": image,
        }

    def img_gen(self, at: int) -> dict[str, Any]:
        file_id = self.uuid()
        prompt = self.text(60, 300)
        return {
            "id": self.uuid(),
            "timestamp": at,
            "model": "dall-e-3",
            "format": self.rng.choice(("1024x1024", "1792x1024", "16:9")),
            "hd": self.rng.random() < 0.3,
            "prompt": prompt,
            "content": prompt + " Soft natural lighting.",
            "response_id": f"resp_{self.rng.getrandbits(96):024x}",
            "image_url": f"https://files.ayeto.example/images/{file_id}.png",
            "image_file_id": file_id,
        }

    def text(self, shortest: int, longest: int) -> str:
        """A stretch of text whose length is skewed towards the short end, like real messages."""
        rng = self.rng
        length = int(shortest + (longest - shortest) * rng.random() ** 1.6)
        start = rng.randrange(len(self.corpus) - longest - 64)
        # Start on a word.
        start = self.corpus.index(" ", start) + 1
        return self.corpus[start : start + length].strip()

    def _corpus(self, size: int) -> str:
        rng = self.rng
        parts: list[str] = []
        total = 0
        while total < size:
            words = rng.choices(WORDS, k=rng.randint(6, 22))
            sentence = " ".join(words)
            sentence = (
                sentence[0].upper() + sentence[1:] + rng.choice((". ", ". ", "? ", "! ", ".\n\n"))
            )
            if rng.random() < 0.02:
                sentence += rng.choice(CODE) + "\n\n"
            parts.append(sentence)
            total += len(sentence)
        return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--conversations", type=int, default=DEFAULT_CONVERSATIONS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DATA, help="directory (default bench/data)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    meta = generate(args.conversations, args.seed, args.out)
    elapsed = time.perf_counter() - started
    data_path, meta_path = paths(args.conversations, args.seed, args.out)
    print(f"wrote {data_path} ({meta.bytes / 1e6:.0f} MB) and {meta_path.name} in {elapsed:.1f} s")
    print(f"{meta.conversations} conversations, {meta.messages} messages, {meta.owners} owners")
    print(
        f"top owner {meta.top_owner}: {meta.top_owner_conversations} conversations "
        f"({meta.top_owner_share:.1%}), {meta.bench_model_conversations} with model "
        f"{meta.bench_model}, {meta.small_model_conversations} with {meta.small_model}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
