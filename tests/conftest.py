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
