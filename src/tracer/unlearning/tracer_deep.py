"""``tracer-deep``: TRACER set for erasure that holds under a relearning attack (docs/method.md §4.11).

The same code as ``tracer`` under its own name; ``configs/unlearning/tracer-deep.yaml`` names
``tracer-anchored`` as its base and sets the levers that the depth-against-utility frontier found
deepest per unit of utility: every concept item free to move (no Eq. 11 mask), the cut KL targets on the
retain and forget histories, twice the learning rate, and a retain repair after the commit. The default
``tracer`` (configs/unlearning/tracer.yaml) is this setting.
"""

from __future__ import annotations

from tracer.unlearning.tracer import Tracer


class TracerDeep(Tracer):
    name = "tracer-deep"
