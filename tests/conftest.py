"""Test environment: offline Hub, a private HF_HOME, and the path of the real MovieLens files.

The environment variables must be set before transformers/datasets are imported, hence module level.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="hf_recsys_test_home_"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("HF_RECSYS_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """Folder with the real MovieLens copies (../shared/data); tests that need it skip when it is absent."""
    if not (DATA_DIR / "movielens-1m").is_dir():
        pytest.skip(f"real MovieLens files not found under {DATA_DIR} (set HF_RECSYS_DATA_DIR)")
    return DATA_DIR


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op thread for a module of tiny-model tests (`pytestmark = pytest.mark.usefixtures(...)`).

    Tiny models gain nothing from intra-op threads, and on a shared 2-core machine OpenMP threads that wait for
    each other make the training tests 10-50x slower.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def sequences_file(tmp_path_factory) -> Path:
    """61 users whose histories follow a learnable pattern (item i is usually followed by i+1)."""
    import numpy as np

    rng = np.random.default_rng(0)
    lines = []
    for user in range(1, 62):
        start = int(rng.integers(1, 30))
        length = int(rng.integers(6, 25))
        items = [(start + k) % 40 + 1 for k in range(length)]
        if rng.random() < 0.3:
            items[int(rng.integers(0, length - 3))] = int(rng.integers(1, 41))
        items = list(dict.fromkeys(items))  # MovieLens has one interaction per user and movie
        lines += [f"{user} {item}" for item in items]
    path = tmp_path_factory.mktemp("data") / "seqs.txt"
    path.write_text("\n".join(lines) + "\n")
    return path
