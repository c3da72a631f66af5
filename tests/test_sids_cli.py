"""`tracer sids` and `tracer sids-stats` on a tiny synthetic prepared dataset (precomputed vectors)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers.sids_inputs import N_ITEMS
from tracer.cli import main
from tracer.semantic_ids.encoders import embed_texts
from tracer.semantic_ids.quantization import load_tokenization, soft_assignment
from tracer.semantic_ids.sid_table import SidTable


def run_sids(data, vectors, out, *extra):
    return main(
        ["sids", str(data), "--vectors", str(vectors), "--out", str(out), "--codebook-size", "4", *extra]
    )


@pytest.mark.parametrize("method", ["rq-kmeans", "rq-vae"])
def test_sids_writes_a_complete_artifact(prepared, tmp_path, capsys, method):
    data, vectors = prepared
    out = tmp_path / "sids"
    assert run_sids(data, vectors, out, "--method", method, "--epochs", "3") == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "item_vectors.npy",
        "sid_table.json",
        "sids.parquet",
        "stats.json",
        "tokenizer.safetensors",
    ]
    table = SidTable.load(out)
    assert table.n_items == N_ITEMS and len(np.unique(table.codes, axis=0)) == N_ITEMS
    np.testing.assert_array_equal(table.item_ids, [f"m{i}" for i in range(N_ITEMS)])
    tokenization = load_tokenization(out)
    np.testing.assert_array_equal(tokenization.codes, table.level_codes)
    probs = soft_assignment(tokenization.residuals, tokenization.codebooks, 0.005)
    np.testing.assert_array_equal(probs.argmax(-1), table.level_codes)
    np.testing.assert_array_equal(np.load(out / "item_vectors.npy"), np.load(vectors))
    stats = json.loads((out / "stats.json").read_text())
    assert stats["method"] == method and stats["encoder"].startswith("vectors:")
    assert set(stats["seconds"]) >= {"embed", "tokenize", "sid_table", "stats"}
    assert set(stats["entanglement"]) == {"Comedy", "Drama", "Horror"}
    assert "collision rate" in capsys.readouterr().out
    assert not list(tmp_path.glob(".sids.*"))  # no staging folder left behind


def test_same_seed_same_sids_through_the_cli(prepared, tmp_path):
    data, vectors = prepared
    assert run_sids(data, vectors, tmp_path / "a", "--seed", "3") == 0
    assert run_sids(data, vectors, tmp_path / "b", "--seed", "3") == 0
    np.testing.assert_array_equal(SidTable.load(tmp_path / "a").codes, SidTable.load(tmp_path / "b").codes)


def test_sids_stats_prints_entanglement(prepared, tmp_path, capsys):
    data, vectors = prepared
    out = tmp_path / "sids"
    assert run_sids(data, vectors, out) == 0
    capsys.readouterr()
    assert main(["sids-stats", str(out), "--data", str(data), "--concept", "Horror", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["concept"] == "Horror" and report["n_concept_items"] == 10
    table = SidTable.load(out)
    mask = np.arange(N_ITEMS) % 4 == 0
    level_one_retain = set(table.codes[~mask, 0].tolist())
    expected_first = np.mean([code in level_one_retain for code in table.codes[mask, 0]])
    assert report["entanglement"][0] == pytest.approx(expected_first)
    assert len(report["entanglement"]) == 3
    assert main(["sids-stats", str(out), "--data", str(data), "--concept", "Horror"]) == 0
    assert "entanglement[Horror]" in capsys.readouterr().out


def test_user_errors(prepared, tmp_path, capsys):
    data, vectors = prepared
    short = tmp_path / "short.npy"
    np.save(short, np.zeros((N_ITEMS - 1, 8), dtype=np.float32))
    assert run_sids(data, short, tmp_path / "x") == 2
    assert "items.parquet row" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    out = tmp_path / "sids"
    assert run_sids(data, vectors, out) == 0
    before = (out / "sids.parquet").read_bytes()
    assert run_sids(data, vectors, out, "--seed", "9") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "sids.parquet").read_bytes() == before
    assert run_sids(data, vectors, out, "--seed", "9", "--overwrite") == 0
    assert (
        main(["sids", str(data), "--vectors", str(vectors), "--out", str(tmp_path / "y"), "--text", "x"]) == 2
    )
    assert main(["sids-stats", str(out), "--data", str(data), "--concept", "Westerns"]) == 2
    assert "unknown concept" in capsys.readouterr().err


def test_sids_embeds_titles_with_the_packaged_encoder(prepared, tmp_path, monkeypatch):
    data, _ = prepared
    monkeypatch.setenv("TRACER_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "sids"
    assert main(["sids", str(data), "--out", str(out), "--text", "title", "--codebook-size", "4"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["encoder"] == "use" and stats["text"] == "title" and stats["vector_dim"] == 512
    titles = [f"Movie {i}" for i in range(N_ITEMS)]
    expected = embed_texts(titles, "use", cache_dir=tmp_path / "cache" / "embeddings", progress=False)
    np.testing.assert_array_equal(np.load(out / "item_vectors.npy"), expected)
    # one cache file: the second call (same encoder, same titles) read what the CLI wrote
    assert len(list((tmp_path / "cache" / "embeddings").glob("use-*.npy"))) == 1
