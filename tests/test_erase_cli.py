"""`tracer erase` end to end on a tiny world: the parent stays byte-identical, the manifest records the
erasure, Filter zeroes exposure without moving concept mass, sequential erasures chain, bad concepts
write nothing."""

from __future__ import annotations

import pytest

from tracer.cli import main
from tracer.errors import UserError
from tracer.evaluation.erasure import ErasureEvalConfig, evaluate_erasure
from tracer.io import read_json, sha256_tree

EVAL = ErasureEvalConfig(k_max=10, beam_width=24, mass_users=30)


def erase(world, out, method, concept="Horror", extra=()):
    return main(
        [
            "erase",
            str(world.model_dir),
            "--data",
            str(world.data_dir),
            "--concept",
            concept,
            "--method",
            method,
            "--out",
            str(out),
            "--set",
            "steps=3",
            *extra,
        ]
    )


@pytest.mark.parametrize("method", ["tracer", "npo", "rmu"])
def test_parent_untouched_and_manifest_complete(world, tmp_path, method):
    before = sha256_tree(world.model_dir)
    out = tmp_path / method
    assert erase(world, out, method) == 0
    assert sha256_tree(world.model_dir) == before
    manifest = read_json(out / "manifest.json")
    for key in (
        "method",
        "concept",
        "concept_item_ids",
        "parent_sha256",
        "config",
        "seed",
        "seconds",
        "params_updated",
    ):
        assert key in manifest
    assert manifest["method"] == method and manifest["parent_sha256"] == before
    assert len(manifest["concept_item_ids"]) == 6 and manifest["params_updated"] > 0
    assert manifest["config"]["steps"] == 3
    assert (out / "model.safetensors").is_file() and (out / "sids" / "sids.parquet").is_file()


def test_a_parent_that_changes_during_the_erasure_writes_nothing(world, tmp_path, monkeypatch, capsys):
    """Another process writing the parent mid-erasure (the hash taken after differs): exit 2, one line,
    no output folder."""
    from tracer.unlearning import runner

    hashes = iter(["before", "after"])
    monkeypatch.setattr(runner, "sha256_tree", lambda folder: next(hashes))
    out = tmp_path / "changed"
    assert erase(world, out, "filter") == 2
    assert "changed while it was being erased" in capsys.readouterr().err and not out.exists()


def test_filter_zero_exposure_same_concept_mass(world, tmp_path):
    out = tmp_path / "filter"
    assert erase(world, out, "filter") == 0
    assert read_json(out / "manifest.json")["params_updated"] == 0
    original, _ = evaluate_erasure(world.model_dir, world.data_dir, "Horror", EVAL)
    filtered, ranking = evaluate_erasure(out, world.data_dir, "Horror", EVAL)
    assert original["headline"]["exposure@10"] > 0
    assert filtered["headline"]["exposure@10"] == 0.0
    assert filtered["headline"]["concept_mass"] == pytest.approx(
        original["headline"]["concept_mass"], rel=1e-6
    )
    assert (ranking.items >= 0).all()  # lists are still full: other items fill the slots


def test_sequential_erasure_chains_manifests(world, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert erase(world, first, "filter", concept="Horror") == 0
    assert (
        main(
            [
                "erase",
                str(first),
                "--data",
                str(world.data_dir),
                "--concept",
                "Comedy",
                "--method",
                "graddiff",
                "--out",
                str(second),
                "--set",
                "steps=2",
            ]
        )
        == 0
    )
    manifest = read_json(second / "manifest.json")
    assert [(e["method"], e["concept"]) for e in manifest["chain"]] == [
        ("filter", "Horror"),
        ("graddiff", "Comedy"),
    ]
    assert len(manifest["decode_exclude_item_ids"]) == 6  # the filter of the first request still applies


@pytest.mark.parametrize(
    ("concept", "message"), [("Horor", "did you mean 'Horror'"), ("title~^zzz", "matches no item")]
)
def test_bad_concept_writes_nothing(world, tmp_path, capsys, concept, message):
    out = tmp_path / "bad"
    assert erase(world, out, "tracer", concept=concept) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".bad")]


def test_unknown_method_and_setting(world, tmp_path, capsys):
    assert erase(world, tmp_path / "x", "magic") == 2
    assert "unknown erasure method 'magic'" in capsys.readouterr().err
    assert erase(world, tmp_path / "y", "npo", extra=("--set", "betta=1")) == 2
    assert "unknown key(s) betta" in capsys.readouterr().err


def test_evaluate_cli_reports_forgetting_metrics_and_applies_the_filter(world, tmp_path):
    filtered, retrain = tmp_path / "filter", tmp_path / "retrain"
    assert erase(world, filtered, "filter") == 0
    assert erase(world, retrain, "retrain") == 0
    out = tmp_path / "metrics.json"
    args = ["evaluate", str(filtered), "--data", str(world.data_dir), "--concept", "Horror", "--k-max", "10"]
    args += ["--beam", "24", "--mass-users", "20", "--retrain", str(retrain), "--out", str(out)]
    assert main(args) == 0
    metrics = read_json(out)
    assert metrics["exposure"]["exposure@10"] == 0.0  # `tracer evaluate` decodes with the filtered trie
    assert metrics["headline"]["concept_mass"] > 0  # ... while the model still predicts the concept
    assert {"gap_retain_ndcg@10", "gap_exposure@10", "top10_overlap"} <= set(metrics["vs_retrain"])
    assert metrics["cost"]["params_updated"] == 0


def test_settings_accept_yaml_exponents_and_reject_bad_numbers():
    from tracer.unlearning.base import build_config
    from tracer.unlearning.methods import method_class

    config = build_config(method_class("tracer"), {"lr": "1e-4", "steps": "25", "tau": 0.01})
    assert config.lr == 1e-4 and isinstance(config.lr, float)
    assert config.steps == 25 and isinstance(config.steps, int)
    for bad in ({"steps": 2.5}, {"lr": "fast"}):
        with pytest.raises(UserError, match="must be a"):
            build_config(method_class("tracer"), bad)


def test_a_chained_erasure_keeps_every_earlier_concept_in_its_forget_set(world, tmp_path):
    """Erasing Comedy from a Horror-erased model forgets Horror's targets too, so the later request
    cannot let the earlier concept come back; the manifest says which concept each step forgot."""
    from tracer.data.artifact import load_dataset
    from tracer.data.concepts import concept_targets, resolve_concept
    from tracer.data.sequences import build_sequences

    first, second = tmp_path / "first", tmp_path / "second"
    steps = ("--set", "steps=2")
    assert main(["erase", str(world.model_dir), "--data", str(world.data_dir), "--concept", "Horror",
                 "--method", "ga", *steps, "--out", str(first)]) == 0  # fmt: skip
    assert main(["erase", str(first), "--data", str(world.data_dir), "--concept", "Comedy",
                 "--method", "ga", *steps, "--out", str(second)]) == 0  # fmt: skip
    manifest = read_json(second / "manifest.json")
    assert manifest["concept"] == "Comedy" and manifest["forget_concept"] == "Horror; Comedy"
    dataset = load_dataset(world.data_dir)
    union = concept_targets(build_sequences(dataset), resolve_concept(dataset, "Horror; Comedy"))
    comedy = concept_targets(build_sequences(dataset), resolve_concept(dataset, "Comedy"))
    assert manifest["n_forget_targets"] == union.n_forget > comedy.n_forget
    assert [entry["forget_concept"] for entry in manifest["chain"]] == ["Horror", "Horror; Comedy"]


def test_from_root_erases_the_union_from_the_chains_first_model(world, tmp_path):
    """`--from-root` on a Horror-erased model gives exactly the one-shot erasure of "Horror; Comedy"
    from the original model (same weights and SIDs), and the manifest names both."""
    first, second, once = tmp_path / "first", tmp_path / "second", tmp_path / "once"
    assert erase(world, first, "tracer") == 0
    assert main(["erase", str(first), "--data", str(world.data_dir), "--concept", "Comedy", "--method",
                 "tracer", "--set", "steps=3", "--from-root", "--out", str(second)]) == 0  # fmt: skip
    assert erase(world, once, "tracer", concept="Horror; Comedy") == 0
    for name in ("model.safetensors", "sids/sids.parquet", "sids/tokenizer.safetensors"):
        assert (second / name).read_bytes() == (once / name).read_bytes()
    chained = tmp_path / "chained"  # without --from-root the chain starts from the erased weights
    assert main(["erase", str(first), "--data", str(world.data_dir), "--concept", "Comedy", "--method",
                 "tracer", "--set", "steps=3", "--out", str(chained)]) == 0  # fmt: skip
    assert (chained / "model.safetensors").read_bytes() != (once / "model.safetensors").read_bytes()
    manifest = read_json(second / "manifest.json")
    assert manifest["parent"] == str(world.model_dir) and manifest["chained_from"] == str(first)
    assert manifest["parent_sha256"] == sha256_tree(world.model_dir)
    assert manifest["forget_concept"] == "Horror; Comedy"
    assert [entry["concept"] for entry in manifest["chain"]] == ["Horror", "Comedy"]
    assert "chained_from" not in read_json(once / "manifest.json")
    rooted = tmp_path / "rooted"  # a model never erased is its own root: the plain erasure
    assert erase(world, rooted, "tracer", concept="Horror; Comedy", extra=("--from-root",)) == 0
    assert (rooted / "model.safetensors").read_bytes() == (once / "model.safetensors").read_bytes()
    assert "chained_from" not in read_json(rooted / "manifest.json")


def test_from_root_refuses_a_root_that_changed_and_writes_nothing(world, tmp_path, capsys):
    import shutil

    root, first, second = tmp_path / "root", tmp_path / "first", tmp_path / "second"
    shutil.copytree(world.model_dir, root)
    assert main(["erase", str(root), "--data", str(world.data_dir), "--concept", "Horror", "--method", "ga",
                 "--set", "steps=2", "--out", str(first)]) == 0  # fmt: skip
    (root / "config.json").write_text((root / "config.json").read_text() + " ")
    args = ["erase", str(first), "--data", str(world.data_dir), "--concept", "Comedy", "--method", "ga",
            "--set", "steps=2", "--from-root", "--out", str(second)]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 2
    assert "has changed since" in capsys.readouterr().err and not second.exists()
    shutil.rmtree(root)
    assert main(args) == 2
    assert "which is not there" in capsys.readouterr().err and not second.exists()
