import numpy as np
import pytest
import torch

from action_rec.model import ActionLSTM


@pytest.mark.parametrize("feature_dim,motion", [(1280, True), (1280, False), (512, False), (256, True), (64, True)])
def test_shapes_and_projection(feature_dim, motion):
    net = ActionLSTM(feature_dim, num_classes=3, motion=motion).eval()
    assert net.lstm.input_size == 512 and net.lstm.num_layers == 2 and net.lstm.batch_first
    in_dim = 2 * feature_dim if motion else feature_dim  # motion: the frame's change is fed too
    if in_dim == 512:
        assert isinstance(net.proj, torch.nn.Identity)
    else:
        assert net.proj.in_features == in_dim and net.proj.out_features == 512
    x = torch.randn(4, 16, feature_dim)
    assert net(x).shape == (4, 3)
    assert net(x, all_steps=True).shape == (4, 16, 3)


@pytest.mark.parametrize("motion", [True, False])
def test_step_by_step_equals_full_sequence(motion):
    torch.manual_seed(0)
    net = ActionLSTM(96, num_classes=4, hidden=32, motion=motion).eval()
    x = torch.randn(3, 16, 96)
    full = net(x, all_steps=True)
    state, steps = None, []
    for t in range(x.shape[1]):
        logits, state = net.step(x[:, t], state)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(steps[-1], net(x), rtol=1e-5, atol=1e-5)


def test_state_carries_information():
    # The streaming state must matter: the same frame after different histories gives different logits.
    torch.manual_seed(0)
    net = ActionLSTM(8, num_classes=2, hidden=16, motion=False).eval()
    a, b = torch.randn(1, 5, 8), torch.randn(1, 5, 8)
    last = torch.randn(1, 8)
    _, sa = net.step(a[:, 0])
    _, sb = net.step(b[:, 0])
    assert not torch.allclose(net.step(last, sa)[0], net.step(last, sb)[0])


def test_learns_a_temporal_pattern():
    # Classes differ only in the ORDER of frames, so a per-frame model cannot solve it; the LSTM must.
    torch.manual_seed(0)
    n, T, D = 256, 8, 16
    base = torch.randn(D)
    up = torch.linspace(-1, 1, T)[:, None] * base
    x = torch.stack([up, up.flip(0)]).repeat(n // 2, 1, 1) + 0.1 * torch.randn(n, T, D)
    y = torch.tensor([0, 1]).repeat(n // 2)
    net = ActionLSTM(D, num_classes=2, hidden=32, dropout=0.0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(40):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    assert (net.eval()(x).argmax(1) == y).float().mean() > 0.95


def test_motion_input_is_the_frame_change():
    # With motion features, a constant sequence and its shifted copy differ only by the feature offset;
    # a still scene has zero change at every step, including the first.
    net = ActionLSTM(4, num_classes=2, hidden=8, motion=True).eval()
    captured = []
    net.proj.register_forward_hook(lambda m, inp, out: captured.append(inp[0]))
    x = torch.arange(12.0).view(1, 3, 4)
    net(x)
    torch.testing.assert_close(captured[0][0, :, 4:], torch.tensor([[0.0] * 4, [4.0] * 4, [4.0] * 4]))


@pytest.mark.parametrize("motion,members,n,stride", [(True, 1, 37, 8), (True, 3, 37, 3), (False, 1, 20, 8),
                                                     (True, 1, 5, 8)])  # 5 < window: one padded window
def test_window_logits_equal_forward_on_the_cut_windows(motion, members, n, stride):
    """Batch labelling projects each frame once for all the overlapping windows it is in: the same logits as
    forward() on the windows cut apart (each window's first frame without motion)."""
    from action_rec.decision.windows import take, window_starts, windows

    torch.manual_seed(0)
    net = ActionLSTM(12, 3, proj_dim=16, hidden=8, motion=motion, members=members).eval()
    feats = np.random.default_rng(0).normal(size=(n, 12)).astype(np.float32)
    cut, starts = windows(feats, 16, stride)
    assert starts == window_starts(n, 16, stride)
    seq = torch.from_numpy(take(feats, np.arange(starts[-1] + 16)))
    with torch.no_grad():
        torch.testing.assert_close(net.window_logits(seq, torch.tensor(starts), 16), net(torch.from_numpy(cut)),
                                   rtol=1e-5, atol=1e-6)
