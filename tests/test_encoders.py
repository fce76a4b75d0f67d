"""Tests for course_lib.models.encoders: shapes, projection vs features, overfit one batch."""

import pytest
import torch

from course_lib.models.encoders import Classifier, ConvEncoder, EncoderConfig, ProjectionHead, SimCLRNet
from course_lib.objectives.infonce import nt_xent


def test_shapes():
    cfg = EncoderConfig(width=8, proj_hidden=32, proj_dim=16)
    net = SimCLRNet(cfg)
    x = torch.rand(5, 1, 28, 28)
    assert net.features(x).shape == (5, 32) and cfg.feature_dim == 32
    assert net(x).shape == (5, 16)
    assert Classifier(cfg, 10)(x).shape == (5, 10)
    assert ConvEncoder(cfg)(torch.rand(2, 1, 20, 20)).shape == (2, 32)


def test_forward_is_projection_of_features():
    torch.manual_seed(0)
    net = SimCLRNet(EncoderConfig(width=8, proj_hidden=32, proj_dim=16)).eval()
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(net(x), net.projector(net.features(x)))


def test_encoder_is_permutation_equivariant_over_batch_in_eval():
    torch.manual_seed(0)
    enc = ConvEncoder(EncoderConfig(width=8)).eval()
    x = torch.rand(6, 1, 28, 28)
    perm = torch.randperm(6)
    torch.testing.assert_close(enc(x)[perm], enc(x[perm]), atol=1e-5, rtol=1e-5)


def test_overfit_one_batch_contrastive():
    torch.manual_seed(0)
    net = SimCLRNet(EncoderConfig(width=8, proj_hidden=32, proj_dim=16))
    x = torch.rand(16, 1, 28, 28)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        z = net(torch.cat([x, x + 0.01 * torch.randn_like(x)]))
        loss = nt_xent(z[:16], z[16:], 0.2)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    # log(31) = 3.43 at the start; measured 0.03 after 60 steps
    assert float(loss.detach()) < 0.3 < first


def test_bad_input_raises():
    net = SimCLRNet(EncoderConfig(width=8))
    with pytest.raises(ValueError, match="B, 1, H, W"):
        net(torch.rand(2, 28, 28))
    with pytest.raises(ValueError, match="B, 1, H, W"):
        net(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="width"):
        EncoderConfig(width=0)
    with pytest.raises(ValueError, match="num_classes"):
        Classifier(EncoderConfig(width=8), num_classes=1)


def test_projection_head_shape():
    head = ProjectionHead(12, 20, 7)
    assert head(torch.rand(3, 12)).shape == (3, 7)


def test_channels_last_layout_gives_the_same_numbers():
    """The encoder stores its conv weights NHWC (faster on CPU and GPU); the layout must not change results."""
    import copy
    torch.manual_seed(0)
    enc = ConvEncoder(EncoderConfig(width=8)).eval()
    w = enc.stages[1].conv1.weight                                  # (16, 8, 3, 3): the layouts differ
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    x = torch.randn(6, 1, 28, 28)
    ref = copy.deepcopy(enc).to(memory_format=torch.contiguous_format)
    assert ref.stages[1].conv1.weight.is_contiguous()
    with torch.no_grad():
        expected = ref.stages(ref.stem(x)).mean(dim=(2, 3))          # plain NCHW path
        torch.testing.assert_close(enc(x), expected, rtol=1e-4, atol=1e-5)
    state = enc.state_dict()                                        # checkpoints load into a fresh encoder
    fresh = ConvEncoder(EncoderConfig(width=8)).eval()
    fresh.load_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), enc(x), rtol=0, atol=0)
