"""`tracer erase`, `tracer attack` and `tracer sweep`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml

from tracer.attacks.suite import (
    ATTACKS,
    AttackSuiteConfig,
    format_attack_summary,
    probe_floor_line,
    run_attack_suite,
)
from tracer.errors import UserError
from tracer.evaluation.erasure import ErasureEvalConfig
from tracer.io import write_json
from tracer.outputs import check_file_output
from tracer.unlearning.runner import EraseRequest, erase
from tracer.unlearning.sweep import RULE, SWEEPS_FILE, SweepRequest, run_sweep


def parse_settings(pairs: list[str]) -> dict:
    """``key=value`` pairs (values parsed as YAML scalars) -> dict."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects key=value, got {pair!r}")
        settings[key.strip()] = yaml.safe_load(value)
    return settings


def erase_command(
    model: Path = typer.Argument(..., help="Trained (or already erased) model folder."),
    data: Path = typer.Option(..., "--data", help="The prepared dataset the model was trained on."),
    concept: str = typer.Option(
        ..., "--concept", help="Concept spec: NAME, title~REGEX, items:FILE; joined by ';'."
    ),
    method: str = typer.Option(
        ..., "--method", help="Erasure method (tracer, retrain, finetune, ga, graddiff, ...)."
    ),
    out: Path = typer.Option(..., "--out", help="Folder of the new artifact."),
    config: Path | None = typer.Option(None, "--config", help="YAML file overriding the method's defaults."),
    setting: list[str] = typer.Option([], "--set", help="Override one setting: key=value (repeatable)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed (default: the config's)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder."),
    from_root: bool = typer.Option(
        False,
        "--from-root",
        help="MODEL is an erased model: erase the union of its chain and --concept from the model the "
        "chain started from, not from MODEL's weights (docs/method.md §8.13).",
    ),
) -> None:
    """Erase a concept from a model; writes a new artifact (the parent is never modified)."""
    manifest = erase(
        EraseRequest(
            model_dir=model,
            data_dir=data,
            concept=concept,
            method=method,
            out=out,
            config_file=config,
            overrides=parse_settings(setting),
            seed=seed,
            overwrite=overwrite,
            device=device,
            from_root=from_root,
        )
    )
    typer.echo(
        f"{method}: erased {concept!r} ({len(manifest['concept_item_ids'])} items, "
        f"{manifest['n_forget_targets']:,} forget targets) in {manifest['seconds']:.1f}s, "
        f"{manifest['params_updated']:,} parameters updated -> {out}"
    )
    if manifest["summary"]:
        typer.echo(json.dumps(manifest["summary"], indent=2))
    if "warning" in manifest["summary"]:
        typer.echo(f"warning: {manifest['summary']['warning']}", err=True)


def parse_int_list(text: str, option: str) -> list[int]:
    """``"16,64,256"`` -> [16, 64, 256], with a one-line error for anything else."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{option} expects comma-separated whole numbers, got {text!r}") from None


def attack_command(
    model: Path = typer.Argument(..., help="An erased (or any) model folder."),
    data: Path = typer.Option(..., "--data", help="The prepared dataset."),
    concept: str = typer.Option(..., "--concept", help="The erased concept's spec."),
    attacks: str = typer.Option(
        ",".join(ATTACKS), "--attacks", help=f"Comma-separated subset of: {', '.join(ATTACKS)}."
    ),
    examples: str = typer.Option(
        "16,64,256", "--examples", help="Relearning curve: forget-example counts (comma-separated)."
    ),
    steps: str = typer.Option(
        "25,50,100,200", "--steps", help="Relearning curve: step counts measured (comma-separated)."
    ),
    lr: float = typer.Option(AttackSuiteConfig.lr, "--lr", help="Relearning learning rate."),
    benign_steps: int = typer.Option(
        AttackSuiteConfig.benign_steps, "--benign-steps", help="Benign relearning: retain-only steps."
    ),
    probe_targets: int = typer.Option(
        AttackSuiteConfig.probe_targets, "--probe-targets", help="Probe: training targets to fit on."
    ),
    parent: Path | None = typer.Option(
        None, "--parent", help="Restore-codes: the parent model folder (default: the manifest's)."
    ),
    split: str = typer.Option("test", "--split", help="Users measured: test, or valid for tuning."),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(None, "--out", help="Write the result as JSON here."),
    device: str = typer.Option("cpu", "--device"),
) -> None:
    """The attack suite: relearning curve, benign relearning, restore-codes and a linear probe
    (docs/method.md, "Attacks"); the artifact is never modified. Run it on Retrain too: the reference."""
    config = AttackSuiteConfig(
        attacks=tuple(a.strip() for a in attacks.split(",") if a.strip()),
        examples=tuple(parse_int_list(examples, "--examples")),
        steps=tuple(parse_int_list(steps, "--steps")),
        lr=lr,
        benign_steps=benign_steps,
        probe_targets=probe_targets,
        seed=seed,
    )
    if split not in ("test", "valid"):
        raise UserError(f"--split must be test or valid, got {split!r}")
    evaluation = ErasureEvalConfig(split=split)
    if out is not None:  # never inside a model folder or an input; an earlier result file is replaced
        check_file_output(out, True, {"model": model, "dataset": data})
    result = run_attack_suite(model, data, concept, config, evaluation, device=device, parent_dir=parent)
    if out is not None:
        write_json(out, result)
    typer.echo(format_attack_summary({str(model): result["summary"]}))
    if (floor := probe_floor_line(result)) is not None:
        typer.echo(floor)


def sweep_command(
    model: Path = typer.Argument(..., help="Trained model folder (the parent of every cell)."),
    data: Path = typer.Option(..., "--data"),
    concept: str = typer.Option(..., "--concept"),
    method: str = typer.Option(..., "--method"),
    out: Path = typer.Option(..., "--out", help="Sweep folder; finished cells are reused (resumable)."),
    grid: list[str] = typer.Option(
        [], "--grid", help="key=v1,v2,... (repeatable); default: the method's space in sweeps.yaml."
    ),
    retrain: Path | None = typer.Option(
        None,
        "--retrain",
        help="Retrain of MODEL for the concept (reused; trained there if missing). Default: OUT/retrain.",
    ),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device"),
) -> None:
    grid_values = {}
    for entry in grid:
        key, sep, values = entry.partition("=")
        if not sep:
            raise UserError(f"--grid expects key=v1,v2,..., got {entry!r}")
        grid_values[key.strip()] = [yaml.safe_load(v) for v in values.split(",")]
    summary = run_sweep(
        SweepRequest(model, data, concept, method, out, grid_values or None, seed, device, retrain)
    )
    typer.echo(summary["table"])
    typer.echo(f"default: {summary['default']['settings']}  picked: {summary['best']['settings']}")


SWEEP_HELP = (
    "Tuning sweep of one method on the VALIDATION split: every trial of its search space "
    f"({SWEEPS_FILE.name}: the same number of trials for every training method), its defaults as one "
    f"more cell, the parent and Retrain. The pick: {RULE} (docs/method.md §5.1)."
)


def register(app: typer.Typer) -> None:
    app.command("erase")(erase_command)
    app.command("attack")(attack_command)
    app.command("sweep", help=SWEEP_HELP)(sweep_command)
