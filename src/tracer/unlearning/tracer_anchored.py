"""``tracer-anchored``: TRACER with a KL anchor to the parent (docs/method.md §4.8).

The same code as ``tracer`` under its own name; ``configs/unlearning/tracer-anchored.yaml`` holds the
paper's settings plus the retain KL anchor that issue 6's grids selected. It was the default of
``tracer`` until the depth-against-utility frontier showed that the anchor keeps a latent copy of the
concept; the ablations and ``tracer-paper`` name it as their base.
"""

from __future__ import annotations

from tracer.unlearning.tracer import Tracer


class TracerAnchored(Tracer):
    name = "tracer-anchored"
