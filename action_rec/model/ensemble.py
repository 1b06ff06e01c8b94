"""Several trained ActionLSTMs packed into one that averages their probabilities.

Packing is exact: member k keeps its own slice of every layer (the projection's rows, the LSTM's gates as
diagonal blocks, the head's rows), so the packed net computes every member side by side and returns
log(mean_k softmax(member_k)). It is still one ActionLSTM with one (h, c) state, so streaming, live, batch,
person tracks and ONNX export run an ensemble without knowing it is one. The block-diagonal LSTM wastes some
multiplications on zeros; at 5 members x 128 hidden that is ~3 MFLOP a frame, next to ~400 for the backbone.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn


class MemberNorm(nn.Module):
    """LayerNorm applied to each member's slice of the last dimension, with each member's own affine."""

    def __init__(self, members: int, dim: int):
        super().__init__()
        self.members, self.dim = members, dim
        self.weight = nn.Parameter(torch.ones(members, dim))
        self.bias = nn.Parameter(torch.zeros(members, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unflatten(-1, (self.members, self.dim))
        return (F.layer_norm(x, (self.dim,)) * self.weight + self.bias).flatten(-2)


class MemberHead(nn.Module):
    """Each member's linear head on its slice of the LSTM output -> log of the members' mean probabilities
    (softmax of it is that mean, and cross-entropy reads it like logits)."""

    def __init__(self, members: int, hidden: int, num_classes: int):
        super().__init__()
        self.members, self.hidden = members, hidden
        self.weight = nn.Parameter(torch.zeros(members, num_classes, hidden))
        self.bias = nn.Parameter(torch.zeros(members, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.einsum("...kh,kch->...kc", x.unflatten(-1, (self.members, self.hidden)), self.weight) + self.bias
        return torch.logsumexp(z.log_softmax(-1), dim=-2) - math.log(self.members)


def _blocks(weights: list[torch.Tensor], gates: int) -> torch.Tensor:
    """Member matrices (gates*H, In_k) -> one (gates*K*H, sum In_k), gate-major as nn.LSTM expects, each member's
    rows reading only its own slice of the input (its projection, or its hidden state)."""
    k, rows = len(weights), weights[0].shape[0] // gates
    cols = [w.shape[1] for w in weights]
    out = weights[0].new_zeros(gates * k * rows, sum(cols))
    at = 0
    for m, w in enumerate(weights):
        for g in range(gates):
            out[(g * k + m) * rows:(g * k + m + 1) * rows, at:at + cols[m]] = w[g * rows:(g + 1) * rows]
        at += cols[m]
    return out


def _gate_major(biases: list[torch.Tensor], gates: int) -> torch.Tensor:
    rows = biases[0].shape[0] // gates
    return torch.cat([b[g * rows:(g + 1) * rows] for g in range(gates) for b in biases])


@torch.no_grad()
def pack(nets: list[nn.Module]) -> nn.Module:
    """One ActionLSTM with len(nets) members from trained single ActionLSTMs of the same shape."""
    first = nets[0]
    shape = {"feature_dim": first.feature_dim, "num_classes": first.num_classes, "proj_dim": first.proj_dim,
             "hidden": first.lstm.hidden_size, "num_layers": first.lstm.num_layers, "motion": first.motion}
    for n in nets:
        got = {"feature_dim": n.feature_dim, "num_classes": n.num_classes, "proj_dim": n.proj_dim,
               "hidden": n.lstm.hidden_size, "num_layers": n.lstm.num_layers, "motion": n.motion}
        if getattr(n, "members", 1) != 1 or got != shape:
            raise ValueError(f"members must be single nets of one shape: {got} vs {shape}")
    k = len(nets)
    if k == 1:
        return copy.deepcopy(first).eval()
    packed = type(first)(**shape, members=k).eval()  # ActionLSTM, without importing it back
    in_dim = packed.proj.in_features
    packed.proj.weight.copy_(torch.cat([n.proj.weight if isinstance(n.proj, nn.Linear) else torch.eye(in_dim)
                                        for n in nets]))
    packed.proj.bias.copy_(torch.cat([n.proj.bias if isinstance(n.proj, nn.Linear) else torch.zeros(in_dim)
                                      for n in nets]))
    packed.norm.weight.copy_(torch.stack([n.norm.weight for n in nets]))
    packed.norm.bias.copy_(torch.stack([n.norm.bias for n in nets]))
    for layer in range(shape["num_layers"]):
        for kind in ("ih", "hh"):
            getattr(packed.lstm, f"weight_{kind}_l{layer}").copy_(
                _blocks([getattr(n.lstm, f"weight_{kind}_l{layer}") for n in nets], 4))
            getattr(packed.lstm, f"bias_{kind}_l{layer}").copy_(
                _gate_major([getattr(n.lstm, f"bias_{kind}_l{layer}") for n in nets], 4))
    packed.head.weight.copy_(torch.stack([n.head.weight for n in nets]))
    packed.head.bias.copy_(torch.stack([n.head.bias for n in nets]))
    return packed
