"""The README is a user's guide that stays true: its results table is the rendered JSON, it is short, and every
`hf-recsys` command it (and docs/) shows exists, with `hf-recsys train` options that the parser really offers.

Also the table renderer itself (`hf_recsys/benchmark_tables/`, `benchmarks/render_tables.py`) on small inputs.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
SUBCOMMANDS = {"train", "evaluate", "recommend", "push", "app", "demo", "bench", "export", "export-onnx"}
MAX_README_LINES = 260


def _load(name: str, path: Path):
    """The module file at ``path`` loaded as the top-level module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing look the module up by name
    spec.loader.exec_module(module)
    return module


render_tables = _load("_render_tables_under_test", ROOT / "benchmarks" / "render_tables.py")
tables = render_tables._tables_module("_benchmark_tables_under_test")  # the package, as the renderer loads it


# -- the commands shown in Markdown ------------------------------------------------------------------------------


def code_lines(text: str) -> list[str]:
    """Shell-like lines of a Markdown text: the lines of fenced blocks that are not Python, with backslash
    continuations joined, plus every inline code span outside them."""
    lines: list[str] = []
    outside: list[str] = []
    fence, language, buffer = False, "", ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fence, language = (not fence), stripped[3:].strip().lower()
            continue
        if not fence:
            outside.append(line)
        elif language not in ("python", "py", "json", "jinja"):
            if stripped.endswith("\\"):
                buffer += stripped[:-1] + " "
                continue
            lines.append(buffer + stripped)
            buffer = ""
    lines.extend(re.findall(r"`([^`\n]+)`", "\n".join(outside)))
    return lines


def _tokens(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote in a fragment: split on blanks
        return line.split("#", 1)[0].split()


_SEPARATORS = {"&&", "||", ";", "|", "time", "exec"}


def hf_recsys_commands(text: str) -> list[list[str]]:
    """Each `hf-recsys ...` (or `... -m hf_recsys ...`) command of a Markdown text, as its tokens after the
    program name, up to the end of its command."""
    commands = []
    for line in code_lines(text):
        tokens = _tokens(line)
        for i, token in enumerate(tokens):
            before = tokens[:i]
            at_command = all(re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", t) for t in before) or (
                bool(before) and before[-1] in _SEPARATORS
            )
            if (token == "hf-recsys" and at_command) or (token == "hf_recsys" and before and before[-1] == "-m"):
                rest = []
                for t in tokens[i + 1 :]:
                    if t in _SEPARATORS:
                        break
                    rest.append(t)
                commands.append(rest)
    return commands


def train_option_names() -> set[str]:
    """Every option `hf-recsys train` parses: the fields of the training argument dataclasses and of
    RecTransformerConfig (the model options are generated from its fields)."""
    from hf_recsys.modeling import RecTransformerConfig

    training = importlib.import_module("hf_recsys.training")
    names = {f.name for f in dataclasses.fields(RecTransformerConfig)}
    modules = [
        m for n, m in list(sys.modules.items()) if n == "hf_recsys.training" or n.startswith("hf_recsys.training.")
    ]
    assert training in modules
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, type) and dataclasses.is_dataclass(value):
                names |= {f.name for f in dataclasses.fields(value)}
    return names


def test_command_parsing_helpers() -> None:
    text = (
        "Run `hf-recsys app --model runs/x` or:\n\n```bash\nHF_TOKEN=x hf-recsys push --run_dir r \\\n"
        "    --repo_id a/b  # comment --not_an_option\npip install hf-recsys\n"
        "accelerate launch --multi_gpu -m hf_recsys train --fsdp 'full_shard auto_wrap' && echo done\n```\n\n"
        "```python\nhf-recsys nonsense\n```\n"
    )
    assert hf_recsys_commands(text) == [
        ["push", "--run_dir", "r", "--repo_id", "a/b"],  # `pip install hf-recsys` is not a command
        ["train", "--fsdp", "full_shard auto_wrap"],
        ["app", "--model", "runs/x"],
    ]


# -- the README --------------------------------------------------------------------------------------------------


def test_readme_is_short() -> None:
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines; a user's guide stays under {MAX_README_LINES}"


def test_generated_tables_are_current() -> None:
    """README.md and benchmarks/*.md hold exactly what the renderer makes of benchmarks/results/*.json."""
    assert "<!-- suite-table:start -->" in README.read_text(encoding="utf-8")
    changes = render_tables.stale()
    assert not changes, (
        f"stale generated tables in {[str(p.relative_to(ROOT)) for p in changes]}: "
        "run `python benchmarks/render_tables.py` and commit the result"
    )


def test_readme_subcommands_exist() -> None:
    commands = hf_recsys_commands(README.read_text(encoding="utf-8"))
    used = {c[0] for c in commands if c and not c[0].startswith("-")}
    assert {"train", "evaluate", "recommend", "push"} <= used, used
    assert used <= SUBCOMMANDS, f"unknown hf-recsys subcommands in README.md: {sorted(used - SUBCOMMANDS)}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_docs_subcommands_exist(path: Path) -> None:
    used = {c[0] for c in hf_recsys_commands(path.read_text(encoding="utf-8")) if c and not c[0].startswith("-")}
    assert used <= SUBCOMMANDS, f"unknown hf-recsys subcommands in {path.name}: {sorted(used - SUBCOMMANDS)}"


def _unknown_train_options(text: str, known: set[str]) -> list[str]:
    unknown = []
    for command in hf_recsys_commands(text):
        if not command or command[0] != "train":
            continue
        for token in command[1:]:
            if not token.startswith("--") or token == "--help":
                continue
            name = token[2:].split("=", 1)[0]
            if name not in known and not (name.startswith("no_") and name[3:] in known):
                unknown.append(token)
    return unknown


def test_readme_train_options_exist() -> None:
    text = README.read_text(encoding="utf-8")
    known = train_option_names()
    assert {"dataset", "output_dir", "max_train_minutes", "num_hidden_layers"} <= known
    shown = [t for c in hf_recsys_commands(text) if c and c[0] == "train" for t in c if t.startswith("--")]
    assert "--max_train_minutes" in shown
    unknown = _unknown_train_options(text, known)
    assert not unknown, f"README.md shows `hf-recsys train` options the command line does not offer: {unknown}"


def test_docs_train_options_exist() -> None:
    known = train_option_names()
    unknown = {p.name: u for p in DOCS if (u := _unknown_train_options(p.read_text(encoding="utf-8"), known))}
    assert not unknown, f"docs show `hf-recsys train` options the command line does not offer: {unknown}"


def test_unknown_option_is_caught() -> None:
    text = "```bash\nhf-recsys train --dataset ml-1m --k_core 5 --no_relative_attention_bias\n```\n"
    assert _unknown_train_options(text, {"dataset", "relative_attention_bias"}) == ["--k_core"]


def test_links_and_placeholders() -> None:
    for path in [README, *DOCS, *sorted((ROOT / "benchmarks").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        assert "RESULTS_TABLE" not in text, f"{path.name} still holds a RESULTS_TABLE placeholder"
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"


# -- the renderer ------------------------------------------------------------------------------------------------


def _row(model: str, ndcg: float, commit: str, protocol: str = "leave-one-out", **extra) -> dict:
    return {
        "model": model,
        "dataset": "ml-1m",
        "protocol": protocol,
        "test_ndcg@10": ndcg,
        "test_hr@10": 2 * ndcg,
        "test_mrr@10": ndcg / 2,
        "valid_ndcg@10": ndcg + 0.001,
        "test_ndcg@3": ndcg / 3,
        "test_ndcg@5": ndcg / 2,
        "train_seconds": 120.0,
        "epochs": 3.4,
        "git_commit": commit,
        "date": "2026-01-01T00:00:00+00:00",
        **extra,
    }


def test_results_table_latest_row_per_model_and_published_rows() -> None:
    rows = [
        _row("rec-transformer", 0.1, "aaaaaaa"),
        _row("popularity", 0.02, "aaaaaaa", train_seconds=0.0, epochs=0),
        _row("rec-transformer", 0.2, "bbbbbbb"),
        _row("rec-transformer", 0.9, "ccccccc", protocol="seed-windows"),
        _row("rec-transformer", 0.5, "ddddddd", data={"variant": "official", "num_items": 3706}),
    ]
    table = tables.results_table(rows).splitlines()
    assert table[2] == "| popularity | **0.0200** | 0.0400 | 0.0100 | 0.0210 | — | 0 | `aaaaaaa` |"
    assert table[3] == "| rec-transformer | **0.2000** | 0.4000 | 0.1000 | 0.2010 | 2.0 min | 3 | `bbbbbbb` |"
    assert [line.split(" | ")[0][2:] for line in table[4:]] == [f"{n}, published" for n in tables.PUBLISHED_ML1M]
    # rows of the official ratings.dat (3,706 items) never mix with the SASRec-format file, nor with published rows
    official = tables.results_table(rows, variant="official").splitlines()
    assert len(official) == 3 and "`ddddddd`" in official[2]
    seed = tables.seed_windows_table(rows).splitlines()
    assert "`ccccccc`" in seed[2] and "0.093" in seed[3]
    history = tables.history_table(rows).splitlines()
    assert len(history) == 2 + len(rows) and "| official |" in history[-1]


def test_render_markers(tmp_path: Path) -> None:
    (tmp_path / "ml-1m.json").write_text(json.dumps([_row("popularity", 0.02, "aaaaaaa")]))
    (tmp_path / "other.json").write_text(json.dumps({"not": "rows"}))  # skipped
    text = "intro\n<!-- results-table:start -->\nold\n<!-- results-table:end -->\nafter\n"
    rendered = tables.render_markers(text, tmp_path)
    assert rendered.startswith("intro\n<!-- results-table:start -->\n| model |")
    assert rendered.endswith("|\n<!-- results-table:end -->\nafter\n") and "old" not in rendered
    assert tables.render_markers(rendered, tmp_path) == rendered
    with pytest.raises(ValueError, match="unknown table marker 'nope'"):
        tables.render_markers("<!-- nope:start -->\n<!-- nope:end -->", tmp_path)
    with pytest.raises(ValueError, match="no matching"):
        tables.render_markers("<!-- results-table:start -->\n", tmp_path)


def test_render_tables_check_detects_stale(tmp_path: Path) -> None:
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "ml-1m.json").write_text(json.dumps([_row("popularity", 0.02, "a")]))
    (tmp_path / "README.md").write_text("<!-- results-table:start -->\n| stale |\n<!-- results-table:end -->\n")
    changes = render_tables.stale(tmp_path)
    assert list(changes) == [tmp_path / "README.md"] and "| stale |" not in changes[tmp_path / "README.md"][1]
    assert render_tables.main(["--check"]) == 0  # the repository's own files are current


def test_benchmark_tables_imports_nothing_heavy() -> None:
    code = (
        "import importlib.util, sys\n"
        f"package = {str(ROOT / 'hf_recsys' / 'benchmark_tables')!r}\n"
        "spec = importlib.util.spec_from_file_location(\n"
        "    'bt', package + '/__init__.py', submodule_search_locations=[package]\n"
        ")\n"
        "m = importlib.util.module_from_spec(spec); sys.modules['bt'] = m; spec.loader.exec_module(m)\n"
        "m.results_table(m.load_rows())\n"
        "[render(m.default_results_dir()) for render in m.TABLES.values()]\n"
        "print(sorted(n for n in ('torch', 'transformers', 'datasets', 'numpy', 'hf_recsys') if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_published_figures_have_one_value() -> None:
    """Until hf_recsys.training imports them from benchmark_tables, its copy must agree."""
    training = importlib.import_module("hf_recsys.training")
    published = getattr(training, "PUBLISHED_ML1M", None)
    if published is not None and published is not tables.PUBLISHED_ML1M:
        assert published == tables.PUBLISHED_ML1M
