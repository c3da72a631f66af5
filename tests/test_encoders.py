"""Encoders: the packaged USE model embeds offline, the cache is keyed by encoder + texts, precomputed
vectors are aligned with the catalogue or rejected with a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tracer.errors import UserError
from tracer.semantic_ids import encoders
from tracer.semantic_ids.encoders import embed_texts, item_texts, load_item_vectors, texts_key


def test_use_encoder_embeds_offline_and_caches(tmp_path):
    texts = ["A horror film about a haunted house", "A scary ghost movie", "Quarterly tax accounting rules"]
    vectors = embed_texts(texts, "use", cache_dir=tmp_path, progress=False)
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] and similarity[0, 1] > similarity[1, 2]
    cached = list(tmp_path.glob("use-*.npy"))
    assert len(cached) == 1
    np.testing.assert_array_equal(np.load(cached[0]), vectors)


def test_cache_is_reused_and_keyed_by_encoder_and_texts(tmp_path, monkeypatch):
    calls = []

    def fake_loader(name):
        def encode(batch):
            calls.append(list(batch))
            return np.array([[len(text), ord(text[0])] for text in batch], dtype=np.float32)

        return encode

    monkeypatch.setattr(encoders, "_load_encoder", fake_loader)
    texts = ["alpha", "beta", "gamma"]
    first = embed_texts(texts, "use", cache_dir=tmp_path, batch_size=2, progress=False)
    assert calls == [["alpha", "beta"], ["gamma"]]
    second = embed_texts(texts, "use", cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(first, second)
    assert len(calls) == 2  # served from the cache
    embed_texts(["alpha", "beta", "delta"], "use", cache_dir=tmp_path, progress=False)
    assert len(calls) == 3  # other texts: a new key
    assert texts_key("use", texts) != texts_key("minilm", texts)
    assert texts_key("use", ["ab", "c"]) != texts_key("use", ["a", "bc"])


def test_cache_dir_defaults_to_tracer_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACER_CACHE", str(tmp_path))
    assert encoders.default_cache_dir() == tmp_path / "embeddings"


def test_unknown_encoder_and_missing_minilm_are_user_errors(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="unknown encoder"):
        embed_texts(["x"], "bert", cache_dir=tmp_path)

    def missing(name):
        raise ImportError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(encoders.importlib, "import_module", missing)
    with pytest.raises(UserError, match=r"pip install 'tracer-rec\[minilm\]'"):
        embed_texts(["x"], "minilm", cache_dir=tmp_path, progress=False)


def test_precomputed_npy_and_parquet_vectors(tmp_path):
    ids = ["10", "11", "12"]
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.save(tmp_path / "v.npy", vectors)
    np.testing.assert_array_equal(load_item_vectors(tmp_path / "v.npy", ids), vectors)
    shuffled = pd.DataFrame({"item_id": ["12", "10", "11"], "vec": [vectors[2], vectors[0], vectors[1]]})
    shuffled.to_parquet(tmp_path / "v.parquet")
    np.testing.assert_array_equal(load_item_vectors(tmp_path / "v.parquet", ids), vectors)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (np.zeros((2, 4), dtype=np.float32), "shape"),
        (np.zeros(3, dtype=np.float32), "shape"),
        (np.array([[0.0], [np.nan], [1.0]], dtype=np.float32), "NaN"),
    ],
)
def test_bad_npy_vectors_are_user_errors(tmp_path, content, message):
    np.save(tmp_path / "v.npy", content)
    with pytest.raises(UserError, match=message):
        load_item_vectors(tmp_path / "v.npy", ["a", "b", "c"])


def test_bad_parquet_vectors_are_user_errors(tmp_path):
    pd.DataFrame({"item_id": ["a", "b", "x"], "vec": [[0.0], [1.0], [2.0]]}).to_parquet(
        tmp_path / "ids.parquet"
    )
    with pytest.raises(UserError, match="do not match"):
        load_item_vectors(tmp_path / "ids.parquet", ["a", "b", "c"])
    pd.DataFrame({"item_id": ["a"], "u": [[0.0]], "v": [[1.0]]}).to_parquet(tmp_path / "cols.parquet")
    with pytest.raises(UserError, match="exactly one vector column"):
        load_item_vectors(tmp_path / "cols.parquet", ["a"])
    with pytest.raises(UserError, match="not found"):
        load_item_vectors(tmp_path / "none.npy", ["a"])


def test_item_texts_variants():
    items = pd.DataFrame({"title": ["Alien (1979)", None], "text": ["Alien (1979). Horror, Sci-Fi", "B"]})
    assert item_texts(items, "full") == ["Alien (1979). Horror, Sci-Fi", "B"]
    assert item_texts(items, "title") == ["Alien (1979)", ""]
    with pytest.raises(UserError, match="text variant"):
        item_texts(items, "summary")
