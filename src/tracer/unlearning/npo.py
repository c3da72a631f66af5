"""Negative preference optimisation (NPO) and its reference-free variant SimNPO (docs/method.md §5).

pi is the probability of the target item's whole SID sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tracer.unlearning.base import EraseConfig, UnlearningMethod
from tracer.unlearning.objectives import nll, sid_log_prob


def npo_loss(log_pi: Tensor, log_pi_ref: Tensor, beta: float) -> Tensor:
    """(2/beta) * mean log(1 + (pi / pi_ref)^beta); equals (2/beta) log 2 where pi == pi_ref. Shapes (B,)."""
    return (2.0 / beta) * F.softplus(beta * (log_pi - log_pi_ref)).mean()


def simnpo_loss(log_pi: Tensor, length: int, beta: float, delta: float) -> Tensor:
    """-(2/beta) * mean log sigmoid(beta * (NLL/|y| - delta)), NLL = -log pi over |y| tokens."""
    return -(2.0 / beta) * F.logsigmoid(beta * (-log_pi / length - delta)).mean()


@dataclass
class NPOConfig(EraseConfig):
    beta: float
    alpha: float  # weight of the retain NLL


class NPO(UnlearningMethod):
    name = "npo"
    config_class = NPOConfig
    needs_reference = True

    def loss(self, model, batch):
        log_pi = sid_log_prob(model, batch.forget)
        with torch.no_grad():
            log_pi_ref = sid_log_prob(self.context.reference, batch.forget)
        forget = npo_loss(log_pi, log_pi_ref, self.config.beta)
        retain = nll(model, batch.retain)
        return forget + self.config.alpha * retain, {
            "npo": forget.detach(),
            "npo_at_reference": 2.0 / self.config.beta * math.log(2.0),
            "retain_nll": retain.detach(),
        }


@dataclass
class SimNPOConfig(EraseConfig):
    beta: float
    delta: float
    alpha: float


class SimNPO(UnlearningMethod):
    name = "simnpo"
    config_class = SimNPOConfig

    def loss(self, model, batch):
        log_pi = sid_log_prob(model, batch.forget)
        forget = simnpo_loss(log_pi, model.n_levels, self.config.beta, self.config.delta)
        retain = nll(model, batch.retain)
        return forget + self.config.alpha * retain, {
            "simnpo": forget.detach(),
            "retain_nll": retain.detach(),
        }
