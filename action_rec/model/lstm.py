"""ActionLSTM: per-frame features -> 512-d projection -> 2-layer LSTM -> class logits.

The backbone is frozen and lives elsewhere; this is the only part that trains, so it sees cached
features, never pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from .ensemble import MemberHead, MemberLSTM, MemberNorm

# Streaming state: the LSTM's (h, c), each (num_layers, B, hidden), and the previous frame's features.
State = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class ActionLSTM(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, proj_dim: int = 512, hidden: int = 256,
                 num_layers: int = 2, dropout: float = 0.3, motion: bool = True, members: int = 1):
        super().__init__()
        self.feature_dim, self.num_classes, self.proj_dim, self.motion = feature_dim, num_classes, proj_dim, motion
        # members > 1: several nets side by side, their probabilities averaged (a deep ensemble): trained together
        # from K initialisations (member_logits gives each its own loss), or packed from K trainings (ensemble.pack)
        self.members = members
        # A pooled frame feature is mostly background; its change from the previous frame is mostly the
        # person moving. Feeding both lets the LSTM use motion without learning to subtract from little data.
        in_dim = 2 * feature_dim if motion else feature_dim
        # The projection is learned so any backbone width maps to the same 512-d LSTM input; LayerNorm
        # after it because backbones' feature scales differ by orders of magnitude.
        self.proj = nn.Identity() if in_dim == proj_dim and members == 1 else nn.Linear(in_dim, members * proj_dim)
        self.norm = nn.LayerNorm(proj_dim) if members == 1 else MemberNorm(members, proj_dim)
        self.drop = nn.Dropout(dropout)
        drop = dropout if num_layers > 1 else 0.0
        self.lstm = (nn.LSTM(proj_dim, hidden, num_layers=num_layers, batch_first=True, dropout=drop) if members == 1
                     else MemberLSTM(members, proj_dim, hidden, num_layers, drop))
        self.head = nn.Linear(hidden, num_classes) if members == 1 else MemberHead(members, hidden, num_classes)

    def embed(self, feats: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) -> (B, T, proj_dim); `prev` (B, D) is the frame before feats[:, 0], if any."""
        if self.motion:
            before = torch.cat([(feats[:, :1] if prev is None else prev[:, None]), feats[:, :-1]], 1)
            feats = torch.cat([feats, feats - before], -1)
        return self.drop(torch.relu(self.norm(self.proj(feats))))

    def forward(self, feats: torch.Tensor, all_steps: bool = False) -> torch.Tensor:
        """feats (B, T, feature_dim) -> logits (B, C) after the last frame, or (B, T, C) if all_steps."""
        out, _ = self.lstm(self.embed(feats))
        return self.head(out if all_steps else out[:, -1])

    def window_logits(self, seq: torch.Tensor, starts: torch.Tensor, window: int) -> torch.Tensor:
        """The logits of forward() on the windows seq[s:s + window] of one (N, feature_dim) sequence, each frame
        projected once: overlapping windows (batch labelling's stride is half a window) share their frames'
        projection, the head's largest cost, and only a window's first frame differs (no frame before it)."""
        idx = starts[:, None] + torch.arange(window, device=seq.device)
        rows = self.embed(seq[None])[0][idx]                    # (W, window, proj): each frame after its predecessor
        rows[:, 0] = self.embed(seq[starts][:, None])[:, 0]     # a window's first frame: no motion, as in forward()
        out, _ = self.lstm(rows)
        return self.head(out[:, -1])

    def member_logits(self, feats: torch.Tensor) -> torch.Tensor:
        """feats (B, T, feature_dim) -> each member's logits after the last frame, (B, members, C)."""
        out, _ = self.lstm(self.embed(feats))
        head = self.head
        return head.member_logits(out[:, -1]) if isinstance(head, MemberHead) else head(out[:, -1])[:, None]

    def step(self, feat_t: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Advance one frame for streaming: feat_t (B, feature_dim) -> (logits (B, C), new state).

        Constant work per frame; running T steps from state=None equals forward() on the T frames.
        """
        hc, prev = (None, None) if state is None else ((state[0], state[1]), state[2])
        out, (h, c) = self.lstm(self.embed(feat_t[:, None], prev), hc)
        return self.head(out[:, 0]), (h, c, feat_t)
