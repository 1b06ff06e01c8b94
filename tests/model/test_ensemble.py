import numpy as np
import pytest
import torch

from action_rec.model.ensemble import pack, unpack
from action_rec.model.lstm import ActionLSTM


def members(k=3, feature_dim=24, motion=True, proj_dim=32, hidden=16, classes=4):
    nets = []
    for seed in range(k):
        torch.manual_seed(seed)
        net = ActionLSTM(feature_dim, classes, proj_dim=proj_dim, hidden=hidden, motion=motion).eval()
        for p in net.parameters():  # trained-looking weights: LayerNorm affine and biases away from 1 / 0
            p.data += 0.3 * torch.randn_like(p)
        nets.append(net)
    return nets


def mean_probs(nets, x, **kw):
    return torch.stack([n(x, **kw).softmax(-1) for n in nets]).mean(0)


@pytest.mark.parametrize("motion,feature_dim", [(True, 24), (False, 24), (False, 32)])  # 32: identity projection
def test_packed_net_gives_the_members_mean_probabilities(motion, feature_dim):
    nets = members(motion=motion, feature_dim=feature_dim)
    packed = pack(nets)
    assert packed.members == 3 and packed.lstm.hidden_size == 3 * 16
    x = torch.randn(5, 12, feature_dim)
    with torch.no_grad():
        torch.testing.assert_close(packed(x).softmax(-1), mean_probs(nets, x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(packed(x, all_steps=True).softmax(-1), mean_probs(nets, x, all_steps=True),
                                   rtol=1e-5, atol=1e-6)
        # The streaming path (one frame at a time with the carried state) agrees too.
        state = None
        for t in range(x.shape[1]):
            logits, state = packed.step(x[:, t], state)
        torch.testing.assert_close(logits.softmax(-1), mean_probs(nets, x), rtol=1e-5, atol=1e-6)


def test_one_member_is_the_member_itself_and_members_differ():
    nets = members(k=2)
    x = torch.randn(2, 8, 24)
    with torch.no_grad():
        torch.testing.assert_close(pack(nets[:1])(x).softmax(-1), nets[0](x).softmax(-1), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(nets[0](x).softmax(-1), nets[1](x).softmax(-1), atol=1e-3)


def test_packed_state_dict_round_trips_through_a_fresh_net():
    packed = pack(members())
    again = ActionLSTM(24, 4, proj_dim=32, hidden=16, members=3).eval()
    again.load_state_dict(packed.state_dict())
    x = torch.randn(2, 6, 24)
    with torch.no_grad():
        torch.testing.assert_close(again(x), packed(x))


def test_members_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        pack([*members(k=1), *members(k=1, hidden=8)])


def test_a_packed_net_joins_member_by_member_and_unpacks_to_its_members():
    """cv --ensemble over fold models that are themselves ensembles (model.members K): every member counts once."""
    nets = members(k=3)
    nested = pack([pack(nets[:2]), nets[2]])
    assert nested.members == 3
    x = torch.randn(4, 9, 24)
    with torch.no_grad():
        torch.testing.assert_close(nested(x).softmax(-1), mean_probs(nets, x), rtol=1e-5, atol=1e-6)
        singles = unpack(pack(nets))
        assert [getattr(n, "members", 1) for n in singles] == [1, 1, 1]
        for one, net in zip(singles, nets):
            torch.testing.assert_close(one(x), net(x), rtol=1e-5, atol=1e-6)
    assert unpack(nets[0]) == [nets[0]]


def test_packed_head_exports_to_onnx_with_the_same_probabilities():
    ort = pytest.importorskip("onnxruntime")
    from action_rec.export.bundle import _export_head

    packed = pack(members())
    sess = ort.InferenceSession(_export_head(packed, 24), providers=["CPUExecutionProvider"])
    x, prev = torch.randn(2, 7, 24), torch.randn(2, 24)
    h0 = torch.zeros(2, 2, packed.lstm.hidden_size)
    probs, _, _ = sess.run(None, {"features": x.numpy(), "prev": prev.numpy(), "h0": h0.numpy(), "c0": h0.numpy()})
    with torch.no_grad():
        out, _ = packed.lstm(packed.embed(x, prev))
        want = packed.head(out[:, -1]).softmax(-1).numpy()
    np.testing.assert_allclose(probs, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
