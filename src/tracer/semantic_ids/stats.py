"""Statistics of a SID table: collisions, codebook usage, perplexity and token entanglement
(docs/method.md §1.2 and §6.9, "token entanglement"). All vectorised over items."""

from __future__ import annotations

import numpy as np

from tracer.semantic_ids.sid_table import SidTable, prefix_group_ids


def collision_rate(level_codes: np.ndarray) -> float:
    """Share of items whose L codebook codes (n, L) are shared with at least one other item."""
    if len(level_codes) == 0:
        return 0.0
    group = prefix_group_ids(level_codes)[:, -1]
    sizes = np.bincount(group)
    return float((sizes[group] > 1).mean())


def perplexity(codes: np.ndarray, codebook_size: int) -> float:
    """exp(entropy) of the code distribution of one level (codes (n,)); K when uniform, 1 when constant."""
    counts = np.bincount(codes, minlength=codebook_size).astype(np.float64)
    probs = counts[counts > 0] / counts.sum()
    return float(np.exp(-(probs * np.log(probs)).sum()))


def token_entanglement(codes: np.ndarray, concept_mask: np.ndarray) -> list[float]:
    """Per level l = 1..L, the share of concept items whose prefix (c1..cl) is also the prefix of some
    non-concept item. ``codes``: (n, L + 1) (the dedup digit is not a level); ``concept_mask``: bool (n,)."""
    codes = np.asarray(codes)
    concept_mask = np.asarray(concept_mask, dtype=bool)
    if concept_mask.shape != (codes.shape[0],):
        raise ValueError(f"concept_mask must have shape ({codes.shape[0]},), got {concept_mask.shape}")
    if not concept_mask.any():
        raise ValueError("the concept has no items")
    shares = []
    groups = prefix_group_ids(codes[:, :-1])
    for level in range(groups.shape[1]):
        group = groups[:, level]
        retain_count = np.bincount(group, weights=(~concept_mask).astype(np.float64))
        shares.append(float((retain_count[group[concept_mask]] > 0).mean()))
    return shares


def sid_statistics(table: SidTable) -> dict:
    """Collision rate before dedup, max dedup digit, and per-level usage / perplexity / prefixes."""
    level_codes = table.level_codes
    prefixes = prefix_group_ids(level_codes)
    per_level = []
    for level in range(table.levels):
        used = len(np.unique(level_codes[:, level]))
        per_level.append(
            {
                "level": level + 1,
                "usage": used / table.codebook_size,
                "codes_used": used,
                "perplexity": perplexity(level_codes[:, level], table.codebook_size),
                "distinct_prefixes": int(prefixes[:, level].max() + 1),
            }
        )
    return {
        "n_items": table.n_items,
        "levels": table.levels,
        "codebook_size": table.codebook_size,
        "dedup_capacity": table.dedup_capacity,
        "collision_rate": collision_rate(level_codes),
        "max_dedup": int(table.codes[:, -1].max()) if table.n_items else 0,
        "per_level": per_level,
    }


def format_stats_table(stats: dict) -> str:
    """A plain-text table of :func:`sid_statistics` output (plus entanglement rows when present)."""
    lines = [
        f"items {stats['n_items']}  L={stats['levels']}  K={stats['codebook_size']}  "
        f"collision rate {stats['collision_rate']:.4f}  max dedup {stats['max_dedup']}  "
        f"dedup capacity {stats['dedup_capacity']}",
        f"{'level':>5} {'usage':>7} {'used':>5} {'perplexity':>11} {'prefixes':>9}",
    ]
    for row in stats["per_level"]:
        lines.append(
            f"{row['level']:>5} {row['usage']:>7.3f} {row['codes_used']:>5} {row['perplexity']:>11.2f} "
            f"{row['distinct_prefixes']:>9}"
        )
    for name, shares in stats.get("entanglement", {}).items():
        lines.append(format_entanglement(name, shares))
    return "\n".join(lines)


def format_entanglement(name: str, shares: list[float]) -> str:
    levels = "  ".join(f"l{level + 1} {share:.3f}" for level, share in enumerate(shares))
    return f"entanglement[{name}]  {levels}"
