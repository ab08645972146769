"""Benchmark: reading managers' questions, and answering them, on the demo data.

Prints one JSON line:
- `parse_p99_ms`: the time to read one question of the corpus (tests/questions) into a typed query, p99
  over every question, several rounds; the baseline is the same for the canonical `kpi revenue last 30
  days`, measured in the same run.
- `answer_p50_ms`: the whole ask path through the bot's entry point (reading, database names, query,
  chart PNG) for answerable corpus questions on the seeded demo database, p50; the baseline is the
  canonical command's answer.
- `understood_share`: the share of the corpus read exactly as meant or declined as it should be
  (`held_out_share` the same for the held-out set, which the reader was never tuned on).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import percentile
from bench.bot import demo_database
from bot.commands.context import CommandContext
from bot.commands.dispatch import handle
from bot.commands.parsing import ParseError
from bot.commands.questions import parse_question
from bot.console import console_identity
from storage.database import Database
from switchboard.settings import Settings
from tests.questions.demo import TODAY, VALUES
from tests.questions.test_corpus import CORPUS, HELD_OUT, judge

CANONICAL = "kpi revenue last 30 days"


def time_parse(text: str) -> float:
    started = time.perf_counter()
    try:
        parse_question(text, TODAY, known=VALUES, require_metric=False)
    except ParseError:
        pass
    return time.perf_counter() - started


def share(entries: list[dict[str, Any]]) -> float | None:
    if not entries:
        return None
    verdicts = [judge(entry) for entry in entries]
    return round(sum(v.outcome in ("read", "declined") for v in verdicts) / len(verdicts), 3)


async def answer_times(
    questions: list[str], runs: int, customers: int, days: int
) -> tuple[list[float], list[float]]:
    url = await demo_database(customers, days)
    settings = Settings(database_url=url, worker_in_process=False, sandbox=False)
    database = Database.connect(url)
    try:
        ctx = CommandContext(settings, database)
        who = await console_identity(ctx, None)
        await handle(CANONICAL, who, ctx)  # warm up: imports, fonts, the first connection
        answers: list[float] = []
        baseline: list[float] = []
        for question in questions[:runs]:
            started = time.perf_counter()
            reply = await handle(question, who, ctx)
            answers.append(time.perf_counter() - started)
            assert reply.kind != "error" or "went wrong" not in reply.text, (question, reply.text)
            started = time.perf_counter()
            await handle(f"kpi revenue last {len(baseline) % 80 + 10} days", who, ctx)
            baseline.append(time.perf_counter() - started)
        return answers, baseline
    finally:
        await database.dispose()


async def main(quick: bool) -> dict[str, object]:
    entries: list[dict[str, Any]] = CORPUS["questions"]
    rounds = 3 if quick else 10
    parse = [time_parse(str(e["ask"])) for _ in range(rounds) for e in entries]
    canonical = [time_parse(CANONICAL) for _ in range(rounds * 50)]
    answerable = [str(e["ask"]) for e in entries if "decline" not in e and e.get("period") != "default"]
    runs, customers, days = (30, 300, 120) if quick else (120, 800, 180)
    answers, baseline = await answer_times(
        answerable[:: max(1, len(answerable) // runs)], runs, customers, days
    )
    parse_p99 = percentile(parse, 0.99) * 1000
    answer_p50 = percentile(answers, 0.5) * 1000
    return {
        "parse_p99_ms": round(parse_p99, 2),
        "parse_p50_ms": round(percentile(parse, 0.5) * 1000, 2),
        "baseline_canonical_parse_p99_ms": round(percentile(canonical, 0.99) * 1000, 2),
        "answer_p50_ms": round(answer_p50, 1),
        "answer_p90_ms": round(percentile(answers, 0.9) * 1000, 1),
        "baseline_canonical_answer_p50_ms": round(percentile(baseline, 0.5) * 1000, 1),
        "answer_ratio_to_baseline": round(answer_p50 / (percentile(baseline, 0.5) * 1000), 2),
        "understood_share": share(entries),
        "held_out_share": share(HELD_OUT),
        "questions": len(entries),
        "answered": len(answers),
        "customers": customers,
        "days": days,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data set and fewer runs, under 60 s")
    print(json.dumps(asyncio.run(main(parser.parse_args().quick))))
