"""TRACER: token reassignment for concept erasure (docs/method.md §4, Eq. 5-11).

Concept items get learnable reassignment scores phi (M, L, K). Their level-l tokens become soft
mixtures q_phi (Eq. 6) wherever they appear: in histories, in the decoder input and, where a concept
item is the target, as a soft label. theta and phi train on

    L = L_R + lambda1 L_F + lambda2 L_Coh + lambda3 L_reg               (Eq. 10)

with phi updated by masked SGD (Eq. 11). The commit step moves every concept item to its argmax codes
and rebuilds the SID table (new collisions get fresh dedup digits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from tracer.errors import UserError
from tracer.model.base import PAD_ITEM, GenerativeRecommender, SoftCodes
from tracer.semantic_ids.encoders import load_item_vectors
from tracer.semantic_ids.quantization import code_offsets, load_tokenization, soft_assignment
from tracer.semantic_ids.stats import token_entanglement
from tracer.training.batches import SequenceBatch, TargetBatch
from tracer.typed_config import setting
from tracer.unlearning.base import EraseConfig, UnlearningMethod
from tracer.unlearning.batches import ForgetRetainBatch, erasure_history, forget_sampler, retain_sampler
from tracer.unlearning.coherence import nearest_retain_items
from tracer.unlearning.distil import noise_and_distil
from tracer.unlearning.objectives import (
    level_kl,
    level_log_probs,
    nll,
    reference_log_probs,
    target_items,
)
from tracer.unlearning.repair import retain_repair
from tracer.unlearning.saliency import concept_salient_masks, mask_gradients


@dataclass
class TracerConfig(EraseConfig):
    """docs/method.md §4 (defaults in §4.8, extensions in §8). ``reassign`` False freezes phi at 0
    (ablation); ``use_mask`` False drops Eq. 11's mask. [choice] ``soft_target_labels``: a concept
    target's level-l label is q_phi (expected log-likelihood) rather than its stored code.
    ``forget_floor`` (nats, None = Eq. 8 as written): a forget target whose SID log-likelihood is already
    below it stops contributing to L_F, which is otherwise unbounded below (an extension, measured in
    docs/benchmarks/erasure.md, "Does bounding L_F help?"). ``retain_kl``: weight of an added
    KL(parent || model) of the per-level token distributions on the retain batch (0 = Eq. 10 as written;
    an extension, measured in docs/benchmarks/erasure.md, "Round 5"). ``kl_without_concept``: the KL
    anchor's target is the parent's token distribution with the concept-only branches of the stored SIDs'
    trie cut off and the rest renormalised, so the anchor keeps the parent's preferences among retain
    items without holding probability on the concept (False = the parent's distribution as it is).
    ``forget_kl``: weight of KL(cut parent || model) on the forget batch: at every forget target and
    level, the parent's token distribution with the concept-only branches cut off (as
    ``kl_without_concept``) is the target, so the forget histories keep the parent's preferences among
    retain items while the concept's own branches lose their mass (0 = off; an extension, measured in
    docs/benchmarks/erasure.md, "The baselines at their tuned settings on test"). ``kl_branch_shares``:
    in those cut targets every branch is weighted by the retain share of the training targets under it
    (one pseudo-count per item) instead of being kept whole unless concept-only, so a branch whose mass
    is mostly the concept's is mostly removed too (an extension, measured in docs/benchmarks/erasure.md,
    "ML-100k Children's with kl_branch_shares"). ``coherence_anchor``: L_Coh holds each neighbour's SID
    log-likelihood at the parent's on the same forget history, a hinge relu(ll_parent - ll_model) that
    penalises a drop and rewards no rise, instead of Eq. 9's unbounded raise (which promotes the
    concept's content neighbours in every user's top-k; an extension, measured in
    docs/benchmarks/erasure.md, "The baselines at their tuned settings on test"). ``distil_steps`` > 0:
    after the commit, noise the weights a share ``distil_noise`` of the way to a fresh initialisation and
    distil the erased model back into them on retain batches at ``distil_lr``
    (:mod:`tracer.unlearning.distil`; an extension, docs/method.md §8.12). ``sharpness_rho`` > 0: L_F is
    minimised at the weights one normalised relearning step of length rho away (the direction that
    raises the forget targets' likelihood fastest), so that the forgetting survives such a step
    (sharpness-aware forgetting; an extension, docs/method.md §8.14). ``repair_steps`` > 0: after the
    commit (and any distillation), ordinary next-item training on retain data only, ``repair_steps``
    AdamW steps at ``repair_lr`` on batches of ``repair_windows`` windows (tiger: examples), which buys
    utility back from the data rather than from the parent (:mod:`tracer.unlearning.repair`; an
    extension, docs/method.md §8.15); ``repair_decay``: that repair's learning rate falls linearly to
    0 over its steps instead of staying at ``repair_lr``. ``repair_kl`` and ``repair_forget_kl`` add to
    each repair step the retain KL target of ``retain_kl`` (KL(parent || model), the concept's branches
    cut with ``kl_without_concept``) and the forget KL of ``forget_kl`` (KL(cut parent || model) on a
    fresh forget batch), weighted so; 0 leaves the repair pure next-item training. ``repair_forget`` > 0
    adds, on that forget batch, L_F of the committed codes floored at ``repair_forget_floor`` (nats), so
    that the repair cannot raise a forget target's SID log-likelihood above the floor again (an extension,
    docs/method.md §8.15). ``saliency_share`` < 1: only that share of theta's entries, those whose
    squared gradient on the forget targets is largest relative to the retain targets' (the parent, on
    ``saliency_batches`` forget and retain batches), takes the erasure's updates; the repair still moves
    every weight (:mod:`tracer.unlearning.saliency`; an extension, docs/method.md §8.16).
    ``project_forget``: where the gradient of lambda1 L_F over theta points against the gradient of the
    other terms (a negative inner product), its component along that gradient is removed before the
    step, so that to first order the forgetting does not raise the retain terms (an extension,
    docs/method.md §8.17). ``window_retain`` > 0 (causal backbone, forget windows): the next-SID NLL of
    the retain targets inside the forget windows, from the same pass that scores the forget targets,
    joins the objective with this weight, so that the contexts where L_F pushes keep their retain
    predictions (an extension, docs/method.md §8.18)."""

    tau: float
    lambda1: float
    lambda2: float
    lambda3: float
    lr_phi: float
    coherence_neighbours: int
    forget_floor: float | None
    retain_kl: float
    kl_without_concept: bool
    forget_kl: float
    kl_branch_shares: bool
    coherence_anchor: bool
    reassign: bool
    use_mask: bool
    soft_target_labels: bool
    distil_steps: int = setting(ge=0)
    distil_noise: float = setting(ge=0, le=1)
    distil_lr: float = setting(gt=0)
    sharpness_rho: float = setting(ge=0)
    repair_steps: int = setting(ge=0)
    repair_lr: float = setting(gt=0)
    repair_windows: int = setting(ge=1)
    repair_decay: bool
    repair_kl: float = setting(ge=0)
    repair_forget_kl: float = setting(ge=0)
    repair_forget: float = setting(ge=0)
    repair_forget_floor: float = setting(lt=0)
    saliency_share: float = setting(gt=0, le=1)
    saliency_batches: int = setting(ge=1)
    project_forget: bool
    window_retain: float = setting(ge=0)


def expected_log_likelihood(log_probs: Tensor, label_probs: Tensor) -> Tensor:
    """sum_l sum_k label[b, l, k] * log p[b, l, k] per example: (B, n_levels, V) x2 -> (B,).
    Tokens outside a level's vocabulary (log p = -inf) carry zero label mass and contribute 0."""
    safe = torch.where(label_probs > 0, log_probs, torch.zeros_like(log_probs))
    return (label_probs * safe).sum((-1, -2))


def floored(log_likelihoods: Tensor, floor: float | None) -> Tensor:
    """max(log-likelihood, floor) per target (B,): no gradient once a target is pushed below the floor."""
    return log_likelihoods if floor is None else log_likelihoods.clamp_min(floor)


def hard_log_likelihood(log_probs: Tensor, codes: Tensor) -> Tensor:
    """log p of stored codes: log_probs (..., n_levels, V), codes (..., n_levels) -> (...,)."""
    return log_probs.gather(-1, codes[..., None]).squeeze(-1).sum(-1)


def candidate_log_probs(model: GenerativeRecommender, histories: Tensor, candidates: Tensor) -> Tensor:
    """Teacher-forced per-level log-probs of W candidate next items per history, encoding each history
    once: histories (B, T), candidates (B, W) -> (B, W, n_levels, max_vocab)."""
    return cached_candidate_log_probs(model, model.encode_history(histories), candidates)


def cached_candidate_log_probs(model: GenerativeRecommender, cache, candidates: Tensor) -> Tensor:
    """As :func:`candidate_log_probs` from an already encoded history cache (B histories)."""
    embeddings = model.item_token_embeddings(candidates)  # (B, W, n_levels, d); soft codes apply
    return model.candidate_level_log_probs(cache, embeddings)


def forget_log_probs(
    model: GenerativeRecommender,
    batch: TargetBatch | SequenceBatch,
    candidates: Tensor | None,
    also: Tensor | None = None,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Teacher-forced per-level log-probs of a forget batch's targets (N, n_levels, V), given
    ``candidates`` (N, W) of those items after each target's history (N, W, n_levels, V), and given
    ``also`` (window batch only: a bool mask (B, T) of more positions) of those positions (M, n_levels,
    V, row-major order), all from one history encoding: a window batch's caches are sliced from its
    single pass. What was not asked for is None."""
    if isinstance(batch, SequenceBatch):
        rows, columns = batch.loss_mask.nonzero(as_tuple=True)
        extra = None if also is None else also.nonzero(as_tuple=True)
        target_log_probs, cache, more = model.scored_positions(batch.sequences, rows, columns, extra)
        neighbours = None if candidates is None else cached_candidate_log_probs(model, cache, candidates)
        return target_log_probs, neighbours, more
    scored = batch.targets[:, None]
    if candidates is not None:
        scored = torch.cat([scored, candidates], dim=1)  # (N, 1 + W)
    log_probs = candidate_log_probs(model, batch.histories, scored)
    return log_probs[:, 0], (log_probs[:, 1:] if candidates is not None else None), None


def retain_positions(batch: SequenceBatch, concept_mask: Tensor) -> Tensor:
    """The retain training targets of windows (B, T): real items with a real item before them (every
    such position is a training target) whose item is outside the concept (``concept_mask`` (n_items,)
    bool) -> bool (B, T)."""
    real = batch.sequences != PAD_ITEM
    after_real = torch.cat([torch.zeros_like(real[:, :1]), real[:, :-1]], dim=1)
    return real & after_real & ~concept_mask[batch.sequences.clamp_min(0)]


def prefix_keys(codes: np.ndarray, base: int) -> np.ndarray:
    """One integer per item and level naming its SID prefix up to and including that level:
    codes (N, n_levels) with entries < base -> (N, n_levels) int64."""
    keys = np.zeros(codes.shape, dtype=np.int64)
    running = np.zeros(len(codes), dtype=np.int64)
    for level in range(codes.shape[1]):
        running = running * base + codes[:, level]
        keys[:, level] = running
    return keys


def concept_only_children(codes: np.ndarray, concept_mask: np.ndarray, base: int) -> np.ndarray:
    """For every item and level, which tokens after the item's own prefix open a branch of the trie that
    holds concept items and no retain item: codes (n_items, n_levels), concept_mask (n_items,) ->
    bool (n_items, n_levels, base)."""
    keys = prefix_keys(codes, base)
    cut = np.zeros((*codes.shape, base), dtype=bool)
    for level in range(codes.shape[1]):
        concept_only = np.setdiff1d(keys[concept_mask, level], keys[~concept_mask, level])
        parents = keys[:, level - 1] if level > 0 else np.zeros(len(codes), dtype=np.int64)
        children = parents[:, None] * base + np.arange(base)[None, :]  # (n_items, base)
        cut[:, level] = np.isin(children, concept_only)
    return cut


def retain_branch_log_shares(
    codes: np.ndarray, concept_mask: np.ndarray, base: int, target_counts: np.ndarray
) -> np.ndarray:
    """For every item and level, log of the retain share of each branch after the item's own prefix:
    (retain items' training targets + 1 per retain item) / (all items' targets + 1 per item) under the
    branch; -inf for a concept-only branch, 0 for a retain-only or empty one. codes (n_items, n_levels),
    concept_mask (n_items,), target_counts (n_items,) -> float32 (n_items, n_levels, base)."""
    keys = prefix_keys(codes, base)
    weights = np.asarray(target_counts, dtype=np.float64) + 1.0
    out = np.zeros((*codes.shape, base), dtype=np.float32)
    for level in range(codes.shape[1]):
        branches, owner = np.unique(keys[:, level], return_inverse=True)
        total = np.bincount(owner, weights=weights)
        retain = np.bincount(owner, weights=weights * ~concept_mask, minlength=len(branches))
        parents = keys[:, level - 1] if level > 0 else np.zeros(len(codes), dtype=np.int64)
        children = parents[:, None] * base + np.arange(base)[None, :]  # (n_items, base)
        slot = np.searchsorted(branches, children).clip(max=len(branches) - 1)
        found = branches[slot] == children
        with np.errstate(divide="ignore"):
            out[:, level] = np.where(found, np.log(retain[slot] / total[slot]), 0.0)
    return out


def reweighted_tokens(log_probs: Tensor, log_weights: Tensor) -> Tensor:
    """Log-probs (N, n_levels, V) times per-token weights (given as logs, same shape; -inf removes a
    token), each level renormalised; a level whose every token is removed becomes all -inf, which
    :func:`level_kl` counts as 0."""
    renormalised = (log_probs + log_weights).log_softmax(-1)
    return renormalised.masked_fill(renormalised.isnan(), float("-inf"))


def retain_code_shares(level_codes: np.ndarray, concept_mask: np.ndarray, codebook_size: int) -> Tensor:
    """rho (L, K): share of retain (non-concept) items whose level-l code is k (Eq. 11)."""
    retain = level_codes[~concept_mask]
    counts = np.stack(
        [np.bincount(retain[:, level], minlength=codebook_size) for level in range(retain.shape[1])]
    )
    return torch.as_tensor(counts / max(len(retain), 1), dtype=torch.float64)


def selective_mask(q: Tensor, rho: Tensor, forget_grad: Tensor) -> Tensor:
    """Eq. 11: M[i, l, k] = 1[rho_l(k) > rho_bar_{i,l}] * 1[dL_F/dphi_{i,l,k} > 0].

    q (M, L, K) soft assignment, rho (L, K), forget_grad (M, L, K) -> float mask (M, L, K)."""
    rho_bar = (q * rho[None]).sum(-1, keepdim=True)  # (M, L, 1)
    return ((rho[None] > rho_bar) & (forget_grad > 0)).to(forget_grad.dtype)


def ranked_code_tuples(q: Tensor, per_level: int = 4) -> Tensor:
    """The commit's candidate codes per concept item, most likely first: every combination of each
    level's ``per_level`` most likely codes, ordered by joint log q (ties keep the first found).
    q (M, L, K) -> (M, min(per_level, K) ** L, L) int64; row 0 is the argmax at every level."""
    top = q.log().topk(min(per_level, q.shape[-1]), dim=-1)  # values/indices (M, L, T)
    levels, width = q.shape[1], top.indices.shape[-1]
    grid = torch.cartesian_prod(*[torch.arange(width, device=q.device)] * levels).reshape(-1, levels)
    ranks = grid.T[None].expand(len(q), -1, -1)  # (M, L, C): which of the top codes each level takes
    scores = top.values.gather(-1, ranks).sum(1)  # (M, C)
    codes = top.indices.gather(-1, ranks).transpose(1, 2)  # (M, C, L)
    order = scores.argsort(dim=-1, descending=True, stable=True)
    return codes.gather(1, order[..., None].expand(-1, -1, levels))


class Tracer(UnlearningMethod):
    name = "tracer"
    config_class = TracerConfig

    @classmethod
    def wants_reference(cls, config: TracerConfig) -> bool:
        anchored = config.coherence_anchor and config.lambda2 > 0
        repair_anchored = config.repair_steps > 0 and (config.repair_kl > 0 or config.repair_forget_kl > 0)
        # (repair_forget alone needs no parent: it scores the model's own likelihoods)
        return config.retain_kl > 0 or config.forget_kl > 0 or anchored or repair_anchored

    def setup(self, model: GenerativeRecommender) -> None:
        context, config = self.context, self.config
        if config.project_forget and config.sharpness_rho > 0:
            raise UserError(
                "project_forget and sharpness_rho each set how L_F's gradient is taken: "
                "set project_forget=false or sharpness_rho=0"
            )
        tokenization = load_tokenization(context.sids_dir)
        self.items = torch.as_tensor(context.concept.item_indices, dtype=torch.long, device=context.device)
        self.concept_mask = torch.as_tensor(context.concept.item_mask, device=context.device)  # (n_items,)
        self.residuals = torch.as_tensor(
            tokenization.residuals[context.concept.item_indices], device=context.device
        )
        self.codebooks = torch.as_tensor(tokenization.codebooks, device=context.device)
        levels, codebook_size = tokenization.levels, tokenization.codebook_size
        self.phi = torch.zeros(
            len(self.items), levels, codebook_size, dtype=torch.float64, device=context.device
        )
        self.phi.requires_grad_(config.reassign)
        # (M, L, K): zero for a tokenizer's own codes; after an earlier erasure moved an item, the offset
        # that makes its current codes the argmax at phi = 0 (chained erasures start from this table)
        self.code_offsets = code_offsets(
            self.residuals, self.codebooks, context.sid_table.level_codes[context.concept.item_indices]
        )
        if config.kl_without_concept or config.forget_kl > 0 or config.repair_forget_kl > 0:
            codes, mask = context.sid_table.codes, context.concept.item_mask
            if config.kl_branch_shares:
                counts = np.bincount(context.sequences.training_target_items(), minlength=len(codes))
                weights = retain_branch_log_shares(codes, mask, model.max_vocab, counts)
            else:
                cut = concept_only_children(codes, mask, model.max_vocab)
                weights = np.where(cut, -np.inf, 0.0).astype(np.float32)
            # (n_items, n_levels, max_vocab): log weights of the parent's tokens in the KL targets
            self.kl_log_weights = torch.as_tensor(weights, device=context.device)
        self.rho = retain_code_shares(
            context.sid_table.level_codes, context.concept.item_mask, codebook_size
        ).to(context.device)
        vectors = load_item_vectors(context.sids_dir / "item_vectors.npy", context.sid_table.item_ids)
        self.neighbours = torch.as_tensor(
            nearest_retain_items(vectors, context.concept.item_mask, config.coherence_neighbours),
            device=context.device,
        )  # (n_items, K_c); rows of concept items are meaningful
        self.dedup = model.codes[self.items, levels:]  # (M, n_levels - L): stored, never reassigned
        self.entanglement_before = token_entanglement(context.sid_table.codes, context.concept.item_mask)
        self.last_terms: dict[str, Tensor] = {}  # on the device: no host sync per step
        self.saliency_masks = None
        if config.saliency_share < 1:
            self.saliency_masks = self.concept_salient_masks(model)

    def concept_salient_masks(self, model: GenerativeRecommender) -> list[Tensor]:
        """The erasure's update masks over ``self.parameters(model)`` (:mod:`tracer.unlearning.saliency`),
        from the parent's gradients on forget batches of the erasure's size and retain batches of
        ``retain_windows`` windows (tiger: ``batch_size`` examples)."""
        context, config = self.context, self.config
        forget_mask = context.targets.forget_targets
        history = erasure_history(model, config)
        forget = forget_sampler(
            context.sequences, forget_mask, model.batch_kind, config, history, config.seed + 5
        )
        retain = retain_sampler(
            context.sequences, ~forget_mask, model.batch_kind, config, history, config.seed + 6
        )
        return concept_salient_masks(
            model,
            self.parameters(model),
            lambda: forget.sample().to(context.device),
            lambda: retain.sample().to(context.device),
            config.saliency_batches,
            config.saliency_share,
        )

    # -- soft tokens ---------------------------------------------------------------------------
    def assignment(self) -> Tensor:
        """q_phi (M, L, K), float64 (Eq. 6), on top of the artifact's own codes (``code_offsets``)."""
        return soft_assignment(self.residuals, self.codebooks, self.config.tau, self.phi + self.code_offsets)

    def soft_codes(self, model: GenerativeRecommender, q: Tensor) -> SoftCodes:
        """q padded into (M, n_levels, max_vocab), the dedup digit as a one-hot of its stored code."""
        probs = torch.zeros(
            len(self.items), model.n_levels, model.max_vocab, dtype=torch.float32, device=q.device
        )
        levels = q.shape[1]
        probs[:, :levels, : q.shape[2]] = q.to(torch.float32)
        extra = torch.nn.functional.one_hot(self.dedup, model.max_vocab).to(torch.float32)
        probs = probs + torch.cat([torch.zeros_like(probs[:, :levels]), extra], dim=1)
        return SoftCodes(items=self.items, probs=probs)

    # -- loss terms ------------------------------------------------------------------------------
    def forget_and_coherence(
        self, model: GenerativeRecommender, batch: TargetBatch | SequenceBatch
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(L_F, L_Coh, forget KL, window retain NLL) of a forget batch, sharing one history encoding per
        example.

        L_F (Eq. 8): mean log-likelihood of the forget targets (minimising it pushes them down).
        L_Coh (Eq. 9): -(1/K_c) sum over the K_c nearest retain items of the forget target of their
        teacher-forced SID log-likelihood given the same forget history (mean over the batch); with
        ``coherence_anchor`` the mean of relu(parent's - model's) of the same log-likelihoods instead;
        zero when lambda2 = 0 (no neighbours are scored then).
        Forget KL: KL(cut parent || model) of the forget targets' token distributions (see
        ``TracerConfig.forget_kl``); zero when ``forget_kl`` is 0. The parent runs only for the forget KL
        or the anchor, once for both. Window retain NLL: the mean next-SID NLL of the retain targets
        inside a window batch (``TracerConfig.window_retain``); zero when that weight is 0 or the batch
        holds single examples.

        A :class:`SequenceBatch` (windows, causal backbone) scores every forget target of a window and
        takes the history caches for the neighbours from the same pass; a :class:`TargetBatch` encodes
        each history once and scores the target with its neighbours as candidates."""
        config = self.config
        items = target_items(batch)
        candidates = self.neighbours[items] if config.lambda2 > 0 else None  # (N, K_c)
        also = None
        if config.window_retain > 0 and isinstance(batch, SequenceBatch):
            also = retain_positions(batch, self.concept_mask)
        target_log_probs, neighbour_log_probs, window_log_probs = forget_log_probs(
            model, batch, candidates, also
        )
        forget = self.forget_term(model, items, target_log_probs)
        zero = torch.zeros((), device=forget.device)
        window_nll = zero
        if also is not None and bool(also.any()):
            window_nll = -hard_log_likelihood(window_log_probs, model.codes[batch.sequences[also]]).mean()
        anchored = candidates is not None and config.coherence_anchor
        parent_targets = parent_neighbours = None
        if config.forget_kl > 0 or anchored:
            with torch.no_grad():
                parent_targets, parent_neighbours, _ = forget_log_probs(
                    self.context.reference, batch, candidates if anchored else None
                )
        divergence = zero
        if config.forget_kl > 0:
            target = reweighted_tokens(parent_targets, self.kl_log_weights[items])
            divergence = level_kl(target_log_probs, target)
        if candidates is None:
            return forget, zero, divergence, window_nll
        codes = model.codes[candidates]
        neighbour_ll = hard_log_likelihood(neighbour_log_probs, codes)  # (N, K_c)
        if anchored:
            coherence = (hard_log_likelihood(parent_neighbours, codes) - neighbour_ll).clamp_min(0).mean()
        else:
            coherence = -neighbour_ll.mean()
        return forget, coherence, divergence, window_nll

    def forget_term(self, model: GenerativeRecommender, items: Tensor, target_log_probs: Tensor) -> Tensor:
        """L_F (Eq. 8) from the forget targets' per-level log-probs (N, n_levels, V); ``items`` (N,)."""
        if self.config.soft_target_labels:
            labels = model.soft_codes.probs[torch.searchsorted(self.items, items)]  # items are sorted
            per_target = expected_log_likelihood(target_log_probs, labels)
        else:
            per_target = hard_log_likelihood(target_log_probs, model.codes[items])
        return floored(per_target, self.config.forget_floor).mean()

    def relearning_step(self, model: GenerativeRecommender, forget: Tensor) -> list[Tensor | None]:
        """delta = rho * g / ||g||, per parameter of theta, with g the gradient of ``forget`` (lambda1 *
        L_F, graph kept): the step of length rho that raises the forget targets' likelihood fastest, as a
        relearning attack would (docs/method.md §8.14)."""
        grads = torch.autograd.grad(forget, self.parameters(model), retain_graph=True, allow_unused=True)
        norm = torch.sqrt(sum((g * g).sum() for g in grads if g is not None))
        scale = self.config.sharpness_rho / (norm + 1e-12)
        return [None if g is None else g * scale for g in grads]

    def forget_backward_at(
        self, model: GenerativeRecommender, batch: TargetBatch | SequenceBatch, deltas: list[Tensor | None]
    ) -> None:
        """Backward of lambda1 * L_F at theta + delta, its gradients added at theta (weights restored)."""
        moved = [(param, param.detach().clone()) for param, delta in zip(self.parameters(model), deltas)]
        with torch.no_grad():
            for (param, _), delta in zip(moved, deltas):
                if delta is not None:
                    param.add_(delta)
        target_log_probs, _, _ = forget_log_probs(model, batch, None)
        (self.config.lambda1 * self.forget_term(model, target_items(batch), target_log_probs)).backward()
        with torch.no_grad():
            for param, original in moved:
                param.copy_(original)  # exactly theta again (adding and subtracting delta would round)

    def projected_backward(self, model: GenerativeRecommender, forget: Tensor, rest: Tensor) -> None:
        """Gradients of ``forget`` (lambda1 L_F) + ``rest`` into ``.grad``, with g_F, the forget gradient
        over theta, replaced by g_F - min(0, <g_F, g_R>) / ||g_R||^2 g_R, g_R the gradient of ``rest``
        (the inner products over all of theta): no component against the retain terms' descent is
        left. phi takes both gradients whole."""
        params = self.parameters(model)
        wrt = [*params, self.phi] if self.phi.requires_grad else params
        forget_grads = torch.autograd.grad(forget, wrt, retain_graph=True, allow_unused=True)
        rest.backward()
        pairs = [(p, g) for p, g in zip(params, forget_grads) if g is not None]
        with torch.no_grad():
            dot = sum((g * p.grad).sum() for p, g in pairs if p.grad is not None)
            norm = sum((p.grad * p.grad).sum() for p in params if p.grad is not None)
            scale = torch.as_tensor(dot).clamp(max=0) / (norm + 1e-12)
            for param, grad in pairs:
                if param.grad is None:
                    param.grad = grad.clone()
                else:
                    param.grad.add_(grad - scale * param.grad)
            if self.phi.requires_grad and forget_grads[-1] is not None:
                phi_grad = forget_grads[-1]
                self.phi.grad = phi_grad if self.phi.grad is None else self.phi.grad + phi_grad

    def retain_terms(
        self, model: GenerativeRecommender, batch: TargetBatch | SequenceBatch
    ) -> tuple[Tensor, Tensor]:
        """(L_R of Eq. 7, KL(parent || model) of the same pass's token distributions); the KL is a zero
        tensor, and the parent is not run, when ``retain_kl`` is 0."""
        log_probs = level_log_probs(model, batch)
        retain = nll(model, batch, log_probs)
        if self.config.retain_kl == 0:
            return retain, torch.zeros((), device=retain.device)
        return retain, level_kl(log_probs, self.retain_kl_target(batch))

    def retain_kl_target(self, batch: TargetBatch | SequenceBatch) -> Tensor:
        """The retain KL's target (N, n_levels, V): the parent's teacher-forced token log-probs, with the
        concept's branches cut under ``kl_without_concept``; no graph."""
        reference = reference_log_probs(self.context.reference, batch)
        if self.config.kl_without_concept:
            reference = reweighted_tokens(reference, self.kl_log_weights[target_items(batch)])
        return reference

    def repair_anchor(
        self, model: GenerativeRecommender, batch: TargetBatch | SequenceBatch, log_probs: Tensor
    ) -> Tensor:
        """The repair's extra term on a retain batch (its log-probs ``log_probs``, graph kept):
        ``repair_kl`` x the retain KL, and on the targets of one fresh forget batch (committed codes)
        ``repair_forget_kl`` x KL(cut parent || model) plus ``repair_forget`` x their mean SID
        log-likelihood floored at ``repair_forget_floor``."""
        config = self.config
        term = torch.zeros((), device=log_probs.device)
        if config.repair_kl > 0:
            term = term + config.repair_kl * level_kl(log_probs, self.retain_kl_target(batch))
        if config.repair_forget_kl > 0 or config.repair_forget > 0:
            forget = self.repair_forget_batches.sample().to(self.context.device)
            items = target_items(forget)
            target_log_probs, _, _ = forget_log_probs(model, forget, None)
            if config.repair_forget_kl > 0:
                with torch.no_grad():
                    parent, _, _ = forget_log_probs(self.context.reference, forget, None)
                target = reweighted_tokens(parent, self.kl_log_weights[items])
                term = term + config.repair_forget_kl * level_kl(target_log_probs, target)
            if config.repair_forget > 0:
                held = floored(
                    hard_log_likelihood(target_log_probs, model.codes[items]), config.repair_forget_floor
                )
                term = term + config.repair_forget * held.mean()
        return term

    def step(self, model, batch: ForgetRetainBatch, optimizer) -> dict[str, float]:
        config = self.config
        optimizer.zero_grad(set_to_none=True)
        q = self.assignment()
        model.soft_codes = self.soft_codes(model, q)
        forget_ll, coherence, forget_divergence, window_nll = self.forget_and_coherence(model, batch.forget)
        forget = config.lambda1 * forget_ll
        retain, divergence = self.retain_terms(model, batch.retain)
        sparsity = self.phi.abs().sum()
        rest = (
            retain
            + config.retain_kl * divergence
            + config.forget_kl * forget_divergence
            + config.lambda2 * coherence
            + config.lambda3 * sparsity
            + config.window_retain * window_nll
        )
        total = forget + rest
        forget_grad = None
        if config.reassign and config.use_mask:
            # Eq. 11 needs dL_F/dphi alone: a gradient to phi only (no parameter gradients are formed),
            # then one backward of the whole objective
            (forget_grad,) = torch.autograd.grad(forget, self.phi, retain_graph=True, allow_unused=True)
            if forget_grad is None:
                forget_grad = torch.zeros_like(self.phi)
        if config.sharpness_rho > 0 and config.lambda1 > 0:
            # sharpness-aware L_F: the ascent direction at theta, then L_F's gradient one such step away
            deltas = self.relearning_step(model, forget)
            rest.backward(retain_graph=True)  # the soft codes' graph to phi serves L_F once more
            self.forget_backward_at(model, batch.forget, deltas)
        elif config.project_forget:
            self.projected_backward(model, forget, rest)
        else:
            total.backward()
        if self.saliency_masks is not None:
            mask_gradients(self.parameters(model), self.saliency_masks)
        torch.nn.utils.clip_grad_norm_(self.parameters(model), config.grad_clip)
        optimizer.step()
        if config.reassign and self.phi.grad is not None:
            with torch.no_grad():
                update = self.phi.grad
                if forget_grad is not None:
                    update = update * selective_mask(q.detach(), self.rho, forget_grad)
                self.phi -= config.lr_phi * update
                self.phi.grad = None
        model.soft_codes = None
        self.last_terms = {
            "loss": total.detach(),
            "retain_nll": retain.detach(),
            "retain_kl": divergence.detach(),
            "forget_ll": forget_ll.detach(),
            "forget_kl": forget_divergence.detach(),
            "coherence": coherence.detach(),
            "window_retain_nll": window_nll.detach(),
            "phi_l1": sparsity.detach(),
        }
        return self.last_terms

    # -- commit ------------------------------------------------------------------------------------
    def finish(self, model, sid_table):
        with torch.no_grad():
            candidates = ranked_code_tuples(self.assignment()).cpu().numpy()  # (M, C, L), best first
        items = self.items.cpu().numpy()
        old_level_codes = sid_table.level_codes[items]
        new_table, chosen = sid_table.place(items, candidates)
        model.set_codes(torch.as_tensor(new_table.codes, device=model.codes.device))
        config = self.config
        distil_losses = []
        if config.distil_steps > 0:
            distil_losses = noise_and_distil(
                model, self.context, config, config.distil_steps, config.distil_noise, config.distil_lr
            )
        repair_losses = []
        if config.repair_steps > 0:
            anchored = config.repair_kl > 0 or config.repair_forget_kl > 0 or config.repair_forget > 0
            if config.repair_forget_kl > 0 or config.repair_forget > 0:
                history = erasure_history(model, config)
                self.repair_forget_batches = forget_sampler(
                    self.context.sequences,
                    self.context.targets.forget_targets,
                    model.batch_kind,
                    config,
                    history,
                    config.seed + 4,
                )
            repair_losses = retain_repair(
                model,
                self.context,
                config,
                config.repair_steps,
                config.repair_lr,
                config.repair_windows,
                anchor=self.repair_anchor if anchored else None,
                decay=config.repair_decay,
            )
        moved = new_table.level_codes[items] != old_level_codes
        after = token_entanglement(new_table.codes, self.context.concept.item_mask)
        return new_table, {
            "concept_items": len(items),
            "items_reassigned": int(moved.any(1).sum()),
            "levels_reassigned": int(moved.sum()),
            "levels_reassigned_per_level": moved.sum(0).tolist(),
            "items_on_a_later_choice": int((chosen > 0).sum()),  # their argmax group was full
            "items_kept_for_capacity": int((chosen < 0).sum()),
            "entanglement_before": self.entanglement_before,
            "entanglement_after": after,
            "final_losses": {key: float(value) for key, value in self.last_terms.items()},
            "distil_losses": distil_losses,
            "repair_losses": repair_losses,
        }


# -- the same code under other names: its settings are ``configs/unlearning/<name>.yaml`` -------------
def _named(name: str) -> type[Tracer]:
    """TRACER registered as ``name``; ``configs/unlearning/<name>.yaml`` holds its settings."""
    return type(name.title().replace("-", ""), (Tracer,), {"name": name})


# the KL-anchored setting (docs/method.md §4.8), `tracer`'s default until 2026-12-07 and the base of
# every TRACER variant's YAML file
TracerAnchored = _named("tracer-anchored")
# the ablations (docs/method.md §4.9): the anchored setting with one part switched off
TracerNoReassign = _named("tracer-no-reassign")
TracerNoCoherence = _named("tracer-no-coherence")
TracerNoMask = _named("tracer-no-mask")
TracerNoReg = _named("tracer-no-reg")
