"""``tracer-paper``: TRACER's Eq. 10 as the paper writes it (docs/method.md §4.10).

The same code as ``tracer`` under its own name; ``configs/unlearning/tracer-paper.yaml`` names
``tracer-anchored`` as its base and switches every extension of docs/method.md §8 off, so a grid can show what
the paper's method does alone and what each extension adds.
"""

from __future__ import annotations

from tracer.unlearning.tracer import Tracer


class TracerPaper(Tracer):
    name = "tracer-paper"
