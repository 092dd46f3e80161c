"""Title lookup on an 87k-title catalogue: the fuzzy step with difflib alone vs rapidfuzz-prefiltered difflib.

    python benchmarks/bench_titles.py [--movies PATH/movies.csv] [--size 87000] [--queries 40]

The catalogue is ml-latest-small's movies.csv (9,742 titles) repeated with perturbations (a sequel number, a
"Director's Cut" / "Remastered" tag, another year) up to `--size` titles; without the file, synthetic titles.
Queries are misspelt titles without a year (the fuzzy step is the only slow one: exact, case-insensitive,
normalised and whole-word lookups are dictionary hits). Prints the build time, each path's time per query, and how
often the two paths give the same answer. Results: benchmarks/inference.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_name

from hf_recsys.modeling import titles as titles_module
from hf_recsys.modeling.errors import TitleMatchError

DEFAULT_MOVIES = Path(os.environ.get("HF_RECSYS_DATA_DIR", "../shared/data")) / "movielens-latest-small" / "movies.csv"
TAGS = ["II", "III", "Director's Cut", "Remastered", "Part 2", "Returns", "Redux", "Extended Edition", "Origins"]


def catalogue(movies: Path, size: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    if movies.is_file():
        with movies.open(encoding="utf-8") as f:
            base = [row["title"] for row in csv.DictReader(f)]
    else:
        words = [
            "star",
            "love",
            "night",
            "dark",
            "city",
            "man",
            "woman",
            "river",
            "king",
            "last",
            "blue",
            "house",
            "dream",
            "war",
            "time",
            "road",
        ]
        base = [f"{' '.join(rng.choices(words, k=3)).title()} ({rng.randint(1930, 2020)})" for _ in range(10000)]
    out = list(base)
    while len(out) < size:
        title = rng.choice(base)
        stem, year = (title[:-7], title[-6:]) if title.endswith(")") and title[-6:-5] == "(" else (title, "")
        year = f"({rng.randint(1930, 2024)})" if rng.random() < 0.5 or not year else year
        out.append(f"{stem} {rng.choice(TAGS)} {year}".strip())
    return out[:size]


def typo(title: str, rng: random.Random) -> str:
    stem = title[:-7] if title.endswith(")") else title
    chars = list(stem)
    for _ in range(2):
        i = rng.randrange(len(chars))
        chars[i] = rng.choice("aeiourstln")
    return "".join(chars)


def lookup(index: titles_module.TitleIndex, query: str) -> object:
    try:
        return index.resolve(query)[0]
    except TitleMatchError as error:
        return ("no match", error.ambiguous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--movies", type=Path, default=DEFAULT_MOVIES)
    parser.add_argument("--size", type=int, default=87_000)
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    rng = random.Random(1)
    titles = [None, *catalogue(args.movies, args.size)]
    queries = [typo(t, rng) for t in rng.sample(titles[1:], args.queries)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {load:.2f}")
    print(f"catalogue: {len(titles) - 1:,} titles ({'movies.csv' if args.movies.is_file() else 'synthetic'})")
    answers, times = {}, {}
    for fast in (False, True):
        if fast and titles_module._rf_process is None:
            print("rapidfuzz is not installed: skipping the fast path")
            continue
        titles_module.USE_RAPIDFUZZ = fast
        start, cpu = time.perf_counter(), time.process_time()
        index = titles_module.TitleIndex(titles, list(range(len(titles))))
        build, build_cpu = time.perf_counter() - start, time.process_time() - cpu
        per_query, per_query_cpu, got = [], [], []
        for query in queries:
            start, cpu = time.perf_counter(), time.process_time()
            got.append(lookup(index, query))  # a fresh index: no cached answers
            per_query.append(time.perf_counter() - start)
            per_query_cpu.append(time.process_time() - cpu)
        name = "rapidfuzz + difflib" if fast else "difflib"
        answers[name], times[name] = got, per_query_cpu
        print(
            f"{name:>20}: index build {build:.2f} s ({build_cpu:.2f} s CPU); fuzzy lookup median "
            f"{statistics.median(per_query) * 1e3:.1f} ms ({statistics.median(per_query_cpu) * 1e3:.1f} ms CPU), "
            f"max {max(per_query) * 1e3:.1f} ms over {len(queries)} queries; {sum(isinstance(a, int) for a in got)} matched"
        )
    if len(answers) == 2:
        a, b = answers.values()
        print(f"same answer on {sum(x == y for x, y in zip(a, b))} of {len(queries)} queries")
        slow, fast_ = (statistics.median(v) for v in times.values())
        print(f"speed-up (median CPU time): {slow / fast_:.0f}x")


if __name__ == "__main__":
    main()
