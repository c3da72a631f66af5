"""``tracer erase``: run one erasure method on a trained model artifact and write a new artifact.

The parent artifact is never modified: its files are hashed before and after, and the new artifact
(model + its own SID table + ``manifest.json``) is built in a staging folder and renamed into place.
"""

from __future__ import annotations

import copy
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

import tracer
from tracer.data.artifact import load_dataset
from tracer.data.concepts import concept_targets, resolve_concept
from tracer.data.sequences import build_sequences
from tracer.errors import UserError
from tracer.evaluation.evaluate import load_model_artifact
from tracer.io import read_json, sha256_tree, staged_output_dir, write_json
from tracer.model.checkpoint import save_model
from tracer.resources import config_file
from tracer.unlearning.base import ErasureContext, UnlearningMethod, build_config
from tracer.unlearning.batches import ForgetRetainBatch, TargetSampler, WindowSampler
from tracer.unlearning.methods import method_class

MANIFEST = "manifest.json"
SID_FOLDER = "sids"
CONFIG_FOLDER = config_file("unlearning")


@dataclass(frozen=True)
class EraseRequest:
    model_dir: Path
    data_dir: Path
    concept: str
    method: str
    out: Path
    config_file: Path | None = None
    overrides: dict | None = None
    seed: int | None = None
    overwrite: bool = False
    device: str = "cpu"


def method_defaults(method: str) -> dict:
    """Defaults of ``method`` from ``configs/unlearning/<method>.yaml`` (empty when there is none),
    on top of the file of the method it ablates, if any (``tracer-no-mask`` reads ``tracer.yaml``)."""
    settings = {}
    for name in (method_class(method).ablates, method):
        path = CONFIG_FOLDER / f"{name}.yaml"
        if name and path.is_file():
            settings.update(yaml.safe_load(path.read_text()) or {})
    return settings


def load_settings(request: EraseRequest) -> dict:
    settings = method_defaults(request.method)
    if request.config_file is not None:
        if not request.config_file.is_file():
            raise UserError(f"config file {request.config_file} not found: give an existing YAML file")
        loaded = yaml.safe_load(request.config_file.read_text()) or {}
        if not isinstance(loaded, dict):
            raise UserError(f"{request.config_file} must hold a mapping of setting: value")
        settings.update(loaded)
    settings.update(request.overrides or {})
    if request.seed is not None:
        settings["seed"] = request.seed
    return settings


def parent_manifest(model_dir: Path) -> dict | None:
    path = model_dir / MANIFEST
    return read_json(path) if path.is_file() else None


def count_changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> int:
    """Number of parameter elements that differ from the parent's."""
    return sum(int((p.detach().cpu() != before[name]).sum()) for name, p in model.named_parameters())


def run_steps(method: UnlearningMethod, model, context: ErasureContext, config) -> list[dict]:
    forget_mask = context.targets.forget_targets
    if model.batch_kind == "sequence" and config.forget_windows > 0:
        forget = WindowSampler(
            context.sequences, forget_mask, config.forget_windows, config.max_history, config.seed
        )
    else:
        forget = TargetSampler(
            context.sequences, forget_mask, config.batch_size, config.max_history, config.seed
        )
    retain_mask = ~forget_mask
    if model.batch_kind == "sequence":
        retain = WindowSampler(
            context.sequences, retain_mask, config.retain_windows, config.max_history, config.seed + 1
        )
    else:
        retain = TargetSampler(
            context.sequences, retain_mask, config.batch_size, config.max_history, config.seed + 1
        )
    optimizer = torch.optim.AdamW(method.parameters(model), lr=config.lr, weight_decay=config.weight_decay)
    model.train(config.dropout)
    log = []
    bar = tqdm(range(config.steps), desc=f"erase ({method.name})", leave=False)
    for step in bar:
        batch = ForgetRetainBatch(forget.sample().to(context.device), retain.sample().to(context.device))
        terms = method.step(model, batch, optimizer)
        bar.set_postfix({k: f"{v:.3g}" for k, v in terms.items() if isinstance(v, float)})
        if step % 10 == 0 or step == config.steps - 1:
            log.append({"step": step, **terms})
    model.eval()
    return log


def import_optimizer_runtime() -> None:
    """torch's optimizers import its compiler stack (``torch._dynamo``) on their first step, 3-5 s on this
    CPU: import it before the clock starts, so a manifest's ``seconds`` is the erasure's own time, for
    Retrain and every other method alike, whichever ran first in the process."""
    import torch._dynamo  # noqa: F401


def erase(request: EraseRequest) -> dict:
    """Erase ``request.concept`` from the model at ``request.model_dir``; returns the new manifest."""
    import_optimizer_runtime()
    started = time.perf_counter()
    if request.out.exists() and not request.overwrite:
        raise UserError(
            f"output folder {request.out} already exists: choose another --out or pass --overwrite"
        )
    if request.out.resolve() == request.model_dir.resolve():
        raise UserError("--out must differ from the parent model folder: the parent is never modified")
    cls = method_class(request.method)
    config = build_config(cls, load_settings(request))
    dataset = load_dataset(request.data_dir)
    concept = resolve_concept(dataset, request.concept)
    parent_hash = sha256_tree(request.model_dir)
    model, sid_table, model_config = load_model_artifact(request.model_dir)
    if model.n_items != dataset.n_items:
        raise UserError(
            f"model {request.model_dir} has {model.n_items} items "
            f"but {request.data_dir} has {dataset.n_items}: "
            "use the dataset the model was trained on"
        )
    sequences = build_sequences(dataset)
    targets = concept_targets(sequences, concept)
    if targets.n_forget == 0:
        raise UserError(f"concept {request.concept!r} has no training targets: there is nothing to forget")
    device = torch.device(request.device)
    model.to(device)
    torch.manual_seed(config.seed)
    reference = None
    if cls.wants_reference(config):
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    context = ErasureContext(
        data_dir=request.data_dir,
        model_config=model_config,
        sequences=sequences,
        concept=concept,
        targets=targets,
        sid_table=sid_table,
        sids_dir=request.model_dir / SID_FOLDER,
        reference=reference,
        device=device,
    )
    method = cls(config, context)
    before = {name: p.detach().cpu().clone() for name, p in model.named_parameters()}
    method.setup(model)
    log = run_steps(method, model, context, config) if cls.trains else []
    new_table, summary = method.finish(model, sid_table)
    seconds = time.perf_counter() - started

    parent = parent_manifest(request.model_dir)
    inherited_exclusions = list((parent or {}).get("decode_exclude_item_ids", []))
    exclusions = sorted(set(inherited_exclusions) | set(summary.pop("decode_exclude_item_ids", [])))
    entry = {
        "method": request.method,
        "concept": request.concept,
        "concept_item_ids": sid_table.item_ids[concept.item_indices].tolist(),
        "parent": str(request.model_dir),
        "parent_sha256": parent_hash,
        "config": asdict(config),
        "seed": config.seed,
        "seconds": round(seconds, 3),
        "params_updated": count_changed(before, model),
        "params_total": sum(p.numel() for p in model.parameters()),
        "n_forget_targets": targets.n_forget,
        "n_retain_targets": targets.n_retain,
        "summary": summary,
    }
    manifest = {
        **entry,
        "decode_exclude_item_ids": exclusions,
        "chain": [
            *((parent or {}).get("chain", [])),
            {k: v for k, v in entry.items() if k != "concept_item_ids"},
        ],
        "tracer_version": tracer.__version__,
    }
    with staged_output_dir(request.out, request.overwrite) as stage:
        save_model(stage, model, extra={"parent_config": model_config})
        _copy_tokenizer_state(request.model_dir / SID_FOLDER, stage / SID_FOLDER)
        new_table.save(stage / SID_FOLDER)
        write_json(stage / "erase_log.json", log)
        write_json(stage / MANIFEST, manifest)
    if sha256_tree(request.model_dir) != parent_hash:  # a bug, not a user error
        raise RuntimeError(f"the parent artifact {request.model_dir} changed during erasure")
    return manifest


def _copy_tokenizer_state(source: Path, target: Path) -> None:
    """Copy the parent's tokenizer files (codebooks, residuals, item vectors) into the new artifact."""
    target.mkdir(parents=True, exist_ok=True)
    for file in source.iterdir() if source.is_dir() else []:
        if file.is_file():
            shutil.copy2(file, target / file.name)
