"""Offline exports (hf_recsys.export): batch recommendations to Parquet, item embeddings, the ONNX scorer, and
their errors (unknown users, an existing output, an empty list), on tiny models over tiny data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from hf_recsys import cli
from hf_recsys.export import (
    DatasetHistories,
    HistoryBatch,
    export_onnx,
    export_recommendations,
    item_embeddings,
    load_item_embeddings,
    read_user_list,
    save_item_embeddings,
    top_similar,
    write_recommendations,
)
from hf_recsys.modeling import RecTransformerConfig, RecTransformerForNextItemPrediction
from hf_recsys.modeling.vocab import save_vocabs
from hf_recsys.training import DataArguments

pytestmark = pytest.mark.usefixtures("single_thread")


def _model_for(data, folder: Path, user_conditioning: str = "add", seed: int = 0) -> Path:
    """An untrained tiny model in the data's tokens, saved as a run folder (weights + vocabularies)."""
    torch.manual_seed(seed)
    config = RecTransformerConfig(
        num_items=data.items.num_items,
        num_users=data.users.num_users,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        user_conditioning=user_conditioning,
    )
    model = RecTransformerForNextItemPrediction(config).eval()
    model.save_pretrained(folder)
    save_vocabs(folder, data.items, data.users)
    return folder


@pytest.fixture(scope="module")
def data_args(sequences_file, tmp_path_factory) -> DataArguments:
    cache = tmp_path_factory.mktemp("cache")
    return DataArguments(dataset="sequences", sequences_path=str(sequences_file), cache_dir=str(cache))


@pytest.fixture(scope="module")
def data(data_args):
    return data_args.load(42)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> Path:
    return _model_for(data, tmp_path_factory.mktemp("run"))


def _cli_args(data_args: DataArguments) -> list[str]:
    return ["--dataset", "sequences", "--sequences_path", data_args.sequences_path, "--cache_dir", data_args.cache_dir]


def _histories(data) -> dict[int, list[int]]:
    test = data.dataset["test"]
    return {row["user_id"]: [*row["input_ids"], row["target"]] for row in test}


# ---------------------------------------------------------------------------------------------------------------
# Batch recommendations
# ---------------------------------------------------------------------------------------------------------------
def test_every_user_gets_the_model_top_k_after_the_whole_history(run, data, tmp_path):
    out = tmp_path / "recs.parquet"
    summary = export_recommendations(run, data, out, k=5, batch_size=7, progress=False)
    table = pq.read_table(out)
    assert table.schema.names == ["user_id", "rank", "item_id", "score"]
    assert str(table.schema.field("user_id").type) == "int64" and str(table.schema.field("score").type) == "float"
    histories = _histories(data)
    assert summary.num_users == len(histories) == len(set(table.column("user_id").to_pylist()))
    assert summary.num_rows == table.num_rows == 5 * len(histories)
    model = RecTransformerForNextItemPrediction.from_pretrained(run).eval()
    rows = table.to_pandas()
    for user_id, group in rows.groupby("user_id"):
        history = histories[user_id]
        assert group["rank"].tolist() == [1, 2, 3, 4, 5]
        assert not set(group["item_id"]) & set(data.items.decode_many(history).tolist())  # seen items excluded
        user_index = torch.tensor([data.users.encode(user_id)])
        expected = model.recommend(torch.tensor([history]), user_ids=user_index, k=5)
        np.testing.assert_allclose(group["score"].to_numpy(), expected.scores[0].numpy(), rtol=1e-4, atol=1e-5)
        assert group["item_id"].tolist() == data.items.decode_many(expected.item_ids[0].numpy()).tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["recs.parquet"]  # no temporary file left behind


def test_seen_items_come_back_with_exclude_seen_false(run, data, tmp_path):
    out = tmp_path / "recs.parquet"
    export_recommendations(run, data, out, k=40, exclude_seen=False, progress=False)
    rows = pq.read_table(out).to_pandas()
    assert len(rows) == 40 * rows["user_id"].nunique()  # the whole catalogue, history included


def test_fewer_items_left_than_k_gives_fewer_rows_never_padding(run, data, tmp_path):
    out = tmp_path / "recs.parquet"
    export_recommendations(run, data, out, k=35, progress=False)
    rows = pq.read_table(out).to_pandas()
    histories = _histories(data)
    for user_id, group in rows.groupby("user_id"):
        left = 40 - len(set(histories[user_id]))
        assert len(group) == min(35, left) and group["rank"].tolist() == list(range(1, len(group) + 1))
        assert np.isfinite(group["score"]).all() and group["score"].is_monotonic_decreasing


def test_a_user_list_restricts_the_export(run, data, tmp_path):
    users_file = tmp_path / "users.txt"
    users_file.write_text("# the users to refresh\n3\n\n5\n3\n")
    out = tmp_path / "recs.parquet"
    summary = export_recommendations(run, data, out, users=str(users_file), k=3, progress=False)
    assert sorted(set(pq.read_table(out).column("user_id").to_pylist())) == [3, 5]
    assert summary.num_users == 2 and summary.unknown_users == []
    export_recommendations(run, data, out, users="7, 8", k=3, overwrite=True, progress=False)
    assert sorted(set(pq.read_table(out).column("user_id").to_pylist())) == [7, 8]


def test_unknown_users_are_an_error_naming_them_or_skipped_and_counted(run, data, tmp_path):
    out = tmp_path / "recs.parquet"
    with pytest.raises(ValueError, match=r"2 of the 3 listed users have no history.*999.*1000.*--on_unknown skip"):
        export_recommendations(run, data, out, users=[3, 999, 1000], k=3, progress=False)
    assert not out.exists()
    summary = export_recommendations(run, data, out, users=[3, 999, 1000], k=3, on_unknown="skip", progress=False)
    assert summary.unknown_users == [999, 1000] and summary.num_users == 1
    with pytest.raises(ValueError, match="no user to export"):
        export_recommendations(run, data, out, users=[999], k=3, on_unknown="skip", overwrite=True, progress=False)


def test_user_lists_are_parsed_strictly(tmp_path):
    assert read_user_list("all") is None and read_user_list(None) is None
    assert read_user_list("1,2, 2,3") == [1, 2, 3]
    assert read_user_list(["a", "b"], "str") == ["a", "b"]
    empty = tmp_path / "none.txt"
    empty.write_text("# nobody\n\n")
    with pytest.raises(ValueError, match="is empty"):
        read_user_list(str(empty))
    with pytest.raises(ValueError, match="'x7' is not a whole number"):
        read_user_list("1,x7")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_user_list(str(tmp_path / "missing" / "users.txt"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_user_list("users.txt")


def test_the_command_refuses_an_existing_file_and_reports_bad_input_in_one_line(run, data_args, capsys, tmp_path):
    out = tmp_path / "recs.parquet"
    argv = ["export", "--model", str(run), *_cli_args(data_args), "--k", "4", "--output", str(out)]
    argv += ["--progress", "false"]
    assert cli.main(argv) == 0
    assert '"num_users": 61' in capsys.readouterr().out
    before = out.stat().st_mtime_ns
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists" in err and "--overwrite" in err
    assert out.stat().st_mtime_ns == before
    assert cli.main([*argv, "--overwrite", "--users", "4,12345", "--on_unknown", "skip"]) == 0
    assert '"skipped_users": 1' in capsys.readouterr().out
    assert cli.main([*argv, "--overwrite", "--users", "4,12345"]) == 1
    assert "12345" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert cli.main([*argv, "--overwrite", "--users", str(empty)]) == 1
    assert "is empty" in capsys.readouterr().err
    assert cli.main(["export", "--model", str(run)]) == 1
    assert "nothing to export" in capsys.readouterr().err


def test_string_ids_keep_their_type(tmp_path):
    rng = np.random.default_rng(1)
    lines = ["customer,sku"]
    for user in range(12):
        lines += [f"C{user:02d},SKU-{int(item):02d}" for item in rng.choice(20, size=6, replace=False)]
    log = tmp_path / "log.csv"
    log.write_text("\n".join(lines) + "\n")
    args = DataArguments(data=str(log), user_column="customer", item_column="sku", cache_dir=str(tmp_path / "c"))
    data = args.load(42)
    run = _model_for(data, tmp_path / "run")
    out = tmp_path / "recs.parquet"
    export_recommendations(run, args, out, users="C03,C07", k=3, progress=False)
    table = pq.read_table(out)
    assert str(table.schema.field("user_id").type) == "string" and str(table.schema.field("item_id").type) == "string"
    assert sorted(set(table.column("user_id").to_pylist())) == ["C03", "C07"]
    assert all(item.startswith("SKU-") for item in table.column("item_id").to_pylist())


def test_newer_data_is_aligned_to_the_model_and_unknown_items_are_never_recommended(tmp_path):
    """A model of an early log exports on the whole log: new users are served as unknown users, new items are
    read in histories but never recommended, ids stay those of the model's vocabulary."""
    lines = ["customer,sku"]
    for user in range(16):
        items = [(user + step) % 12 if user < 8 else 12 + (user + step) % 6 for step in range(6)]
        lines += [f"C{user:02d},SKU-{item:02d}" for item in items]
    early, full = tmp_path / "early.csv", tmp_path / "full.csv"
    early.write_text("\n".join(lines[: 1 + 8 * 6]) + "\n")
    full.write_text("\n".join(lines) + "\n")
    options = {"user_column": "customer", "item_column": "sku", "cache_dir": str(tmp_path / "c")}
    run = _model_for(DataArguments(data=str(early), **options).load(42), tmp_path / "run")
    out = tmp_path / "recs.parquet"
    summary = export_recommendations(run, DataArguments(data=str(full), **options), out, k=4, progress=False)
    rows = pq.read_table(out).to_pandas()
    assert summary.num_users == 16 and rows["user_id"].nunique() == 16
    assert set(rows["item_id"]) <= {f"SKU-{i:02d}" for i in range(12)}


def test_any_stream_of_histories_can_be_written(run, data, tmp_path):
    """write_recommendations reads a generator of CSR batches (a feature store, a synthetic benchmark)."""
    model = RecTransformerForNextItemPrediction.from_pretrained(run).eval()

    def batches():
        for start in (1, 4):
            yield HistoryBatch(
                user_ids=np.array([start, start + 1]),
                user_index=np.array([0, 0]),
                tokens=np.array([1, 2, 3, 4, 5], dtype=np.int64),
                offsets=np.array([0, 2, 5]),
            )

    summary = write_recommendations(model, batches(), tmp_path / "r.parquet", data.items.item_ids, k=2, progress=False)
    assert summary.num_users == 4 and pq.read_table(tmp_path / "r.parquet").num_rows == 8


def test_histories_are_each_users_longest_row_longest_first(data):
    histories = DatasetHistories(data.dataset, data.users, batch_size=16)
    lengths = np.concatenate([batch.lengths for batch in histories.batches()])
    expected = sorted((len(h) for h in _histories(data).values()), reverse=True)
    assert lengths.tolist() == expected and histories.num_batches == -(-len(expected) // 16)


# ---------------------------------------------------------------------------------------------------------------
# Item embeddings
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".parquet", ".safetensors"])
def test_item_embeddings_round_trip(run, data, tmp_path, suffix):
    ids, matrix = item_embeddings(run)
    model = RecTransformerForNextItemPrediction.from_pretrained(run)
    assert matrix.dtype == np.float32 and matrix.shape == (data.items.num_items, 16)
    np.testing.assert_array_equal(matrix, model.output_weight()[1:].detach().numpy())
    assert ids.tolist() == data.items.item_ids.tolist()
    path = save_item_embeddings(tmp_path / f"items{suffix}", ids, matrix)
    back_ids, back = load_item_embeddings(path)
    assert back_ids.tolist() == ids.tolist()
    np.testing.assert_array_equal(back, matrix)
    with pytest.raises(FileExistsError):
        save_item_embeddings(path, ids, matrix)


def test_the_command_writes_embeddings_without_data_and_similarity_is_exact(run, tmp_path, capsys):
    out = tmp_path / "items.safetensors"
    assert cli.main(["export", "--model", str(run), "--embeddings", str(out)]) == 0
    assert '"items": 40' in capsys.readouterr().out
    _, matrix = load_item_embeddings(out)
    normalized = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    top = top_similar(normalized, matrix[3], k=5, exclude=3)
    expected = np.argsort(-(normalized @ normalized[3]))
    assert top.tolist() == [i for i in expected if i != 3][:5]


# ---------------------------------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("user_conditioning", ["none", "add"])
def test_onnx_graph_returns_the_pytorch_top_k(data, tmp_path, user_conditioning):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    run = _model_for(data, tmp_path / "run", user_conditioning, seed=3)
    path = export_onnx(run, tmp_path / "model.onnx", k=5)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model = RecTransformerForNextItemPrediction.from_pretrained(run).eval()
    rows = [[0, 0, 4, 9, 2], [7, 8, 0, 0, 0], [0, 0, 0, 0, 31]]  # left and right padding, a 1-item history
    long_row = [*range(1, 21), *range(1, 17)]  # longer than the 32-item window: the graph keeps the most recent items
    for batch, users in ((rows, [1, 0, 5]), ([long_row], [2])):
        feed = {"input_ids": np.array(batch, dtype=np.int64)}
        if user_conditioning != "none":
            feed["user_ids"] = np.array(users, dtype=np.int64)
        tokens, scores = session.run(None, feed)
        for i, row in enumerate(batch):
            history = torch.tensor([[t for t in row if t]])
            if len(long_row) == len(row):
                history = history[:, -32:]
            user_ids = torch.tensor([users[i]]) if user_conditioning != "none" else None
            ref = model.recommend(history, user_ids=user_ids, k=5, exclude_item_ids=torch.tensor([row]))
            np.testing.assert_allclose(scores[i], ref.scores[0].numpy(), rtol=1e-4, atol=1e-5)
            same = tokens[i] == ref.item_ids[0].numpy()
            assert same.all() or np.allclose(scores[i][~same], ref.scores[0].numpy()[~same], atol=1e-5)  # ties
            assert not set(tokens[i].tolist()) & set(row)


def test_export_onnx_command_refuses_an_existing_file(run, tmp_path, capsys):
    pytest.importorskip("onnx")
    out = tmp_path / "m.onnx"
    assert cli.main(["export-onnx", "--model", str(run), "--output", str(out), "--k", "3"]) == 0
    assert cli.main(["export-onnx", "--model", str(run), "--output", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_the_export_benchmark_runs_on_a_tiny_model(run):
    """benchmarks/bench_export.py end to end at toy sizes (the ML-1M section needs the real data: not here)."""
    import importlib.util

    pytest.importorskip("onnxruntime")
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bench_export", root / "benchmarks" / "bench_export.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    try:
        argv = ["--sections", "synthetic,similarity,onnx", "--model", str(run), "--synthetic_users", "900"]
        argv += ["--synthetic_items", "50", "--sim_sizes", "2000", "--queries", "20", "--requests", "3"]
        outputs = bench.main([*argv, "--history_length", "20"])
    finally:
        torch.set_num_threads(threads)
    assert "| 900 | 9,000 |" in outputs[0]
    assert "numpy exact" in outputs[1] and "| PyTorch model.recommend |" in outputs[2]
