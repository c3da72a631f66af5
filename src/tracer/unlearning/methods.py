"""The registry: every erasure method by name. Base classes never import it, so there is no cycle."""

from tracer.errors import UserError
from tracer.unlearning.base import UnlearningMethod
from tracer.unlearning.filter import DecodeFilter
from tracer.unlearning.finetune import Finetune
from tracer.unlearning.gradient_ascent import GradDiff, GradientAscent
from tracer.unlearning.npo import NPO, SimNPO
from tracer.unlearning.retrain import Retrain
from tracer.unlearning.rmu import RMU
from tracer.unlearning.tracer import (
    Tracer,
    TracerAnchored,
    TracerNoCoherence,
    TracerNoMask,
    TracerNoReassign,
    TracerNoReg,
)
from tracer.unlearning.tracer_deep import TracerDeep
from tracer.unlearning.tracer_paper import TracerPaper

METHODS: dict[str, type[UnlearningMethod]] = {
    method.name: method
    for method in (
        Tracer,
        TracerAnchored,
        TracerPaper,
        TracerDeep,
        TracerNoReassign,
        TracerNoCoherence,
        TracerNoMask,
        TracerNoReg,
        Retrain,
        Finetune,
        GradientAscent,
        GradDiff,
        NPO,
        SimNPO,
        RMU,
        DecodeFilter,
    )
}


def method_class(name: str) -> type[UnlearningMethod]:
    """The method registered as ``name``; UserError listing the choices."""
    if name not in METHODS:
        raise UserError(f"unknown erasure method {name!r}: choose one of {', '.join(sorted(METHODS))}")
    return METHODS[name]
