"""Hub sharing: the model card, the training curve, the one-commit upload and its guards.

No test here touches the network except `test_live_push` (only with HF_TOKEN). The others intercept
`HfApi.create_repo` / `create_commit` and install an HTTP client factory that fails on any request, so an
accidental call cannot reach the Hub.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
import torch
from huggingface_hub import CommitInfo, HfApi, ModelCard, RepoUrl, constants, set_client_factory
from huggingface_hub.utils import _http
from tiny_run import MOVIE_IDS, STRING_MOVIE_IDS, STRING_USER_IDS, make_tiny_run

from hf_recsys import hub
from hf_recsys.hub import plot_training_curve, push_to_hub, render_model_card, upload_files, write_model_card
from hf_recsys.inference import save_pipeline_files

REPO_ID = "alice/tiny-rec"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run folder per module (saving a model is the slow part); tests work on copies.

    With the inference module available the folder also gets the custom pipeline files (pipeline, recommender,
    vocab code and ``custom_pipelines`` in config.json), as a trained run has them.
    """
    folder = make_tiny_run(tmp_path_factory.mktemp("tiny") / "run")
    try:
        from hf_recsys.inference import save_pipeline_files
    except ImportError:
        return folder
    save_pipeline_files(folder)
    return folder


@pytest.fixture
def run_dir(tiny_run_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny run folder that a test may modify."""
    return Path(shutil.copytree(tiny_run_template, tmp_path / "run"))


class HubRecorder:
    """Stands in for the Hub: records create_repo / create_branch / create_commit calls."""

    def __init__(self) -> None:
        self.repos: list[dict[str, Any]] = []
        self.branches: list[dict[str, Any]] = []
        self.commits: list[dict[str, Any]] = []

    def create_repo(self, repo_id: str, **kwargs: Any) -> RepoUrl:
        self.repos.append({"repo_id": repo_id, **kwargs})
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_branch(self, repo_id: str, **kwargs: Any) -> None:
        self.branches.append({"repo_id": repo_id, **kwargs})

    def create_commit(self, repo_id: str, operations: Any, **kwargs: Any) -> CommitInfo:
        operations = list(operations)
        # Read what would be uploaded now: the files could change after the call.
        files = {op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in operations}
        self.commits.append({"repo_id": repo_id, "operations": operations, "files": files, **kwargs})
        pr = "https://huggingface.co/alice/tiny-rec/discussions/1" if kwargs.get("create_pr") else None
        return CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/abc123",
            commit_message=kwargs["commit_message"],
            commit_description="",
            oid="abc123",
            pr_url=pr,
        )

    @property
    def calls(self) -> int:
        return len(self.repos) + len(self.branches) + len(self.commits)


def _no_http() -> Any:
    raise AssertionError("a test tried to open an HTTP connection to the Hub")


@pytest.fixture
def no_network() -> Iterator[None]:
    """Any huggingface_hub HTTP request in the test fails loudly (restored afterwards)."""
    previous = getattr(_http, "_GLOBAL_CLIENT_FACTORY", _http.default_client_factory)
    set_client_factory(_no_http)
    yield
    set_client_factory(previous)


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, no_network: None) -> HubRecorder:
    """Online mode (only for this test) with the Hub calls intercepted."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read once, when huggingface_hub is imported
    recorder = HubRecorder()
    monkeypatch.setattr(HfApi, "create_repo", lambda api, *args, **kwargs: recorder.create_repo(*args, **kwargs))
    monkeypatch.setattr(HfApi, "create_branch", lambda api, *args, **kwargs: recorder.create_branch(*args, **kwargs))
    monkeypatch.setattr(HfApi, "create_commit", lambda api, *args, **kwargs: recorder.create_commit(*args, **kwargs))
    return recorder


@pytest.fixture
def no_stored_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No token anywhere: env unset, token files pointed at an empty folder (a real login cannot leak in)."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no_home" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no_home" / "stored_tokens"))
    assert huggingface_hub.get_token() is None


def _results(run: Path) -> dict[str, Any]:
    return json.loads((run / "results.json").read_text())


# --------------------------------------------------------------------------------------------------------------------
# (a) the exact upload
# --------------------------------------------------------------------------------------------------------------------
def test_push_uploads_the_run_in_one_commit(run_dir: Path, fake_hub: HubRecorder, no_stored_token: None) -> None:
    (run_dir / "training_args.bin").write_bytes(b"not for the Hub")
    (run_dir / "checkpoint-1").mkdir()
    (run_dir / "checkpoint-1" / "model.safetensors").write_bytes(b"old")
    (run_dir / "README.md").write_text("---\ntags:\n- generated_from_trainer\n---\n# generic card\n")

    info = push_to_hub(run_dir, REPO_ID, private=True, token="hf_fake_token")

    assert len(fake_hub.repos) == 1 and len(fake_hub.commits) == 1 and not fake_hub.branches
    repo_call, commit = fake_hub.repos[0], fake_hub.commits[0]
    assert repo_call["repo_id"] == REPO_ID and repo_call["private"] is True and repo_call["exist_ok"] is True
    assert repo_call["token"] == commit["token"] == "hf_fake_token"
    assert commit["repo_id"] == REPO_ID and commit["revision"] is None and commit["create_pr"] is False
    assert "test NDCG@10 0.1890" in commit["commit_message"]
    assert info.commit_url.endswith("/commit/abc123")

    config = json.loads((run_dir / "config.json").read_text())
    code_files = {ref.split(".")[0] + ".py" for ref in config["auto_map"].values()}
    expected = {
        "README.md",
        "config.json",
        "handler.py",
        "item_vocab.json",
        "model.safetensors",
        "results.json",
        "training_curve.png",
        "user_vocab.json",
        *(p.name for p in run_dir.glob("*.py")),
    }
    paths = [op.path_in_repo for op in commit["operations"]]
    assert paths == sorted(expected)
    assert code_files <= set(paths) and "losses.py" in paths  # auto_map files and their relative imports

    files = commit["files"]
    assert json.loads(files["config.json"])["auto_map"] == config["auto_map"]
    assert files["training_curve.png"].startswith(PNG_MAGIC)
    assert files["model.safetensors"] == (run_dir / "model.safetensors").read_bytes()

    # The card is ours (not the generic transformers one) and its YAML carries the measured numbers.
    readme = files["README.md"].decode()
    assert "generated_from_trainer" not in readme and "## Evaluation protocol" in readme
    card = ModelCard(readme)
    assert card.data.library_name == "transformers"
    assert {"recommendation", "sequential-recommendation", "movielens"} <= set(card.data.tags)
    model_index = card.data.to_dict()["model-index"]
    assert model_index[0]["name"] == "tiny-rec"
    measured = {(r["dataset"]["split"], m["type"]): m["value"] for r in model_index[0]["results"] for m in r["metrics"]}
    for split in ("validation", "test"):
        for name, value in _results(run_dir)["metrics"][split].items():
            assert measured[(split, name)] == pytest.approx(value, abs=5e-5)
    assert {r["task"]["type"] for r in model_index[0]["results"]} == {"recommendation"}

    # The rendered table: this model, the popularity baseline and the published numbers side by side.
    assert (
        "| Metric | Validation | Test | Popularity (validation) | Popularity (test) | Published: SASRec (CE) (test) |"
        in readme
    )
    assert "| NDCG@10 | 0.2100 | 0.1890 | 0.0200 | 0.0190 | 0.1820 |" in readme
    assert "| HR@10 | 0.3500 | 0.3150 | 0.0400 | — | 0.3150 |" in readme
    assert "AutoModel.from_pretrained(repo_id, trust_remote_code=True)" in readme and f'"{REPO_ID}"' in readme
    # The folder now mirrors the repository.
    assert (run_dir / "README.md").read_bytes() == files["README.md"]


def test_push_to_branch_and_pull_request(run_dir: Path, fake_hub: HubRecorder) -> None:
    info = push_to_hub(
        run_dir, REPO_ID, revision="dev", create_pr=True, commit_message="try", token="hf_fake", timeout=5
    )
    assert fake_hub.branches == [{"repo_id": REPO_ID, "branch": "dev", "repo_type": "model", "exist_ok": True,
                                  "token": "hf_fake"}]  # fmt: skip
    (commit,) = fake_hub.commits
    assert commit["revision"] == "dev" and commit["create_pr"] is True and commit["commit_message"] == "try"
    assert info.pr_url is not None
    assert fake_hub.repos[0]["private"] is None  # the namespace's default


def test_token_from_environment(run_dir: Path, fake_hub: HubRecorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    push_to_hub(run_dir, REPO_ID)
    assert fake_hub.commits[0]["token"] == "hf_from_env"


def test_cli_pushes_and_reports_errors(
    run_dir: Path, fake_hub: HubRecorder, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hf_recsys.commands import push as script

    args = ["--run_dir", str(run_dir), "--token", "hf_fake", "--private"]
    assert script.main([*args, "--repo_id", REPO_ID]) == 0
    assert capsys.readouterr().out.strip().endswith("/commit/abc123")
    assert fake_hub.repos[0]["private"] is True
    assert script.main([*args, "--repo_id", "alice/bad name"]) == 1
    assert "invalid repo_id" in capsys.readouterr().err
    assert len(fake_hub.commits) == 1


# --------------------------------------------------------------------------------------------------------------------
# (b) bad input fails before anything is uploaded
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("repo_id", "message"),
    [
        ("alice/tiny rec", "invalid repo_id"),
        ("alice/tiny-rec!", "invalid repo_id"),
        ("alice/tiny--rec", "invalid repo_id"),
        ("alice/team/tiny-rec", "invalid repo_id"),
        ("tiny-rec", "no namespace"),
        ("", "non-empty string"),
    ],
)
def test_invalid_repo_id(run_dir: Path, fake_hub: HubRecorder, repo_id: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        push_to_hub(run_dir, repo_id, token="hf_fake")
    assert fake_hub.calls == 0
    assert not (run_dir / "README.md").exists()


def test_no_token(run_dir: Path, fake_hub: HubRecorder, no_stored_token: None) -> None:
    with pytest.raises(PermissionError, match=r"no Hugging Face token.*HF_TOKEN"):
        push_to_hub(run_dir, REPO_ID)
    assert fake_hub.calls == 0


@pytest.mark.parametrize(
    "missing",
    [
        ["model.safetensors"],
        ["item_vocab.json"],
        ["user_vocab.json"],
        ["results.json"],
        ["modeling_rec_transformer.py"],
        ["losses.py"],  # imported by the modeling file: loading would fail on the Hub
        ["model.safetensors", "item_vocab.json", "user_vocab.json"],
    ],
)
def test_incomplete_run_folder(run_dir: Path, fake_hub: HubRecorder, missing: list[str]) -> None:
    for name in missing:
        (run_dir / name).unlink()
    with pytest.raises(FileNotFoundError, match="incomplete") as err:
        push_to_hub(run_dir, REPO_ID, token="hf_fake")
    for name in missing:
        assert name in str(err.value)
    assert fake_hub.calls == 0
    assert not (run_dir / "README.md").exists()


def test_other_bad_input(run_dir: Path, fake_hub: HubRecorder, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run folder not found"):
        push_to_hub(tmp_path / "nope", REPO_ID, token="hf_fake")
    with pytest.raises(ValueError, match="timeout"):
        push_to_hub(run_dir, REPO_ID, token="hf_fake", timeout=0)
    with pytest.raises(FileNotFoundError, match="template not found"):
        push_to_hub(run_dir, REPO_ID, token="hf_fake", template_path=tmp_path / "missing.md")
    config = json.loads((run_dir / "config.json").read_text())
    del config["auto_map"]
    (run_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="auto_map"):
        push_to_hub(run_dir, REPO_ID, token="hf_fake")
    assert fake_hub.calls == 0


def test_offline_mode_is_reported(run_dir: Path, fake_hub: HubRecorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE"):
        push_to_hub(run_dir, REPO_ID, token="hf_fake")
    assert fake_hub.calls == 0


# --------------------------------------------------------------------------------------------------------------------
# the client times out instead of hanging
# --------------------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _silent_server() -> Iterator[str]:
    """A TCP server that accepts connections (kernel backlog) and never answers: a stalled network."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_stalled_hub_times_out(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    previous = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None)
    with _silent_server() as endpoint:
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=r"did not answer within 0\.5 s"):
            push_to_hub(run_dir, REPO_ID, token="hf_fake", timeout=0.5, endpoint=endpoint)
        assert time.monotonic() - start < 10
    assert getattr(_http, "_GLOBAL_CLIENT_FACTORY", None) is previous  # the global client is restored


def test_hub_timeouts_configures_the_shared_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_XET_CLIENT_READ_TIMEOUT", raising=False)
    with hub.hub_timeouts(2.5):
        timeout = _http.get_session().timeout
        assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (2.5, 2.5, 2.5, 2.5)
        assert os.environ["HF_XET_CLIENT_READ_TIMEOUT"] == "3s"
    assert "HF_XET_CLIENT_READ_TIMEOUT" not in os.environ
    assert _http.get_session().timeout.read is None  # huggingface_hub's default client again
    with pytest.raises(ValueError, match="timeout"), hub.hub_timeouts(-1):
        pass


# --------------------------------------------------------------------------------------------------------------------
# (c) live push (network + HF_TOKEN)
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("HF_TOKEN"), reason="live Hub test: set HF_TOKEN (write access) to run it")
def test_live_push(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Push to a private repo, check the files, the card and loading from the Hub, then delete the repo.

    The repo is ``HF_RECSYS_TEST_REPO`` if set (it is DELETED afterwards) or a fresh ``<user>/hf-recsys-test-<hex>``.
    """
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    api = HfApi(token=os.environ["HF_TOKEN"])
    # A unique default name: deleting a repo afterwards must never hit someone's real one.
    repo_id = os.environ.get("HF_RECSYS_TEST_REPO") or f"{api.whoami()['name']}/hf-recsys-test-{uuid.uuid4().hex[:8]}"
    try:
        info = push_to_hub(run_dir, repo_id, private=True, timeout=120)
        assert repo_id in info.commit_url
        remote = set(api.list_repo_files(repo_id))
        assert {"README.md", "config.json", "model.safetensors", "item_vocab.json", "handler.py"} <= remote
        card = ModelCard.load(repo_id, token=os.environ["HF_TOKEN"])
        assert card.data.to_dict()["model-index"][0]["results"]
        from transformers import AutoModel

        model = AutoModel.from_pretrained(repo_id, trust_remote_code=True, token=os.environ["HF_TOKEN"])
        assert model.config.num_items == len(MOVIE_IDS)
    finally:
        with contextlib.suppress(Exception):
            api.delete_repo(repo_id, missing_ok=True)


# --------------------------------------------------------------------------------------------------------------------
# (d) card rendering, plot, snippets, handler
# --------------------------------------------------------------------------------------------------------------------
def test_card_and_plot(run_dir: Path) -> None:
    assert plot_training_curve(_results(run_dir)["history"], run_dir / "training_curve.png") is not None
    assert (run_dir / "training_curve.png").read_bytes().startswith(PNG_MAGIC)
    text = str(render_model_card(run_dir, repo_id=REPO_ID))
    # The three ways to use the model.
    assert f'repo_id = "{REPO_ID}"' in text
    assert "AutoModel.from_pretrained(repo_id, trust_remote_code=True)" in text and "model.recommend(" in text
    assert f'Recommender.from_pretrained("{REPO_ID}")' in text
    assert ".recommend(history=[1, 260, 1196], user_id=11, k=5)" in text
    assert f'pipeline("next-item-recommendation", model="{REPO_ID}", trust_remote_code=True)' in text
    # Licence terms, protocol, curve, citation.
    assert "https://grouplens.org/datasets/movielens/" in text and "ml-1m-README.txt" in text
    assert "must not be redistributed" in text
    assert "leave-one-out" in text.lower() and "whole catalogue" in text and "all 3 users" in text
    assert "![Validation NDCG@10 per epoch](training_curve.png)" in text
    assert "@inproceedings{kang2018sasrec" in text and "@software{hf_recsys" in text
    assert "| `learning_rate` | 0.001 |" in text and "| `user_conditioning` | add |" in text
    assert "items already in the history left out of each softmax" in text  # the training loss, as configured
    # What really works: no install for trust_remote_code, and hf-recsys is on no package index.
    assert "pip install hf-recsys" not in text and "pypi.org/project/hf-recsys" not in text
    assert "nothing else to install" in text and "It is not on PyPI: install it from the source repository" in text
    # An older results.json (no "data" key) still renders, without the data-file lines.
    assert "| Data file |" not in text and "Trained on " not in text


def _config_table(text: str) -> dict[str, str]:
    """The card's model-configuration table as {key: value}."""
    section = text.split("Model configuration (`config.json`):", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([^`]+)` \| (.*) \|$", section, flags=re.MULTILINE))


def test_card_config_table_lists_every_config_field(run_dir: Path) -> None:
    """The table is derived from RecTransformerConfig's fields: all of them appear, except the generic
    PreTrainedConfig fields and the ones hub excludes on purpose (one list, in hub)."""
    import dataclasses

    from transformers import PreTrainedConfig

    from hf_recsys.modeling import RecTransformerConfig

    generic = {f.name for f in dataclasses.fields(PreTrainedConfig)}
    expected = [
        f.name
        for f in dataclasses.fields(RecTransformerConfig)
        if f.name not in generic and f.name not in hub._CARD_EXCLUDED_CONFIG_FIELDS
    ]
    assert len(expected) >= 30 and "future_decay" in expected and "truncate_long_inputs" in expected
    table = _config_table(str(render_model_card(run_dir, repo_id=REPO_ID)))
    assert list(table) == expected  # every field, in the config's own order, nothing else
    config = json.loads((run_dir / "config.json").read_text())
    assert table["hidden_size"] == str(config["hidden_size"]) and table["exclude_seen_in_loss"] == "true"
    assert not {"transformers_version", "dtype", "architectures", "pad_token_id"} & set(table)

    class ExtendedConfig(RecTransformerConfig):  # a field added later reaches the card with no second list to edit
        new_knob: int = 3

    assert hub._config_keys(ExtendedConfig) == (*expected, "new_knob")


ML1M_DATA = {
    "name": "ml-1m",
    "title": "MovieLens 1M",
    "variant": "sasrec-benchmark",
    "source_file": "ml-1m.txt",
    "description": "SASRec-format ML-1M benchmark file (items with < 5 ratings removed)",
    "num_users": 6040,
    "num_items": 3416,
    "num_interactions": 999611,
    "url": "https://grouplens.org/datasets/movielens/1m/",
    "license": "research use only; no redistribution without permission",
}


def _with_data(run_dir: Path, data: dict[str, Any], **results_overrides: Any) -> str:
    results = {**_results(run_dir), "data": data, **results_overrides}
    (run_dir / "results.json").write_text(json.dumps(results))
    return str(render_model_card(run_dir, repo_id=REPO_ID))


def test_card_states_the_data_file(run_dir: Path) -> None:
    text = _with_data(run_dir, ML1M_DATA)
    assert (
        "Trained on MovieLens 1M, the SASRec-format benchmark file `ml-1m.txt` "
        "(3,416 items, 6,040 users, 999,611 interactions)."
    ) in text
    assert "*About this file*: SASRec-format ML-1M benchmark file (items with < 5 ratings removed)." in text
    assert "| Data file | `ml-1m.txt`, the SASRec-format benchmark file |" in text
    assert "[MovieLens 1M](https://grouplens.org/datasets/movielens/1m/)" in text  # the data's own homepage
    assert "In short: research use only; no redistribution without permission." in text
    assert "They were measured on the same SASRec-format benchmark file." in text
    data = ModelCard(text).data.to_dict()
    assert data["license_link"].endswith("ml-1m-README.txt") and "movielens" in data["tags"]
    for result in data["model-index"][0]["results"]:
        assert result["dataset"]["args"] == {"variant": "sasrec-benchmark", "source_file": "ml-1m.txt"}
        assert result["dataset"]["name"] == "MovieLens 1M"


def test_card_warns_when_published_numbers_used_another_file(run_dir: Path) -> None:
    official = {
        **ML1M_DATA,
        "variant": "official",
        "source_file": "ratings.dat",
        "description": "the official GroupLens release",
        "num_items": 3706,
        "num_interactions": 1000209,
    }
    text = _with_data(run_dir, official)
    assert "Trained on MovieLens 1M, the official GroupLens file `ratings.dat` (3,706 items" in text
    assert "not on the official GroupLens file `ratings.dat` that this run used: the numbers are not directly" in text


def test_card_for_data_that_is_not_movielens(run_dir: Path) -> None:
    """A custom sequences file: its own name and counts, no GroupLens terms, no licence claimed when none is known."""
    data = {
        "name": "sequences",
        "title": "my-sequences.txt",
        "variant": "sequences",
        "source_file": "my-sequences.txt",
        "description": "user-item sequences, one 'user item' pair per line",
        "num_users": 61,
        "num_items": 40,
        "num_interactions": 700,
        "url": None,
        "license": None,
    }
    text = _with_data(run_dir, data, dataset="sequences", published={})
    assert "Trained on `my-sequences.txt`, a user-item sequences file (40 items, 61 users, 700 interactions)." in text
    assert "No licence was recorded for it" in text
    assert "GroupLens" not in text.split("## Evaluation protocol")[0] and "harper2015movielens" not in text
    card = ModelCard(text).data.to_dict()
    assert "license" not in card and "movielens" not in card["tags"]
    text = _with_data(run_dir, {**data, "license": "CC-BY-4.0", "url": "https://example.org/seqs"}, dataset="sequences")
    assert "Its licence: CC-BY-4.0." in text and "<https://example.org/seqs>" in text
    card = ModelCard(text).data.to_dict()
    assert card["license"] == "other" and card["license_link"] == "https://example.org/seqs"


def test_card_links_the_source_repository_when_the_package_names_one(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.card, "_source_url", lambda: "https://github.com/example/hf-recsys")
    text = str(render_model_card(run_dir, repo_id=REPO_ID))
    assert "[hf-recsys](https://github.com/example/hf-recsys)" in text
    assert "`pip install git+https://github.com/example/hf-recsys`" in text


def test_card_without_repo_id_or_curve(run_dir: Path, tmp_path: Path) -> None:
    text = str(render_model_card(run_dir))
    assert "your-username/tiny-rec" not in text and 'repo_id = "your-username/rec-transformer-tiny-ml-1m"' in text
    assert "training_curve.png" not in text  # no curve drawn yet: no broken image
    custom = tmp_path / "card.md"
    custom.write_text("---\n{{ card_data }}\n---\n# {{ title }}: {{ num_items }} movies\n")
    card = render_model_card(run_dir, template_path=custom)
    assert card.text.strip() == "# rec-transformer-tiny-ml-1m: 12 movies"
    with pytest.raises(FileNotFoundError, match="template not found"):
        render_model_card(run_dir, template_path=tmp_path / "missing.md")


def test_write_model_card_is_atomic(run_dir: Path) -> None:
    path = write_model_card(run_dir)
    assert path == run_dir / "README.md" and path.read_text().startswith("---\n")
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_plot_skips_rows_without_the_metric(tmp_path: Path) -> None:
    history = [{"epoch": 0.5, "loss": 8.0}, {"epoch": 1, "valid_ndcg@10": float("nan")}]
    assert plot_training_curve(history, tmp_path / "curve.png") is None
    assert not (tmp_path / "curve.png").exists()
    history.append({"epoch": 2, "loss": 7.0, "valid_ndcg@10": 0.1})
    assert plot_training_curve(history, tmp_path / "curve.png") == tmp_path / "curve.png"


def test_upload_files_lists_what_push_sends(run_dir: Path) -> None:
    (run_dir / "trainer_state.json").write_text("{}")
    files = upload_files(run_dir)
    assert "trainer_state.json" not in files and "model.safetensors" in files
    assert files == sorted(files)


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_automodel_snippet_runs(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The card's first snippet, run as written against the local folder (hf_hub_download served from disk)."""
    snippet = _python_blocks(str(render_model_card(run_dir, repo_id=REPO_ID)))[0]
    monkeypatch.setattr(
        huggingface_hub, "hf_hub_download", lambda repo_id, filename, **_: str(Path(repo_id) / filename)
    )
    exec(compile(snippet.replace(f'"{REPO_ID}"', repr(str(run_dir))), "card_snippet_1", "exec"), {})
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5
    recommended = [int(line.split()[0]) for line in lines]
    assert set(recommended) <= set(MOVIE_IDS) and not set(recommended) & {1, 260, 1196}


def test_package_and_pipeline_snippets_run(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Snippets 2 and 3 against the local folder, once the Recommender and the pipeline exist."""
    import hf_recsys

    if not hasattr(hf_recsys, "Recommender"):
        pytest.skip("hf_recsys.Recommender not available yet")
    blocks = _python_blocks(str(render_model_card(run_dir, repo_id=REPO_ID)))
    exec(compile(blocks[1].replace(f'"{REPO_ID}"', repr(str(run_dir))), "card_snippet_2", "exec"), {})
    assert capsys.readouterr().out.strip()
    if "custom_pipelines" not in json.loads((run_dir / "config.json").read_text()):
        pytest.skip("the run folder has no custom pipeline yet")
    exec(compile(blocks[2].replace(f'"{REPO_ID}"', repr(str(run_dir))), "card_snippet_3", "exec"), {})
    assert capsys.readouterr().out.strip()


def _handler(folder: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, hub.TEMPLATE_DIR / "handler.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.EndpointHandler(str(folder))


def test_endpoint_handler(run_dir: Path) -> None:
    """The handler is the pipeline (trust_remote_code): same answers as Recommender, same errors."""
    from hf_recsys import Recommender

    handler = _handler(run_dir, "endpoint_handler")
    rec = Recommender.from_pretrained(run_dir)
    out = handler({"inputs": {"history": [1, 260], "user_id": 22}, "parameters": {"k": 3}})
    assert len(out) == 3 and all(isinstance(r["title"], str) for r in out)
    assert not {r["item_id"] for r in out} & {1, 260}
    expected = rec.recommend(user_id=22, history=[1, 260], k=3)
    assert [r["item_id"] for r in out] == [r["item_id"] for r in expected]
    assert [r["score"] for r in out] == pytest.approx([r["score"] for r in expected], abs=1e-5)
    token = {m: t for t, m in enumerate(sorted(MOVIE_IDS), start=1)}
    model = handler.model.recommend(torch.tensor([[token[1], token[260]]]), user_ids=torch.tensor([2]), k=3)
    assert [token[r["item_id"]] for r in out] == model.item_ids[0].tolist()
    # Titles work as input; an empty history falls back to popularity (token 1 is the most popular here).
    by_title = handler(
        {"inputs": ["Toy Story (1995)", "Star Wars: Episode IV - A New Hope (1977)"], "parameters": {"top_k": 3}}
    )
    assert len(by_title) == 3
    assert handler({"inputs": {"history": []}, "parameters": {"k": 2}})[0]["item_id"] == 1
    assert handler({"history": [1], "parameters": {"k": 1}})[0]["rank"] == 1  # no "inputs": the request itself
    batch = handler({"inputs": [{"history": [1]}, {"history": [260]}], "parameters": {"k": 2}})
    assert [len(one) for one in batch] == [2, 2]
    # The errors are the classes of the model's own errors.py (trust_remote_code): ValueErrors, same names.
    with pytest.raises(ValueError, match="999999") as info:
        handler({"inputs": [999999], "parameters": {"on_unknown": "error"}})
    assert type(info.value).__name__ == "UnknownItemError"
    with pytest.raises(ValueError, match="genres") as info:
        handler({"inputs": [1], "parameters": {"filters": {"genres": ["Comedy"]}}})  # this run has no item fields
    assert type(info.value).__name__ == "UnknownFilterError"
    with pytest.raises(ValueError, match="unknown parameters"):
        handler({"inputs": [1], "parameters": {"kk": 3}})


def test_endpoint_handler_and_card_with_string_ids(tmp_path: Path) -> None:
    """String item and user ids: the handler never parses them as numbers and the card's snippets quote them."""
    folder = make_tiny_run(tmp_path / "string-run", string_ids=True)
    save_pipeline_files(folder)
    handler = _handler(folder, "endpoint_handler_str")
    first, star_wars = STRING_MOVIE_IDS[0], STRING_MOVIE_IDS[MOVIE_IDS.index(260)]
    out = handler(
        {"inputs": {"history": [first, "Heat (1995)"], "user_id": STRING_USER_IDS[1]}, "parameters": {"k": 3}}
    )
    assert len(out) == 3 and all(isinstance(r["item_id"], str) for r in out)
    token = {m: t for t, m in enumerate(sorted(STRING_MOVIE_IDS), start=1)}
    heat = token[STRING_MOVIE_IDS[MOVIE_IDS.index(6)]]
    expected = handler.model.recommend(torch.tensor([[token[first], heat]]), user_ids=torch.tensor([2]), k=3)
    assert [token[r["item_id"]] for r in out] == expected.item_ids[0].tolist()
    assert handler({"inputs": [star_wars], "parameters": {"k": 2}})[0]["item_id"] not in {star_wars}
    with pytest.raises(ValueError, match="260"):
        handler({"inputs": [260], "parameters": {"on_unknown": "error"}})
    text = str(render_model_card(folder, repo_id=REPO_ID))
    assert repr(STRING_USER_IDS[0]) in text and repr(STRING_MOVIE_IDS[0]) in text


def test_card_png_is_linked_only_when_present(run_dir: Path) -> None:
    text = str(render_model_card(run_dir, repo_id=REPO_ID))
    assert "training_curve.png" not in text
    plot_training_curve(_results(run_dir)["history"], run_dir / "training_curve.png")
    assert "training_curve.png" in str(render_model_card(run_dir, repo_id=REPO_ID))


def test_card_with_sparse_results(run_dir: Path) -> None:
    """Trainer extras (loss, runtime), NaN metrics and missing sections render without breaking the card."""
    results = _results(run_dir)
    results["metrics"] = {
        "validation": {"ndcg@10": 0.2, "hr@10": float("nan"), "loss": 6.5, "runtime": 3.0},
        "test": {"ndcg@10": 0.19, "ndcg@5": 0.15},
    }
    for key in ("baselines", "published", "history", "training", "train_seconds", "git_commit", "date"):
        del results[key]
    (run_dir / "results.json").write_text(json.dumps(results))
    text = str(render_model_card(run_dir, repo_id=REPO_ID))
    assert "| Metric | Validation | Test |\n| --- | ---: | ---: |\n| NDCG@5 | — | 0.1500 |" in text
    assert "| HR@10 | — | — |" in text and "Loss" not in text and "Popularity" not in text
    metrics = ModelCard(text).data.to_dict()["model-index"][0]["results"]
    assert {(r["dataset"]["split"], m["type"]) for r in metrics for m in r["metrics"]} == {
        ("validation", "ndcg@10"),
        ("test", "ndcg@5"),
        ("test", "ndcg@10"),
    }


def test_card_lists_the_feature_fields_and_the_upload_carries_their_files(run_dir: Path) -> None:
    """The "Item features" row names each field with its kind and value count (from results.json's
    feature_fields), or says items are read by id only; item_fields.json / user_fields.json are uploaded when the
    run has them."""
    assert "| Item features | none: items are read by id only |" in str(render_model_card(run_dir, repo_id=REPO_ID))
    assert "item_fields.json" not in upload_files(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    config["item_feature_fields"] = [
        {"name": "genres", "size": 19, "max_values": 6},
        {"name": "decade", "size": 10, "max_values": 1},
    ]
    config["item_features_in_output"] = True
    config["user_feature_fields"] = [{"name": "gender", "size": 3, "max_values": 1}]
    (run_dir / "config.json").write_text(json.dumps(config))
    results = _results(run_dir)
    results["feature_fields"] = {
        "item": {
            "genres": {"kind": "multi", "size": 19, "max_values": 6},
            "decade": {"kind": "categorical", "size": 10, "max_values": 1},
        },
        "user": {"gender": {"kind": "categorical", "size": 3, "max_values": 1}},
    }
    (run_dir / "results.json").write_text(json.dumps(results))
    text = str(render_model_card(run_dir, repo_id=REPO_ID))
    row = next(line for line in text.splitlines() if line.startswith("| Item features |"))
    assert "genres (multi, 18 values), decade (categorical, 9 values)" in row
    assert "added to each item's input embedding and to its output row" in row
    assert "plus the user feature fields gender (categorical, 2 values)" in text
    for name in ("item_fields.json", "user_fields.json"):
        (run_dir / name).write_text("{}")
    assert {"item_fields.json", "user_fields.json"} <= set(upload_files(run_dir))
