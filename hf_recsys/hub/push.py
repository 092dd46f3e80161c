"""Push a run folder to the Hub in ONE commit, after checking everything that can be checked offline (repo id,
token, a complete folder), with timeouts on every request."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi
from transformers.utils import logging

from ..run_layout import CARD_FILE, CURVE_FILE, HANDLER_FILE, RESULTS_FILE
from .card import TEMPLATE_DIR, _template_path, write_model_card
from .card_text import _finite
from .curve import plot_training_curve
from .run_folder import _read_json, upload_files

logger = logging.get_logger(__name__)


# --------------------------------------------------------------------------------------------------------------------
# upload
# --------------------------------------------------------------------------------------------------------------------
def _check_timeout(timeout: Any) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _timeout_errors() -> tuple[type[BaseException], ...]:
    """The timeout exception of the HTTP library huggingface_hub uses (httpx2 in 2.x, httpx in 1.x)."""
    from huggingface_hub.utils import _http

    module = getattr(_http, "httpx2", None) or getattr(_http, "httpx", None)
    return (TimeoutError, *((module.TimeoutException,) if module is not None else ()))


@contextlib.contextmanager
def hub_timeouts(timeout: float) -> Iterator[None]:
    """Make every ``huggingface_hub`` request in the block time out after ``timeout`` seconds of network silence.

    huggingface_hub 1.x/2.x sends requests through one shared httpx client built by a factory whose default has NO
    timeout (``timeout=None``), and `HfApi.create_repo` / `create_commit` pass none either: a stalled connection
    would hang forever. Inside this block the factory builds the same client with ``httpx.Timeout(timeout)`` (connect,
    read, write and pool), installed with the public `huggingface_hub.set_client_factory`; the previous factory is
    restored on exit. Large files go through hf_xet, which has its own (finite) timeouts; they are set to the same
    value through ``HF_XET_CLIENT_CONNECT_TIMEOUT`` / ``HF_XET_CLIENT_READ_TIMEOUT`` unless the user set them.
    Requests retried by huggingface_hub (uploads, on 5xx or timeouts) may each take up to ``timeout``.
    """
    _check_timeout(timeout)
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    previous = getattr(_http, "_GLOBAL_CLIENT_FACTORY", _http.default_client_factory)

    def factory() -> Any:
        client = previous()
        client.timeout = timeout  # httpx accepts a number for all four timeouts
        return client

    xet_env = {
        "HF_XET_CLIENT_CONNECT_TIMEOUT": f"{math.ceil(timeout)}s",
        "HF_XET_CLIENT_READ_TIMEOUT": f"{math.ceil(timeout)}s",
    }
    added = [name for name in xet_env if name not in os.environ]
    set_client_factory(factory)
    for name in added:
        os.environ[name] = xet_env[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
        set_client_factory(previous)


def _check_repo_id(repo_id: Any) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(repo_id, str) or not repo_id:
        raise ValueError(f"repo_id must be a non-empty string like 'username/model-name', got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ValueError(
            f"invalid repo_id {repo_id!r}: {exc} Use 'namespace/name' with letters, digits, '-', '_' and '.' only."
        ) from exc
    if "/" not in repo_id:
        raise ValueError(
            f"repo_id {repo_id!r} has no namespace: use 'username/{repo_id}' (or 'organisation/{repo_id}') so the "
            "model card can show the id others load the model with."
        )
    return repo_id


def _resolve_token(token: str | None) -> str:
    """The token to push with: the argument, else ``HF_TOKEN``, else the stored login; a clear error if none."""
    from huggingface_hub import get_token

    resolved = token or get_token()
    if not resolved:
        raise PermissionError(
            "no Hugging Face token: pass token=..., set the HF_TOKEN environment variable or run `hf auth login` "
            "(a token with write access: https://huggingface.co/settings/tokens)."
        )
    return resolved


def _default_commit_message(run_dir: Path) -> str:
    results = _read_json(run_dir / RESULTS_FILE, RESULTS_FILE)
    data = results.get("data") if isinstance(results.get("data"), Mapping) else {}
    dataset = data.get("title") or results.get("dataset") or "MovieLens"
    message = f"Upload {results.get('model') or 'rec-transformer'} trained on {dataset}"
    ndcg = _finite(((results.get("metrics") or {}).get("test") or {}).get("ndcg@10"))
    return message + (f" (test NDCG@10 {ndcg:.4f})" if ndcg is not None else "")


def push_to_hub(
    run_dir: str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
    timeout: float = 60.0,
    endpoint: str | None = None,
    template_path: str | os.PathLike[str] | None = None,
) -> CommitInfo:
    """Upload a trained run to the Hub in ONE commit, with its model card and training curve.

    Everything that can be checked offline is checked before the first request: the repo id syntax (and a
    namespace), the token, the offline mode and the run folder's files (config.json with ``auto_map``, weights, the
    code files, both vocabularies, results.json). Then the card is rendered for ``repo_id`` (hf-recsys's card, not
    the generic transformers one) into ``README.md``, the training curve is drawn if missing, the repo is created if
    needed and a single `HfApi.create_commit` adds: config.json, the weights, every ``*.py`` code file, the
    vocabularies, results.json, training_curve.png, README.md and the Inference Endpoints ``handler.py``.

    Args:
        run_dir: the run folder written by training.
        repo_id: ``"namespace/name"`` on the Hub.
        private: create the repo private (None: the namespace's default); ignored if the repo exists.
        revision: branch to commit to (created from the default branch if missing).
        create_pr: open a pull request instead of committing to the branch.
        commit_message: defaults to a message naming the model, the dataset and the test NDCG@10.
        token: a write token; defaults to ``HF_TOKEN`` or the stored login.
        timeout: seconds of network silence after which a request fails (see `hub_timeouts`).
        endpoint: another Hub endpoint (mirror, tests); defaults to ``HF_ENDPOINT`` / huggingface.co.
        template_path: card template to use instead of ``hf_recsys/templates/model_card_template.md``.

    Returns:
        The `huggingface_hub.CommitInfo` (``commit_url``, ``pr_url`` when ``create_pr``).

    Raises:
        ValueError: invalid repo id or arguments. PermissionError: no token. FileNotFoundError: incomplete run folder
        or missing template. RuntimeError: offline mode. TimeoutError: the Hub stopped answering.
    """
    from huggingface_hub import constants

    run_dir = Path(run_dir)
    repo_id = _check_repo_id(repo_id)
    if revision is not None and (not isinstance(revision, str) or not revision.strip()):
        raise ValueError(f"revision must be a branch name, got {revision!r}")
    if not isinstance(create_pr, bool):
        raise ValueError(f"create_pr must be True or False, got {create_pr!r}")
    if private is not None and not isinstance(private, bool):
        raise ValueError(f"private must be True, False or None, got {private!r}")
    files = upload_files(run_dir)
    template = _template_path(template_path)
    token = _resolve_token(token)
    if constants.is_offline_mode():
        raise RuntimeError("Hugging Face Hub offline mode is on (HF_HUB_OFFLINE=1): unset it to push.")
    _check_timeout(timeout)

    # Local artefacts: the card for this repo id, the curve if training did not draw it.
    if not (run_dir / CURVE_FILE).is_file():
        history = _read_json(run_dir / RESULTS_FILE, RESULTS_FILE).get("history") or []
        plot_training_curve(history, run_dir / CURVE_FILE)
    write_model_card(run_dir, repo_id=repo_id, template_path=template)

    paths = {name: run_dir / name for name in files}
    for extra in (CURVE_FILE, CARD_FILE):
        if (run_dir / extra).is_file():
            paths[extra] = run_dir / extra
    if HANDLER_FILE not in paths and (TEMPLATE_DIR / HANDLER_FILE).is_file():
        paths[HANDLER_FILE] = TEMPLATE_DIR / HANDLER_FILE
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(paths[name])) for name in sorted(paths)]
    message = commit_message or _default_commit_message(run_dir)

    api = HfApi(endpoint=endpoint, token=token)
    try:
        with hub_timeouts(timeout):
            api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True, token=token)
            if revision is not None and not revision.startswith("refs/pr/"):
                api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True, token=token)
            info = api.create_commit(
                repo_id,
                operations,
                commit_message=message,
                repo_type="model",
                revision=revision,
                create_pr=create_pr,
                token=token,
            )
    except _timeout_errors() as exc:
        raise TimeoutError(
            f"the Hub did not answer within {timeout:g} s while pushing {run_dir} to {repo_id} ({exc!r}); "
            "nothing was committed unless the commit call itself timed out. Retry, or raise timeout=."
        ) from exc
    logger.info("pushed %s to %s: %s", run_dir, repo_id, getattr(info, "pr_url", None) or info.commit_url)
    return info
