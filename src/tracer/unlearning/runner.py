"""``tracer erase``: run one erasure method on a trained model artifact and write a new artifact.

The parent artifact is never modified: its files are hashed before and after, and the new artifact
(model + its own SID table + ``manifest.json``) is built in a staging folder and renamed into place.
"""

from __future__ import annotations

import copy
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

import tracer
from tracer.data.artifact import load_dataset
from tracer.data.concepts import concept_targets, resolve_concept
from tracer.data.sequences import build_sequences
from tracer.distributed import resolve_device
from tracer.errors import UserError
from tracer.io import sha256_tree, write_json
from tracer.model.artifact import MANIFEST_FILE, artifact_manifest, check_item_alignment, load_model_artifact
from tracer.model.checkpoint import check_finite, save_model
from tracer.outputs import claim_folder
from tracer.typed_config import read_yaml
from tracer.unlearning.base import ErasureContext, UnlearningMethod, build_config, method_settings
from tracer.unlearning.batches import ForgetRetainBatch, erasure_history, forget_sampler, retain_sampler
from tracer.unlearning.methods import method_class

LOG_EVERY = 10  # steps between reads of the losses on the host (log, progress bar, non-finite check)
SID_FOLDER = "sids"


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
    from_root: bool = False


def method_defaults(method: str) -> dict:
    """The settings of ``configs/unlearning/<method>.yaml``, with those of the files it names as base."""
    cls = method_class(method)
    return method_settings(cls.name, cls.config_class)


def load_settings(request: EraseRequest) -> dict:
    """Overrides of the method's YAML settings: ``--config``, ``--set`` and ``--seed``. Each layer is
    checked on its own (:func:`build_config`), so that an error names the file or flag it came from."""
    cls = method_class(request.method)
    layers = [(f"configs/unlearning/{request.method}.yaml", {})]
    if request.config_file is not None:
        layers.append((str(request.config_file), read_yaml(request.config_file) or {}))
    layers.append((f"--set of method {request.method}", request.overrides or {}))
    layers.append(("--seed", {} if request.seed is None else {"seed": request.seed}))
    settings = {}
    for source, layer in layers:
        build_config(cls, layer, source)
        settings.update(layer)
    return settings


def count_changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> int:
    """Number of parameter elements that differ from the parent's; every element of a parameter whose
    shape changed (Retrain on rebuilt SIDs, with another vocabulary) counts."""
    return sum(
        int((p.detach().cpu() != before[name]).sum()) if p.shape == before[name].shape else p.numel()
        for name, p in model.named_parameters()
    )


def run_steps(method: UnlearningMethod, model, context: ErasureContext, config) -> list[dict]:
    forget_mask = context.targets.forget_targets
    history = erasure_history(model, config)
    forget = forget_sampler(context.sequences, forget_mask, model.batch_kind, config, history, config.seed)
    retain = retain_sampler(
        context.sequences, ~forget_mask, model.batch_kind, config, history, config.seed + 1
    )
    optimizer = torch.optim.AdamW(method.parameters(model), lr=config.lr, weight_decay=config.weight_decay)
    model.train(config.dropout)
    log = []
    finite = torch.ones((), dtype=torch.bool, device=context.device)  # on the device: no sync per step
    bar = tqdm(range(config.steps), desc=f"erase ({method.name})", leave=False)
    for step in bar:
        batch = ForgetRetainBatch(forget.sample().to(context.device), retain.sample().to(context.device))
        terms = method.step(model, batch, optimizer)
        for value in terms.values():
            if isinstance(value, torch.Tensor):
                finite &= value.isfinite().all()
            elif isinstance(value, float) and not math.isfinite(value):  # already on the host
                finite &= False
        if step % LOG_EVERY == 0 or step == config.steps - 1:  # the host reads the device every 10 steps
            if not bool(finite):
                raise UserError(
                    f"{method.name} diverged (a NaN or infinite loss by step {step + 1}): nothing was "
                    "written; lower --set lr=... or check the parent model"
                )
            terms = {
                key: float(value) if isinstance(value, torch.Tensor) else value
                for key, value in terms.items()
            }
            bar.set_postfix({k: f"{v:.3g}" for k, v in terms.items() if isinstance(v, float)})
            log.append({"step": step, **terms})
    model.eval()
    return log


def import_optimizer_runtime() -> None:
    """torch's optimizers import its compiler stack (``torch._dynamo``) on their first step, 3-5 s on this
    CPU: import it before the clock starts, so a manifest's ``seconds`` is the erasure's own time, for
    Retrain and every other method alike, whichever ran first in the process."""
    import torch._dynamo  # noqa: F401


def erase(request: EraseRequest) -> dict:
    """Erase ``request.concept`` from the model at ``request.model_dir``; returns the new manifest.

    Every input is checked, and ``--out`` claimed (:func:`tracer.outputs.claim_folder`), before any work;
    the artifact is built in a staging folder and renamed into place only when everything succeeded.
    """
    import_optimizer_runtime()
    started = time.perf_counter()
    config = build_config(method_class(request.method), load_settings(request))
    device = resolve_device(request.device)
    inputs = {"parent model": request.model_dir, "dataset": request.data_dir}
    source = (request.model_dir, None)  # the start of the erasure, its hash (None: hashed as the parent)
    if request.from_root:
        source = chain_root(request.model_dir, artifact_manifest(request.model_dir))
        inputs["the chain's root model"] = source[0]
    with (
        claim_folder(request.out, request.overwrite, inputs) as stage,
        tempfile.TemporaryDirectory(prefix="tracer-erase-") as scratch,
    ):
        return _erase(request, source, config, device, started, stage, Path(scratch))


def chained_concept(parent_manifest: dict, concept: str) -> str:
    """The concept spec this erasure forgets: ``concept`` joined with every concept erased earlier in
    the parent's chain, so that a later request never lets an earlier one come back (docs/method.md
    §8.13)."""
    earlier = [entry["concept"] for entry in parent_manifest.get("chain", [])]
    return "; ".join(dict.fromkeys([*earlier, concept]))


def chain_root(model_dir: Path, manifest: dict) -> tuple[Path, str | None]:
    """The model a chain of erasures started from (its first link's parent) and that model's recorded
    hash, for an erasure of the whole union from there (``--from-root``, docs/method.md §8.13);
    ``(model_dir, None)`` for a model that was never erased (the erasure hashes it as its parent). A
    UserError when the root is gone or has changed since the chain began."""
    chain = manifest.get("chain", [])
    if not chain:
        return model_dir, None
    root, recorded = Path(chain[0]["parent"]), chain[0]["parent_sha256"]
    if not root.is_dir():
        raise UserError(
            f"--from-root: the chain of {model_dir} started from {root}, which is not there (paths are "
            "as recorded, relative to where the first erasure ran): run from there, or drop --from-root"
        )
    if sha256_tree(root) != recorded:
        raise UserError(
            f"--from-root: {root}, where the chain of {model_dir} started, has changed since: "
            "erase from the chain instead (drop --from-root)"
        )
    return root, recorded


def _erase(
    request: EraseRequest,
    source: tuple[Path, str | None],
    config,
    device: torch.device,
    started: float,
    stage: Path,
    scratch: Path,
) -> dict:
    cls = method_class(request.method)
    dataset = load_dataset(request.data_dir)
    parent = artifact_manifest(request.model_dir)  # {} for a trained model
    forget_spec = chained_concept(parent, request.concept)
    concept = resolve_concept(dataset, forget_spec)
    parent_hash = sha256_tree(request.model_dir)
    start_dir, start_hash = source[0], source[1] or parent_hash
    model, sid_table, model_config = load_model_artifact(start_dir)
    check_item_alignment(sid_table, dataset.items["item_id"].to_numpy(), f"model {start_dir}",
                         f"data {request.data_dir}")  # fmt: skip
    sequences = build_sequences(dataset)
    targets = concept_targets(sequences, concept)
    if targets.n_forget == 0:
        raise UserError(f"concept {request.concept!r} has no training targets: there is nothing to forget")
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
        sids_dir=start_dir / SID_FOLDER,
        reference=reference,
        device=device,
        scratch=scratch,
        parent_dir=start_dir,
    )
    method = cls(config, context)
    before = {name: p.detach().cpu().clone() for name, p in model.named_parameters()}
    method.setup(model)
    log = run_steps(method, model, context, config) if cls.trains else []
    model = method.final_model(model)
    new_table, summary = method.finish(model, sid_table)
    check_finite(model, f"{request.method} produced NaN or infinite weights: nothing was written; "
                        "lower --set lr=... or check the parent model")  # fmt: skip
    seconds = time.perf_counter() - started

    inherited_exclusions = list(parent.get("decode_exclude_item_ids", []))
    exclusions = sorted(set(inherited_exclusions) | set(summary.pop("decode_exclude_item_ids", [])))
    entry = {
        "method": request.method,
        "concept": request.concept,
        "forget_concept": forget_spec,  # with the concepts erased earlier in the chain
        "concept_item_ids": sid_table.item_ids[concept.item_indices].tolist(),
        "parent": str(start_dir),
        "parent_sha256": start_hash,
        **({"chained_from": str(request.model_dir)} if start_dir != request.model_dir else {}),
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
            *parent.get("chain", []),
            {k: v for k, v in entry.items() if k != "concept_item_ids"},
        ],
        "tracer_version": tracer.__version__,
    }
    save_model(stage, model, extra={"parent_config": model_config})
    _copy_tokenizer_state(method.tokenizer_dir(), stage / SID_FOLDER)
    new_table.save(stage / SID_FOLDER)
    write_json(stage / "erase_log.json", log)
    write_json(stage / MANIFEST_FILE, manifest)
    read = {request.model_dir: parent_hash, start_dir: start_hash}  # one entry unless --from-root
    for folder, recorded in read.items():
        if sha256_tree(folder) != recorded:  # e.g. `tracer train` still writing it
            raise UserError(
                f"the parent {folder} changed while it was being erased (is another process "
                "writing to it?): nothing was written; erase again once the parent is finished"
            )
    return manifest


def _copy_tokenizer_state(source: Path, target: Path) -> None:
    """Copy the tokenizer files (codebooks, residuals, item vectors, build stats) of the method's SID
    folder (the parent's, or the one Retrain rebuilt) into the new artifact."""
    target.mkdir(parents=True, exist_ok=True)
    for file in source.iterdir() if source.is_dir() else []:
        if file.is_file():
            shutil.copy2(file, target / file.name)
