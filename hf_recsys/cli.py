"""The `hf-recsys` command: one entry point with subcommands, like `accelerate` or `hf`.

    hf-recsys train --dataset ml-1m --output_dir runs/ml-1m
    hf-recsys train --help

Each subcommand is the `HfArgumentParser` program of one module in `hf_recsys.commands`, imported only when it
runs, so `hf-recsys --help` starts in well under a second. Expected errors (missing data, bad options, an
occupied output folder, a Hub refusal) print one line, ``hf-recsys <subcommand>: error: ...``, and exit 1;
set ``HF_RECSYS_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence

#: subcommand -> (module in hf_recsys.commands, or a full module path; one-line description)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "train or fine-tune a model with the Trainer and write a complete run folder"),
    "evaluate": ("evaluate", "full-ranking metrics of a run folder or Hub model on one split"),
    "recommend": ("recommend", "top-k recommendations for a user and/or a history"),
    "export": ("export", "batch top-k of every user (or a list) to Parquet, and/or the item embeddings"),
    "export-onnx": ("export_onnx", "the scoring path as an ONNX graph (history tokens -> top-k items, scores)"),
    "push": ("push", "push a run folder to the Hugging Face Hub in one commit, with its model card"),
    "app": ("hf_recsys.app", "serve the interactive Gradio demo (needs the demo extra)"),
    "demo": ("demo", "the main job: train on ML-1M, compare with baselines, recommend (make demo)"),
    "bench": ("bench", "the ML-1M benchmark; appends rows to benchmarks/results/ (make bench)"),
}
DEBUG_ENV = "HF_RECSYS_DEBUG"


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the input or the environment is not right", not "the program is broken"."""
    errors: list[type[BaseException]] = [OSError, ValueError, KeyError, TimeoutError, RuntimeError]
    try:
        from huggingface_hub.errors import HfHubHTTPError

        errors.append(HfHubHTTPError)
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        pass
    return tuple(errors)


def usage() -> str:
    """The top-level help: what each subcommand does."""
    width = max(map(len, SUBCOMMANDS))
    lines = [
        "usage: hf-recsys <command> [options]",
        "",
        "Personalized next-item recommendation with transformers, on the Hugging Face stack.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {about}" for name, (_, about) in SUBCOMMANDS.items()),
        "",
        "`hf-recsys <command> --help` lists a command's options.",
    ]
    return "\n".join(lines)


def configure_logging() -> None:
    """INFO lines of hf_recsys (data preparation, fine-tuning reports, pushes) go to stderr in transformers'
    format; transformers itself keeps its own verbosity (`--log_level`)."""
    from transformers.utils import logging as hf_logging

    hf_logging.enable_default_handler()
    package = logging.getLogger("hf_recsys")
    if not package.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(levelname)s|%(name)s] %(message)s"))
        package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False


def _one_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run `hf-recsys <command> [options]`; returns the exit status (0 ok, 1 expected error, 2 usage)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from . import __version__

        print(f"hf-recsys {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"hf-recsys: unknown command {name!r}; choose one of: {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    module_name = SUBCOMMANDS[name][0]
    module = importlib.import_module(module_name if "." in module_name else f"{__package__}.commands.{module_name}")
    configure_logging()
    try:
        status = module.main(rest)
    except KeyboardInterrupt:
        print(f"hf-recsys {name}: interrupted", file=sys.stderr)
        return 130
    except _expected_errors() as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"hf-recsys {name}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
