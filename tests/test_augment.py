"""Tests for course_lib.augment: batched augmentations against hand-made references."""

import math

import pytest
import torch

from course_lib.augment import (AUGMENTATIONS, AugmentConfig, add_noise, augment, crop_matrices,
                                elastic_offsets, random_erase, rotation_matrices, two_views, warp)


def _digits(n=8, h=28, w=28):
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, h, w, generator=gen)


def test_identity_warp_is_exact():
    x = _digits()
    theta = torch.eye(3).expand(8, 3, 3)
    torch.testing.assert_close(warp(x, theta), x, atol=1e-5, rtol=0)


def test_rotation_by_90_degrees_matches_rot90():
    x = _digits(4)
    theta = rotation_matrices(4, 0.0)
    theta[:, :2, :2] = torch.tensor([[0.0, -1.0], [1.0, 0.0]])           # exactly 90 degrees
    out = warp(x, theta)
    # output(x, y) = input(-y, x): a quarter turn, equal to rot90 in one of the two directions
    ref = torch.rot90(x, k=1, dims=(2, 3))
    ref_other = torch.rot90(x, k=-1, dims=(2, 3))
    assert torch.allclose(out, ref, atol=1e-5) or torch.allclose(out, ref_other, atol=1e-5)


def test_rotation_angles_are_bounded_and_orthonormal():
    theta = rotation_matrices(500, 15.0, torch.Generator().manual_seed(1))
    rot = theta[:, :2, :2]
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(2).expand(500, 2, 2), atol=1e-6, rtol=0)
    angles = torch.atan2(rot[:, 1, 0], rot[:, 0, 0]) * 180 / math.pi
    assert angles.abs().max() <= 15.0 + 1e-4 and angles.abs().max() > 13.0


def test_crops_stay_inside_the_image_and_cover_the_requested_area():
    theta = crop_matrices(2000, (0.3, 0.9), (0.75, 1.333), torch.Generator().manual_seed(2))
    sx, sy, tx, ty = theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2]
    assert (sx.abs() + tx.abs() <= 1 + 1e-6).all() and (sy.abs() + ty.abs() <= 1 + 1e-6).all()
    area = sx * sy
    assert area.min() >= 0.3 - 1e-5 and area.max() <= 0.9 + 1e-5


def test_elastic_offsets_are_smooth_and_scaled():
    off = elastic_offsets(64, 28, 28, alpha=0.1, grid=4, generator=torch.Generator().manual_seed(3))
    assert off.shape == (64, 28, 28, 2)
    assert 0.05 < off.std() < 0.15
    neighbour_diff = (off[:, 1:] - off[:, :-1]).abs().mean()
    assert neighbour_diff < 0.2 * off.abs().mean()        # smooth: neighbours move together


def test_random_erase_zeroes_one_box_per_selected_image():
    x = torch.ones(200, 1, 28, 28)
    out = random_erase(x, prob=1.0, scale=(0.1, 0.1), generator=torch.Generator().manual_seed(4))
    frac = (out == 0).float().mean(dim=(1, 2, 3))
    assert (frac > 0).all() and frac.mean() < 0.12          # boxes can be clipped at the border
    none = random_erase(x, prob=0.0, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(none, x)


def test_noise_std():
    x = torch.zeros(16, 1, 28, 28)
    out = add_noise(x, 0.3, torch.Generator().manual_seed(5))
    assert abs(float(out.std()) - 0.3) < 0.02


def test_augment_is_batched_reproducible_and_in_range():
    x = _digits(16)
    a = augment(x, AugmentConfig(), torch.Generator().manual_seed(6))
    b = augment(x, AugmentConfig(), torch.Generator().manual_seed(6))
    assert a.shape == x.shape and a.dtype == x.dtype
    torch.testing.assert_close(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(a, x)
    # each image gets its own random parameters
    same = augment(x[:1].expand(16, -1, -1, -1).contiguous(), AugmentConfig(), torch.Generator().manual_seed(6))
    assert not torch.allclose(same[0], same[1])


def test_all_augmentations_off_is_identity():
    cfg = AugmentConfig()
    for name in AUGMENTATIONS:
        cfg = cfg.without(name)
    x = _digits(4)
    torch.testing.assert_close(augment(x, cfg, torch.Generator().manual_seed(0)), x, atol=1e-5, rtol=0)


def test_without_changes_one_augmentation_only():
    base = AugmentConfig()
    no_rot = base.without("rotate")
    assert no_rot.max_rotation == 0 and no_rot.crop_scale == base.crop_scale and no_rot.noise_std == base.noise_std


def test_two_views_differ_but_keep_the_digit():
    x = torch.zeros(32, 1, 28, 28)
    x[:, :, 10:18, 12:16] = 1.0
    v1, v2 = two_views(x, AugmentConfig(), torch.Generator().manual_seed(8))
    assert v1.shape == v2.shape == x.shape
    assert not torch.allclose(v1, v2)
    assert (v1.sum(dim=(1, 2, 3)) > 5).float().mean() > 0.9   # the stroke survives almost always


def test_uses_global_rng_without_generator():
    x = _digits(4)
    torch.manual_seed(11)
    a = augment(x)
    torch.manual_seed(11)
    torch.testing.assert_close(augment(x), a)


@pytest.mark.parametrize("bad", [torch.rand(28, 28), torch.rand(2, 28, 28), torch.ones(2, 1, 4, 4, dtype=torch.long)])
def test_bad_images_raise(bad):
    with pytest.raises(ValueError, match="B, C, H, W"):
        augment(bad)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="crop_scale"):
        AugmentConfig(crop_scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="max_rotation"):
        AugmentConfig(max_rotation=-1.0)
    with pytest.raises(ValueError, match="unknown augmentation"):
        AugmentConfig().without("flip")
    with pytest.raises(ValueError, match="theta"):
        warp(_digits(2), torch.eye(2).expand(2, 2, 2))
