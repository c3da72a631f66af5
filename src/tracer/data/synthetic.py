"""A synthetic world of any size: ``tracer prepare --dataset synthetic --users U --items I ...``.

What it plants, so every later stage has something to find:

- **Clusters and sequences.** Items fall into ``K`` clusters (about ``sqrt(I) / 2``, at least one per
  concept), and within a cluster on a cycle (each item has a fixed successor). Clusters sit on a ring;
  a user starts in a cluster drawn by popularity, then at each step takes the previous item's successor
  (probability ``FOLLOW``), another item of the same cluster (``STAY``), moves on to the next cluster of
  the ring (``DRIFT``) or jumps to a cluster drawn by popularity (the rest). So the last item predicts
  the next one far better than popularity does, and the order is one only a sequential model can use.
- **Popularity.** Item weights follow a Zipf law (exponent ``ZIPF``) over a random ranking; an item is
  drawn within its cluster by weight, and a jump picks a cluster by its total weight.
- **Concepts with text.** Concept ``c`` (``CONCEPT_NAMES``, then ``Theme<k>``) owns at least one
  cluster; an item takes its cluster's concept with probability ``CONCEPT_PURITY``, else a random one.
  Titles draw a concept word from the item's concept with probability ``TITLE_PURITY`` (else from a
  random concept), plus its cluster's made-up name, so text SIDs separate concepts only partly.
- **Sizes.** Every user gets at least 3 interactions (lognormal activity, exact total ``N``).

Everything is vectorised numpy drawn from one ``numpy.random.default_rng(seed)``: the same arguments
write byte-identical Parquet files; 1M items x 20M interactions fit in a few GiB.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from tracer.data.raw import RawData
from tracer.errors import UserError

FOLLOW, STAY, DRIFT = 0.4, 0.25, 0.2  # per step: successor, same cluster, next cluster; else jump
ZIPF = 0.8  # at 20 interactions per item the rarest items still get about 4
CONCEPT_PURITY = 0.9
TITLE_PURITY = 0.7
ACTIVITY_SIGMA = 1.0  # lognormal spread of user activity
MIN_LENGTH = 3  # train + valid + test
START_TIME = 1_000_000_000
MAX_INTERACTIONS = 2**31 - 1
BYTES_PER_INTERACTION, BYTES_PER_ITEM = 500, 1000  # peak memory of prepare (1M x 20M: 9.1 GiB)
CONCEPT_WORDS = {
    "Horror": "ghost blood haunted scream zombie curse grave nightmare",
    "Comedy": "laugh party wedding joke crazy prank holiday silly",
    "Space": "star planet galaxy rocket orbit alien comet astronaut",
    "Romance": "love kiss heart bride summer letter darling promise",
    "War": "soldier battle army front bomb general siege trench",
    "Western": "cowboy sheriff desert gold outlaw saloon canyon frontier",
    "Crime": "detective murder heist gang police street alibi witness",
    "Fantasy": "dragon wizard kingdom sword magic quest elf throne",
    "Sports": "team champion goal race coach match stadium trophy",
    "Music": "song band rhythm dance guitar stage melody concert",
    "Nature": "forest river ocean mountain wild island storm valley",
    "Family": "child mother home puppy school christmas grandpa birthday",
}
CONCEPT_NAMES = tuple(CONCEPT_WORDS)
_SYLLABLES = np.array("ka lo mi ren tas vor el dun pri sa ti mo bel qua zen rho".split())


@dataclass(frozen=True)
class SyntheticConfig:
    users: int
    items: int
    interactions: int
    concepts: int
    seed: int = 0

    def validate(self) -> None:
        if self.users < 1 or self.concepts < 2:
            raise UserError("synthetic needs --users >= 1 and --concepts >= 2")
        if self.items < 2 * self.concepts:
            raise UserError(f"synthetic needs --items >= 2 x --concepts ({2 * self.concepts})")
        if self.interactions < MIN_LENGTH * self.users:
            raise UserError(
                f"synthetic needs --interactions >= {MIN_LENGTH} x --users ({MIN_LENGTH * self.users:,}): "
                "every user needs a train, a validation and a test item"
            )
        if self.interactions > MAX_INTERACTIONS or self.items > MAX_INTERACTIONS:
            raise UserError(f"synthetic --items and --interactions are at most {MAX_INTERACTIONS:,}")
        if self.seed < 0:
            raise UserError(f"--seed must be >= 0, got {self.seed}")

    @property
    def n_clusters(self) -> int:
        return int(min(max(self.concepts, round(np.sqrt(self.items) / 2)), self.items // 2))


def concept_names(count: int) -> list[str]:
    return [*CONCEPT_NAMES[:count], *(f"Theme{k}" for k in range(len(CONCEPT_NAMES), count))]


def _concept_vocabulary(names: list[str], rng: np.random.Generator) -> list[np.ndarray]:
    """Title words of each concept: the listed ones, or made-up words for ``Theme<k>``."""
    made_up = ["".join(rng.choice(_SYLLABLES, 3)) for _ in range(8 * len(names))]
    return [
        np.array(CONCEPT_WORDS[name].split() if name in CONCEPT_WORDS else made_up[8 * k : 8 * k + 8])
        for k, name in enumerate(names)
    ]


def _item_tables(
    config: SyntheticConfig, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The items table, each item's cluster and its popularity weight."""
    n_items, n_clusters = config.items, config.n_clusters
    cluster = rng.permutation(np.arange(n_items) % n_clusters)
    weight = 1.0 / (1.0 + rng.permutation(n_items)) ** ZIPF
    cluster_concept = np.concatenate(
        [np.arange(config.concepts), rng.integers(config.concepts, size=n_clusters - config.concepts)]
    )[rng.permutation(n_clusters)]
    own = rng.random(n_items) < CONCEPT_PURITY
    concept = np.where(own, cluster_concept[cluster], rng.integers(config.concepts, size=n_items))
    names = concept_names(config.concepts)
    vocabulary = _concept_vocabulary(names, rng)
    title_concept = np.where(
        rng.random(n_items) < TITLE_PURITY, concept, rng.integers(config.concepts, size=n_items)
    )
    word_pick = rng.integers(8, size=n_items)
    words = np.concatenate(vocabulary)[title_concept * 8 + word_pick]
    cluster_names = np.array(["".join(parts).title() for parts in rng.choice(_SYLLABLES, (n_clusters, 2))])
    number = np.arange(n_items)
    titles = [f"{w.title()} of {c} {n}" for w, c, n in zip(words, cluster_names[cluster], number)]
    texts = [f"{t}. A story of {w} from {c}." for t, w, c in zip(titles, words, cluster_names[cluster])]
    name_array = np.array(names)
    items = pd.DataFrame(
        {
            "item_id": np.char.add("i", number.astype(str)),
            "title": titles,
            "text": texts,
            "concepts": [[name] for name in name_array[concept]],
        }
    )
    return items, cluster, weight


def _draw_steps(config: SyntheticConfig, lengths: np.ndarray, cluster_weight: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Every interaction's cluster, and whether it follows the previous item (a jump at each user's
    start, then follow / stay / drift / jump)."""
    n, n_clusters = int(lengths.sum()), len(cluster_weight)
    starts = np.zeros(n, dtype=bool)
    starts[np.cumsum(lengths) - lengths] = True
    step = rng.random(n)
    follow = ~starts & (step < FOLLOW)
    jump = starts | (step >= FOLLOW + STAY + DRIFT)
    drift = ~jump & (step >= FOLLOW + STAY)
    segment = np.cumsum(jump) - 1
    landing = rng.choice(n_clusters, size=int(jump.sum()), p=cluster_weight / cluster_weight.sum())
    drifted = np.cumsum(drift)
    drift_in_segment = drifted - drifted[np.flatnonzero(jump)][segment]
    return (landing[segment] + drift_in_segment) % n_clusters, follow


def _successors(item_cluster: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each item's successor: the next item on a random cycle through its cluster."""
    order = np.lexsort((rng.random(len(item_cluster)), item_cluster))
    sorted_cluster = item_cluster[order]
    first = np.searchsorted(sorted_cluster, sorted_cluster)  # where each item's cluster begins
    last = np.searchsorted(sorted_cluster, sorted_cluster, side="right") - 1
    position = np.arange(len(order))
    successor = np.empty_like(order)
    successor[order] = order[np.where(position == last, first, position + 1)]
    return successor


def _follow(drawn: np.ndarray, follow: np.ndarray, successor: np.ndarray) -> np.ndarray:
    """Replace each following interaction by the successor of the one before it (runs of follows
    walk the cycle: item = successor applied ``depth`` times to the run's first item)."""
    position = np.arange(len(drawn))
    run_start = np.maximum.accumulate(np.where(follow, 0, position))
    depth = position - run_start
    items = drawn[run_start]
    for step in range(1, int(depth.max(initial=0)) + 1):
        walking = np.flatnonzero(depth >= step)
        items[walking] = successor[items[walking]]
    return items


def _draw_items(clusters: np.ndarray, item_cluster: np.ndarray, weight: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """An item of each interaction's cluster, drawn by popularity weight (inverse CDF, one search)."""
    order = np.lexsort((np.arange(len(item_cluster)), item_cluster))
    sorted_cluster, sorted_weight = item_cluster[order], weight[order]
    bounds = np.searchsorted(sorted_cluster, np.arange(item_cluster.max() + 2))
    cumulative = np.cumsum(sorted_weight)
    before = np.concatenate([[0.0], cumulative])[bounds[:-1]]
    totals = cumulative[bounds[1:] - 1] - before
    within = (cumulative - before[sorted_cluster]) / totals[sorted_cluster]
    within[bounds[1:] - 1] = 1.0  # exact ends, so no draw spills into the next cluster
    keys = sorted_cluster + within
    target = clusters + (1.0 - rng.random(len(clusters)))  # in (c, c + 1]
    return order[np.searchsorted(keys, target, side="left")]


def generate_synthetic(config: SyntheticConfig) -> RawData:
    """The synthetic world as loader output (users ``1..U`` in order, each chronological)."""
    config.validate()
    needed, available = (
        BYTES_PER_INTERACTION * config.interactions + BYTES_PER_ITEM * config.items,
        _available(),
    )
    if needed > available:
        raise UserError(
            f"a synthetic world of {config.items:,} items and {config.interactions:,} interactions needs "
            f"about {needed / 2**30:.1f} GiB, {available / 2**30:.1f} GiB is available: ask for fewer"
        )
    return _generate(config)


def _available() -> float:
    """Bytes of memory available now (MemAvailable of /proc/meminfo; unknown elsewhere: no limit)."""
    try:
        line = next(row for row in open("/proc/meminfo") if row.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return float("inf")
    return int(line.split()[1]) * 1024


def _generate(config: SyntheticConfig) -> RawData:
    rng = np.random.default_rng(config.seed)
    items, item_cluster, weight = _item_tables(config, rng)
    activity = rng.lognormal(0.0, ACTIVITY_SIGMA, config.users)
    extra = rng.multinomial(config.interactions - MIN_LENGTH * config.users, activity / activity.sum())
    lengths = MIN_LENGTH + extra
    cluster_weight = np.bincount(item_cluster, weights=weight, minlength=config.n_clusters)
    clusters, follow = _draw_steps(config, lengths, cluster_weight, rng)
    successor = _successors(item_cluster, rng)
    item_index = _follow(_draw_items(clusters, item_cluster, weight, rng), follow, successor)
    gaps = rng.integers(60, 86_400, size=len(item_index))
    user_ids = (np.arange(config.users) + 1).astype(str)
    interactions = pd.DataFrame(
        {
            "user_id": np.repeat(user_ids, lengths),
            "item_id": items["item_id"].to_numpy()[item_index],
            "timestamp": START_TIME + np.cumsum(gaps),
        }
    )
    notes = {"synthetic": {**asdict(config), "clusters": config.n_clusters}}
    return RawData(interactions=interactions, items=items, source="synthetic", notes=notes)
