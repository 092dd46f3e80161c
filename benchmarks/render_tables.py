"""Rewrite every generated table in README.md and benchmarks/*.md from benchmarks/results/*.json.

    python benchmarks/render_tables.py           # rewrite the marked tables in place
    python benchmarks/render_tables.py --check   # exit 1 with a diff when a table is stale (what the test runs)

A generated table sits between `<!-- NAME:start -->` and `<!-- NAME:end -->`; NAME is a key of
`hf_recsys.benchmark_tables.TABLES`. Everything outside the markers is left as it is. The package is loaded from
its folder, so rendering needs neither torch nor an installed package.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tables_module(name: str = "_benchmark_tables"):
    """``hf_recsys/benchmark_tables/`` loaded from its folder as the top-level package ``name``.

    The package is registered in ``sys.modules`` before it runs, so its relative imports (``from .format import
    ...``) find its own modules; neither ``hf_recsys`` nor torch is imported.
    """
    package = ROOT / "hf_recsys" / "benchmark_tables"
    spec = importlib.util.spec_from_file_location(
        name, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def documents(root: Path = ROOT) -> list[Path]:
    """The files whose marked tables are generated: README.md and benchmarks/*.md."""
    return [root / "README.md", *sorted((root / "benchmarks").glob("*.md"))]


def stale(root: Path = ROOT, results_dir: Path | None = None) -> dict[Path, tuple[str, str]]:
    """{file: (current text, rendered text)} for every file whose tables differ from the rendered ones."""
    tables = _tables_module()
    results_dir = results_dir or root / "benchmarks" / "results"
    out = {}
    for path in documents(root):
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        rendered = tables.render_markers(text, results_dir)
        if rendered != text:
            out[path] = (text, rendered)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 with a diff when stale")
    args = parser.parse_args(argv)
    changes = stale()
    for path, (text, rendered) in changes.items():
        name = str(path.relative_to(ROOT))
        if args.check:
            diff = difflib.unified_diff(
                text.splitlines(keepends=True),
                rendered.splitlines(keepends=True),
                fromfile=f"{name} (committed)",
                tofile=f"{name} (rendered from benchmarks/results)",
            )
            sys.stdout.writelines(diff)
        else:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(rendered, encoding="utf-8")
            tmp.replace(path)
            print(f"rewrote the tables of {name}")
    if args.check and changes:
        print("\nstale tables: run `python benchmarks/render_tables.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
