"""Tests for the GAN models and objectives (chapter 03)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.models.classifier import DigitClassifier, predict_in_batches
from course_lib.models.gan import (DCDiscriminator, DCGenerator, GANConfig, MLPDiscriminator, MLPGenerator,
                                   build_gan, layer_shapes, sample_latent)
from course_lib.objectives.gan import discriminator_loss, generator_logit_grad, generator_loss, value_function


# ----------------------------------------------------------------------------- models

@pytest.mark.parametrize("kind", ["mlp", "dcgan"])
def test_shapes_and_ranges(kind):
    gan = build_gan(GANConfig(kind, latent_dim=8, width=16))
    z = sample_latent(5, 8, torch.Generator().manual_seed(0))
    images = gan.generator(z)
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1          # tanh output
    logits = gan.discriminator(images)
    assert logits.shape == (5,)
    assert gan.sample(3).shape == (3, 1, 28, 28)


def test_dcgan_layer_by_layer_shapes():
    rows = layer_shapes(DCGenerator(latent_dim=8, width=4), torch.zeros(2, 8))
    shapes = [shape for _, shape, _ in rows]
    assert shapes[0] == (2, 8 * 49)
    assert (2, 4, 14, 14) in shapes and shapes[-1] == (2, 1, 28, 28)
    rows = layer_shapes(DCDiscriminator(width=4), torch.zeros(2, 1, 28, 28))
    shapes = [shape for _, shape, _ in rows]
    assert shapes[0] == (2, 4, 14, 14) and (2, 8, 7, 7) in shapes and shapes[-1] == (2, 1)
    # batch norm where it belongs: not on D's input layer, not on G's output layer
    d_layers = [name for name, _, _ in layer_shapes(DCDiscriminator(width=4), torch.zeros(2, 1, 28, 28))]
    assert d_layers[0].startswith("Conv2d") and not d_layers[1].startswith("BatchNorm")
    g_layers = [name for name, _, _ in rows]
    assert not any(n.startswith("BatchNorm") for n in
                   [name for name, _, _ in layer_shapes(DCGenerator(8, 4), torch.zeros(2, 8))][-2:])
    assert g_layers


def test_layer_shapes_restores_training_mode():
    net = DCGenerator(8, 4).train()
    layer_shapes(net, torch.zeros(2, 8))
    assert net.training


def test_sample_is_reproducible_and_restores_mode():
    gan = build_gan(GANConfig("dcgan", 8, 4)).train()
    a = gan.sample(4, torch.Generator().manual_seed(1))
    b = gan.sample(4, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    assert gan.generator.training


def test_dcgan_init_std():
    gan = build_gan(GANConfig("dcgan", 64, 32))
    w = gan.discriminator.net[2].weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.002


@pytest.mark.parametrize("bad", [torch.zeros(2, 7), torch.zeros(2, 8, 1)])
def test_generator_rejects_bad_latent(bad):
    for g in (MLPGenerator(8, 16), DCGenerator(8, 4)):
        with pytest.raises(ValueError, match=r"\(B, 8\)"):
            g(bad)


@pytest.mark.parametrize("bad", [torch.zeros(2, 28, 28), torch.zeros(2, 3, 28, 28), torch.zeros(2, 1, 32, 32)])
def test_discriminator_rejects_bad_images(bad):
    for d in (MLPDiscriminator(16), DCDiscriminator(4)):
        with pytest.raises(ValueError, match="28, 28"):
            d(bad)


def test_config_validation():
    with pytest.raises(ValueError, match="kind"):
        GANConfig("vae")
    with pytest.raises(ValueError):
        GANConfig("mlp", latent_dim=0)
    with pytest.raises(ValueError):
        sample_latent(0, 4)


def test_classifier_shapes_and_batched_prediction():
    torch.manual_seed(0)
    model = DigitClassifier(feature_dim=12)
    x = torch.rand(7, 1, 28, 28) * 2 - 1
    feats, logits = predict_in_batches(model, x, batch_size=3)
    assert feats.shape == (7, 12) and logits.shape == (7, 10)
    model.eval()
    torch.testing.assert_close(logits, model(x))
    with pytest.raises(ValueError, match="28, 28"):
        model.features(torch.zeros(2, 784))


# ----------------------------------------------------------------------------- objectives

def _logits():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(16, generator=gen) * 3, torch.randn(11, generator=gen) * 3


def test_discriminator_loss_matches_bce():
    real, fake = _logits()
    want = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    torch.testing.assert_close(discriminator_loss(real, fake), want)
    torch.testing.assert_close(value_function(real, fake), -want)


def test_discriminator_loss_label_smoothing_matches_bce():
    real, fake = _logits()
    want = (F.binary_cross_entropy_with_logits(real, torch.full_like(real, 0.9))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    torch.testing.assert_close(discriminator_loss(real, fake, real_target=0.9), want)


def test_value_function_equilibrium_and_naive_formula():
    zeros = torch.zeros(4)   # D = 1/2 everywhere
    torch.testing.assert_close(value_function(zeros, zeros), torch.tensor(-2 * torch.log(torch.tensor(2.0)).item()))
    real, fake = _logits()
    naive = torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean()
    torch.testing.assert_close(value_function(real, fake), naive, rtol=1e-4, atol=1e-5)


def test_generator_losses_match_bce():
    _, fake = _logits()
    ones, zeros = torch.ones_like(fake), torch.zeros_like(fake)
    torch.testing.assert_close(generator_loss(fake, "non_saturating"), F.binary_cross_entropy_with_logits(fake, ones))
    torch.testing.assert_close(generator_loss(fake, "fake_label"), F.binary_cross_entropy_with_logits(fake, zeros))
    torch.testing.assert_close(generator_loss(fake, "saturating"),
                               torch.log(1 - torch.sigmoid(fake)).mean(), rtol=1e-4, atol=1e-5)


def test_losses_are_stable_for_extreme_logits():
    big = torch.tensor([-200.0, 200.0])
    assert torch.isfinite(discriminator_loss(big, big))
    for kind in ("non_saturating", "saturating", "fake_label"):
        assert torch.isfinite(generator_loss(big, kind))
    torch.testing.assert_close(generator_loss(torch.tensor([-200.0]), "non_saturating"), torch.tensor(200.0))


@pytest.mark.parametrize("kind", ["non_saturating", "saturating", "fake_label"])
def test_generator_logit_grad_matches_autograd(kind):
    logits = torch.linspace(-6, 6, 13, requires_grad=True)
    (generator_loss(logits, kind) * len(logits)).backward()    # per-sample gradient
    torch.testing.assert_close(logits.grad, generator_logit_grad(torch.sigmoid(logits.detach()), kind))


def test_saturating_gradient_vanishes_where_non_saturating_does_not():
    p = torch.tensor([1e-4])   # a bad generator: D(G(z)) ~ 0
    assert generator_logit_grad(p, "saturating").abs() < 1e-3
    assert generator_logit_grad(p, "non_saturating").abs() > 0.99
    assert generator_logit_grad(p, "fake_label") > 0          # pushes the logit down: the wrong way


def test_objectives_reject_bad_input():
    with pytest.raises(ValueError, match=r"1-D"):
        discriminator_loss(torch.zeros(3, 1), torch.zeros(3))
    with pytest.raises(ValueError, match="floating"):
        generator_loss(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="kind"):
        generator_loss(torch.zeros(3), "minimax")
    with pytest.raises(ValueError, match="real_target"):
        discriminator_loss(torch.zeros(3), torch.zeros(3), real_target=0.3)
    with pytest.raises(ValueError, match="probabilities"):
        generator_logit_grad(torch.tensor([1.5]))


def test_recompute_batchnorm_gives_the_averaged_weights_their_own_statistics():
    from course_lib.chapters.gan.task import recompute_batchnorm
    from course_lib.models.gan import DCGenerator, sample_latent
    torch.manual_seed(0)
    g = DCGenerator(16, 8)
    norms = [m for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:                                   # statistics of some other weights
        m.running_mean.fill_(5.0)
        m.running_var.fill_(9.0)
    recompute_batchnorm(g, 16, batches=4, batch_size=128, seed=1)
    assert not g.training and all(m.momentum == 0.1 for m in norms)
    first = [m.running_mean.clone() for m in norms]
    for m in norms:
        m.running_mean.fill_(-3.0)
    recompute_batchnorm(g, 16, batches=4, batch_size=128, seed=1)
    assert all(torch.allclose(a, m.running_mean) for a, m in zip(first, norms))   # old statistics play no part
    z = sample_latent(512, 16, torch.Generator().manual_seed(2))
    with torch.no_grad():
        eval_out = g(z)
        g.train()
        train_out = g(z)
    assert (eval_out - train_out).abs().mean() < 0.02   # eval mode now matches the batch statistics
