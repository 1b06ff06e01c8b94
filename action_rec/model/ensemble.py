"""Several trained ActionLSTMs packed into one that averages their probabilities.

Packing is exact: member k keeps its own slice of every layer (the projection's rows, its own LSTM, its head), so
the packed net computes every member side by side and returns log(mean_k softmax(member_k)). It is still one
ActionLSTM whose state is one (h, c) pair (the members' states concatenated on the last dimension), so streaming,
live, batch, person tracks and ONNX export run an ensemble without knowing it is one. A frame costs each member's
projection and LSTM step: about K times one model's head, still small next to the backbone.
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
        # nn.Linear's own initialisation, member by member, so K members trained together start as K models would
        bound = 1 / math.sqrt(hidden)
        self.weight = nn.Parameter(torch.empty(members, num_classes, hidden).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, num_classes).uniform_(-bound, bound))

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(..., members * hidden) -> each member's logits (..., members, classes)."""
        return torch.einsum("...kh,kch->...kc", x.unflatten(-1, (self.members, self.hidden)), self.weight) + self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.member_logits(x).log_softmax(-1), dim=-2) - math.log(self.members)


class MemberLSTM(nn.Module):
    """K nn.LSTMs side by side behind nn.LSTM's interface (batch_first): the input, the (h, c) state and the output
    are the members' slices concatenated on the last dimension."""

    def __init__(self, members: int, input_size: int, hidden_size: int, num_layers: int, dropout: float = 0.0):
        super().__init__()
        self.members = nn.ModuleList(nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                                             dropout=dropout) for _ in range(members))
        self.input_size, self.hidden_size = members * input_size, members * hidden_size
        self.num_layers, self.batch_first = num_layers, True

    def forward(self, x: torch.Tensor, hc: tuple[torch.Tensor, torch.Tensor] | None = None):
        k = len(self.members)
        states = [None] * k if hc is None else list(zip(hc[0].chunk(k, -1), hc[1].chunk(k, -1)))
        outs, hs, cs = [], [], []
        for lstm, xi, state in zip(self.members, x.chunk(k, -1), states):
            out, (h, c) = lstm(xi, state)
            outs.append(out)
            hs.append(h)
            cs.append(c)
        return torch.cat(outs, -1), (torch.cat(hs, -1), torch.cat(cs, -1))


def _shape(net: nn.Module) -> dict:
    """What an ActionLSTM of one member is built from (a packed net: each of its members')."""
    return {"feature_dim": net.feature_dim, "num_classes": net.num_classes, "proj_dim": net.proj_dim,
            "hidden": net.lstm.hidden_size // getattr(net, "members", 1), "num_layers": net.lstm.num_layers,
            "motion": net.motion}


@torch.no_grad()
def unpack(net: nn.Module) -> list[nn.Module]:
    """The single ActionLSTMs a packed one holds (itself if it is one)."""
    k = getattr(net, "members", 1)
    if k == 1:
        return [net]
    shape = _shape(net)
    out = []
    for i, lstm in enumerate(net.lstm.members):
        one = type(net)(**shape).eval()
        rows = slice(i * net.proj_dim, (i + 1) * net.proj_dim)
        if isinstance(one.proj, nn.Linear):
            one.proj.weight.copy_(net.proj.weight[rows])
            one.proj.bias.copy_(net.proj.bias[rows])
        one.norm.weight.copy_(net.norm.weight[i])
        one.norm.bias.copy_(net.norm.bias[i])
        one.lstm.load_state_dict(lstm.state_dict())
        one.head.weight.copy_(net.head.weight[i])
        one.head.bias.copy_(net.head.bias[i])
        out.append(one)
    return out


@torch.no_grad()
def pack(nets: list[nn.Module]) -> nn.Module:
    """One ActionLSTM with every member of `nets` (trained single ActionLSTMs of one shape, or packed ones, whose
    members join one by one, so each counts once in the average)."""
    nets = [one for n in nets for one in unpack(n)]
    first = nets[0]
    shape = _shape(first)
    for n in nets:
        if (got := _shape(n)) != shape:
            raise ValueError(f"members must be nets of one shape: {got} vs {shape}")
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
    for lstm, n in zip(packed.lstm.members, nets):
        lstm.load_state_dict(n.lstm.state_dict())
    packed.head.weight.copy_(torch.stack([n.head.weight for n in nets]))
    packed.head.bias.copy_(torch.stack([n.head.bias for n in nets]))
    return packed
