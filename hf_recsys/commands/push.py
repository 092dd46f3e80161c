"""`hf-recsys push`: push a trained run folder to the Hugging Face Hub in one commit, with its model card and
training curve.

    hf-recsys push --run_dir runs/demo --repo_id user/name [--private] [--revision BRANCH]
        [--create_pr] [--commit_message MSG] [--token TOKEN] [--timeout 60]

Everything is checked before the first request (repo id, token, run folder); see `hf_recsys.hub.push_to_hub`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from ..hub import push_to_hub

PROG = "hf-recsys push"


@dataclass
class PushArguments:
    """Command-line options (the same as `hf_recsys.hub.push_to_hub`)."""

    run_dir: str = field(metadata={"help": "Run folder written by training (config.json, model.safetensors, ...)."})
    repo_id: str = field(metadata={"help": "Target repository, 'namespace/name'."})
    private: bool = field(default=False, metadata={"help": "Create the repository private (if it does not exist)."})
    revision: str | None = field(default=None, metadata={"help": "Branch to commit to (created if missing)."})
    create_pr: bool = field(default=False, metadata={"help": "Open a pull request instead of committing directly."})
    commit_message: str | None = field(default=None, metadata={"help": "Commit message (default: model + metrics)."})
    token: str | None = field(default=None, metadata={"help": "Write token (default: HF_TOKEN or the stored login)."})
    timeout: float = field(default=60.0, metadata={"help": "Seconds of network silence before a request fails."})


def parser() -> HfArgumentParser:
    """The options of `hf-recsys push`."""
    return HfArgumentParser(PushArguments, prog=PROG)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, push, print the commit (or pull request) URL; exit 1 with the message on a known error."""
    (args,) = parser().parse_args_into_dataclasses(args=argv)
    try:
        info = push_to_hub(
            args.run_dir,
            args.repo_id,
            private=args.private or None,
            revision=args.revision,
            create_pr=args.create_pr,
            commit_message=args.commit_message,
            token=args.token,
            timeout=args.timeout,
        )
    except (ValueError, PermissionError, FileNotFoundError, TimeoutError, RuntimeError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(info.pr_url or info.commit_url)
    return 0
