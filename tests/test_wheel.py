"""The wheel is complete: what a pip user gets trains, writes its model card and pushes, with no source tree around.

The test builds the wheel from a copy of this checkout, installs it (``pip install --no-deps``, not editable) into a
fresh virtual environment and, from a working directory outside the repository, runs a tiny training that writes
its card, then a push with ``HfApi.create_commit`` intercepted. The new environment reuses the running interpreter's
dependencies through a ``.pth`` file that lists its site-packages: a path line in a ``.pth`` file adds the folder to
``sys.path`` but does not run the ``.pth`` files inside it, so the editable install of this checkout stays inactive
and ``hf_recsys`` can only come from the wheel (the child checks ``hf_recsys.__file__``). Nothing is downloaded
when setuptools and wheel are importable here (``--no-build-isolation``); otherwise pip fetches the build backend
from the package index. About 10 s on two cores: build and install take a second each, the child (imports, one tiny
epoch, card, push) the rest.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import site
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_FILES = (
    "hf_recsys/templates/model_card_template.md",
    "hf_recsys/templates/handler.py",
    "hf_recsys/presets/ml-1m.json",
    "hf_recsys/presets/lastfm.json",
)
# Paths of a checkout that never go into a build: environments, earlier builds, caches, run folders.
_NOT_SOURCES = (".git", ".venv", "build", "dist", "runs", "__pycache__", ".pytest_cache", ".ruff_cache", ".cache")


# --------------------------------------------------------------------------------------------------------------------
# building and installing
# --------------------------------------------------------------------------------------------------------------------
def _run(cmd: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def _source_files(repo: Path) -> list[Path]:
    """Files of the checkout, relative: git's view (tracked + untracked, not ignored) when available."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=repo,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode()
        files = [Path(name) for name in listed.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        files = [p.relative_to(repo) for p in repo.rglob("*") if p.is_file()]
    return [f for f in files if not set(f.parts) & set(_NOT_SOURCES) and not f.parts[0].endswith(".egg-info")]


def _copy_sources(repo: Path, dest: Path) -> Path:
    """A clean copy of the checkout: setuptools builds in-tree, and a stale ``build/`` would leak old files."""
    for rel in _source_files(repo):
        if (repo / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, dest / rel)
    return dest


def _can_build_without_isolation() -> bool:
    """setuptools (new enough for the SPDX ``license`` string) and wheel importable in this interpreter."""
    try:
        import setuptools
        import wheel  # noqa: F401
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


def _build_wheel(src: Path, dist: Path) -> tuple[Path, str]:
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", str(dist)]
    if _can_build_without_isolation():
        cmd.append("--no-build-isolation")
    proc = _run([*cmd, str(src)], timeout=600)
    wheels = sorted(dist.glob("hf_recsys-*.whl"))
    assert len(wheels) == 1, f"expected one hf_recsys wheel in {dist}, found {wheels}"
    return wheels[0], proc.stdout + proc.stderr


def _venv_paths(venv: Path) -> tuple[Path, Path]:
    """(python, scripts folder) of a virtual environment."""
    scripts = venv / ("Scripts" if os.name == "nt" else "bin")
    return scripts / ("python.exe" if os.name == "nt" else "python"), scripts


def _venv_site_packages(python: Path) -> Path:
    out = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], timeout=60)
    return Path(out.stdout.strip())


def _parent_site_packages() -> list[str]:
    """Where the running interpreter's dependencies live (its purelib/platlib and site-packages folders)."""
    folders = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        folders.append(site.getusersitepackages())
    return [f for f in dict.fromkeys(folders) if Path(f).is_dir()]


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(the wheel built from a clean copy of this checkout, the build's output)."""
    root = tmp_path_factory.mktemp("wheel_build")
    src = _copy_sources(REPO_ROOT, root / "src")
    return _build_wheel(src, root / "dist")


@pytest.fixture(scope="module")
def installed_venv(built_wheel: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed (not editable) and this interpreter's dependencies."""
    wheel, _ = built_wheel
    venv = tmp_path_factory.mktemp("wheel_venv") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    python, _ = _venv_paths(venv)
    site_packages = _venv_site_packages(python)
    # Path lines only: the folders join sys.path after the venv's own site-packages, their .pth files do not run.
    (site_packages / "_parent_site_packages.pth").write_text("\n".join(_parent_site_packages()) + "\n")
    # pip (borrowed from the parent) installs into the venv; --ignore-installed: never look at, let alone
    # uninstall, the editable hf-recsys that the borrowed folders hold.
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--ignore-installed",
            "--no-index",
            "--disable-pip-version-check",
            str(wheel),
        ],
        timeout=300,
    )
    return venv


# --------------------------------------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------------------------------------
def test_wheel_contents(built_wheel: tuple[Path, str]) -> None:
    """Every module of the package and its data files are in the wheel; the build raises no packaging warning."""
    wheel, log = built_wheel
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    for name in DATA_FILES:
        assert name in names, f"{name} missing from {wheel.name}"
    modules = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "hf_recsys").rglob("*.py")}
    assert modules - names == set(), "modules missing from the wheel"
    assert not [n for n in names if n.startswith(("model_cards/", "tests/", "scripts/"))]
    assert "License-Expression: Apache-2.0" in metadata
    assert "is absent from the `packages` configuration" not in log  # templates/ ships as data, not a package
    assert "License classifiers are deprecated" not in log and "TOML table" not in log


CHILD = textwrap.dedent(
    '''
    """Runs inside the fresh venv, from a folder outside the repository: tiny training, card, intercepted push."""
    import json
    import os
    import sys
    from pathlib import Path

    import hf_recsys

    args = json.loads(sys.argv[1])
    report = {"hf_recsys_file": hf_recsys.__file__, "prefix": sys.prefix, "sys_path": sys.path}

    from hf_recsys import hub
    from hf_recsys.training import DataArguments, ModelArguments, RecTrainingArguments, run_training

    report["template_dir"] = str(hub.TEMPLATE_DIR)
    run_dir = Path(args["run_dir"])
    run_training(
        ModelArguments(hidden_size=16, intermediate_size=32, num_hidden_layers=1),
        DataArguments(
            dataset="sequences", sequences_path=args["sequences"], cache_dir=args["cache_dir"], max_length=20
        ),
        RecTrainingArguments(
            output_dir=str(run_dir),
            num_train_epochs=1,
            per_device_train_batch_size=16,
            learning_rate=1e-2,
            compile_loss=False,
            disable_tqdm=True,
            seed=7,
            early_stopping_patience=0,
            warmup_steps=0,
        ),
    )
    report["run_files"] = sorted(p.name for p in run_dir.iterdir())

    # The push, with the Hub intercepted: online mode for this call only, any real HTTP request fails.
    from huggingface_hub import CommitInfo, HfApi, RepoUrl, constants, set_client_factory

    def no_http():
        raise AssertionError("the wheel test tried to reach the Hub")

    set_client_factory(no_http)
    os.environ.pop("HF_HUB_OFFLINE", None)
    constants.HF_HUB_OFFLINE = False
    commits = []

    def create_repo(self, repo_id, **kwargs):
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_commit(self, repo_id, operations, **kwargs):
        commits.append(
            {
                "repo_id": repo_id,
                "operations": {op.path_in_repo: str(op.path_or_fileobj) for op in operations},
                "commit_message": kwargs.get("commit_message"),
            }
        )
        return CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/abc123",
            commit_message=kwargs.get("commit_message") or "",
            commit_description="",
            oid="abc123",
        )

    HfApi.create_repo = create_repo
    HfApi.create_commit = create_commit
    info = hub.push_to_hub(run_dir, "alice/wheel-test", token="hf_fake")
    report["commit_url"] = info.commit_url
    report["commits"] = commits
    Path(args["report"]).write_text(json.dumps(report, indent=2))
    '''
)


def _sequences(path: Path) -> Path:
    """A small 'user item' file (the SASRec format of --dataset sequences) with a learnable next-item pattern."""
    rng = random.Random(0)
    lines = []
    for user in range(1, 41):
        start, length = rng.randint(1, 29), rng.randint(6, 20)
        lines += [f"{user} {(start + k) % 30 + 1}" for k in range(length)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_wheel_install_trains_writes_its_card_and_pushes(installed_venv: Path, tmp_path: Path) -> None:
    python, scripts = _venv_paths(installed_venv)
    work = tmp_path / "elsewhere"  # the working directory: outside the repository, nothing of it on sys.path
    work.mkdir()
    assert not work.resolve().is_relative_to(REPO_ROOT)
    (work / "child.py").write_text(CHILD)
    args = {
        "sequences": str(_sequences(work / "seqs.txt")),
        "run_dir": str(work / "run"),
        "cache_dir": str(work / "hf_cache"),
        "report": str(work / "report.json"),
    }
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(work / "hf_home"),
        PYTHONNOUSERSITE="1",
        MPLBACKEND="Agg",
    )
    env.pop("HF_TOKEN", None)
    _run([str(python), str(work / "child.py"), json.dumps(args)], timeout=600, cwd=work, env=env)
    report = json.loads((work / "report.json").read_text())

    # hf_recsys (and its package data) came from the wheel in the new venv, not from this checkout.
    venv = installed_venv.resolve()
    assert Path(report["hf_recsys_file"]).resolve().is_relative_to(venv), report["hf_recsys_file"]
    assert Path(report["template_dir"]).resolve().is_relative_to(venv)
    assert Path(report["prefix"]).resolve() == venv
    assert not any(Path(p).resolve() == REPO_ROOT for p in report["sys_path"] if p)

    # Training wrote the complete run folder with its card.
    run_dir = work / "run"
    card = (run_dir / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and "## Evaluation protocol" in card
    assert "pip install hf-recsys" not in card
    assert "AutoModel.from_pretrained(repo_id, trust_remote_code=True)" in card
    data = json.loads((run_dir / "results.json").read_text()).get("data")
    if data:  # once training records the data file (results.json "data"), the card names it
        assert f"| Data file | `{data['source_file']}`" in card and "Trained on " in card

    # One commit with everything a stranger needs; the handler is the one shipped in the wheel.
    assert len(report["commits"]) == 1
    operations = report["commits"][0]["operations"]
    expected = {
        "config.json",
        "model.safetensors",
        "item_vocab.json",
        "user_vocab.json",
        "README.md",
        "handler.py",
        "results.json",
    }
    assert expected <= set(operations), sorted(operations)
    assert Path(operations["handler.py"]).resolve().is_relative_to(venv)
    pushed_card = Path(operations["README.md"]).read_text(encoding="utf-8")
    assert "pip install hf-recsys" not in pushed_card and 'repo_id = "alice/wheel-test"' in pushed_card

    # the console script of the wheel: the top-level help lists every subcommand, and a subcommand's help is its
    # HfArgumentParser program
    listed = _run([str(scripts / "hf-recsys"), "--help"], timeout=120, cwd=work, env=env).stdout
    for name in ("train", "evaluate", "recommend", "push", "app", "demo", "bench"):
        assert f"  {name} " in listed, name
    train_help = _run([str(scripts / "hf-recsys"), "train", "--help"], timeout=120, cwd=work, env=env).stdout
    assert train_help.startswith("usage: hf-recsys train") and "--num_hidden_layers" in train_help
