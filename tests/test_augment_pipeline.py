"""Compose: determinism, chunking invariance, per-sample independence, fusion, replay,
uint8 image helpers and argument checks."""
import numpy as np
import pytest

from fastconv.augment import (Affine, Brightness, ColorJitter, Compose, Contrast, Cutout,
                              GaussianBlur, GaussianNoise, HorizontalFlip, Hue, RandomResizedCrop,
                              Rotate, SaltAndPepper, Saturation, Scale, Translate, VerticalFlip)
from fastconv.augment import batch_to_images, images_to_batch
from fastconv.augment import functional as F


def rand(*shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def full_pipeline(seed=0):
    return Compose([HorizontalFlip(), VerticalFlip(p=0.3), Rotate(25), Translate(0.1), Scale((0.8, 1.2)),
                    ColorJitter(0.3, 0.3, 0.3, 0.05, p=0.8), GaussianBlur((0.5, 1.5), p=0.5),
                    GaussianNoise((0.0, 0.05)), SaltAndPepper(0.02, p=0.3), Cutout(p=0.5),
                    RandomResizedCrop((20, 18), scale=(0.5, 1.0))], seed=seed)


def test_same_seed_same_output_and_different_seed_differs():
    x = rand(6, 3, 24, 24)
    a, b = full_pipeline(1)(x), full_pipeline(1)(x)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (6, 3, 20, 18)
    assert not np.array_equal(a, full_pipeline(2)(x))


def test_batch_of_8_equals_two_batches_of_4_and_eight_batches_of_1():
    x = rand(8, 3, 24, 24)
    whole = full_pipeline()(x)
    p = full_pipeline()
    halves = np.concatenate([p(x[:4]), p(x[4:])])  # the counter advances by 4
    np.testing.assert_array_equal(whole, halves)
    ones = np.concatenate([full_pipeline()(x[i:i + 1], start_index=i) for i in range(8)])
    np.testing.assert_array_equal(whole, ones)


def test_counter_gives_fresh_parameters_each_epoch():
    x = rand(4, 3, 16, 16)
    p = Compose([Rotate(30), ColorJitter(0.5)], seed=0)
    e1, e2 = p(x), p(x)
    assert p.counter == 8
    assert not np.allclose(e1, e2)
    p.reset()
    np.testing.assert_array_equal(p(x), e1)


def test_samples_get_independent_parameters():
    x = np.repeat(rand(1, 3, 16, 16), 16, axis=0)
    _, params = Compose([Rotate(45), Brightness(0.5), GaussianNoise(0.1)], seed=0)(x, return_params=True)
    angles = params.transforms[0]["angle"]
    assert len(np.unique(angles)) == 16 and angles.min() >= -45 and angles.max() <= 45
    assert abs(np.corrcoef(angles, params.transforms[1]["brightness"])[0, 1]) < 0.7
    assert len(np.unique(params.transforms[2]["key"])) == 16


def test_probability_is_per_sample():
    x = rand(400, 1, 4, 4)
    _, params = Compose([HorizontalFlip(p=0.3)], seed=5)(x, return_params=True)
    assert abs(params.transforms[0]["apply"].mean() - 0.3) < 0.07
    _, none = Compose([Rotate(30, p=0.0)], seed=5)(x, return_params=True)
    assert not none.transforms[0]["apply"].any()


def test_replay_reproduces_and_applies_to_another_batch():
    x = rand(5, 3, 20, 20)
    p = full_pipeline(3)
    y, params = p(x, return_params=True)
    np.testing.assert_array_equal(p.replay(params, x), y)
    # same geometry on a second "view": geometric params only depend on the record
    q = Compose([Rotate(40), Translate(0.2)], seed=9)
    a, rec = q(x, return_params=True)
    b = q.replay(rec, x[:, :1] * 2)
    np.testing.assert_allclose(b, a[:, :1] * 2, atol=1e-5)
    with pytest.raises(ValueError, match="params"):
        q.replay(params, x)
    with pytest.raises(ValueError, match="samples"):
        q.replay(rec, x[:2])


def test_geometric_steps_fuse_into_one_warp():
    x = rand(3, 2, 21, 21)
    pipe = Compose([Rotate(30), Scale((0.7, 1.3)), Translate(0.1)], seed=4)
    y, params = pipe(x, return_params=True)
    hw = (21, 21)
    total = (Translate(0.1).matrix(params.transforms[2], hw) @ Scale().matrix(params.transforms[1], hw)
             @ Rotate().matrix(params.transforms[0], hw))
    np.testing.assert_allclose(y, F.warp_affine(x, total), atol=1e-6)


def test_single_transforms_match_their_direct_kernels():
    x = rand(4, 3, 12, 12)
    y, p = Rotate((90, 90))(x, return_params=True)
    np.testing.assert_array_equal(y, np.rot90(x, 1, axes=(2, 3)))
    y = HorizontalFlip(p=1.0)(x)
    np.testing.assert_array_equal(y, x[:, :, :, ::-1])
    y = Compose([HorizontalFlip(p=1.0), VerticalFlip(p=1.0)])(x)
    np.testing.assert_array_equal(y, x[:, :, ::-1, ::-1])
    y, p = Compose([HorizontalFlip(p=1.0), Rotate((90, 90))])(x, return_params=True)
    np.testing.assert_array_equal(y, np.rot90(x[:, :, :, ::-1], 1, axes=(2, 3)))
    y, p = Brightness((1.5, 1.5))(x, return_params=True)
    np.testing.assert_allclose(y, np.clip(x * 1.5, 0, 1), atol=1e-6)


def test_identity_parameters_return_the_input():
    x = rand(3, 3, 10, 10)
    pipe = Compose([Rotate((0, 0)), Scale((1, 1)), Affine(), Brightness((1, 1)), GaussianBlur((0, 0), p=1),
                    GaussianNoise(0.0), HorizontalFlip(p=0.0), Cutout(p=0.0)])
    y = pipe(x)
    np.testing.assert_array_equal(y, x)
    assert y is not x


def test_random_resized_crop_box_within_image_and_output_size():
    x = rand(32, 3, 30, 40)
    y, p = RandomResizedCrop(16, scale=(0.2, 0.9))(x, return_params=True)
    q = p.transforms[0]
    assert y.shape == (32, 3, 16, 16)
    assert np.all(q["y0"] >= 0) and np.all(q["y0"] + q["height"] <= 30)
    assert np.all(q["x0"] >= 0) and np.all(q["x0"] + q["width"] <= 40)
    area = q["height"] * q["width"] / 1200
    assert np.all(area > 0.15) and np.all(area < 0.95)
    # a full-image "crop" to the same size is the identity
    z = Compose([RandomResizedCrop((30, 40), scale=(1, 1), ratio=(4 / 3, 4 / 3))])(x)
    np.testing.assert_allclose(z, x, atol=1e-6)


def _resize_box_reference(x, box, size, border, fill):
    """Each image's box (y0, x0, height, width), resized to size by bilinear sampling at pixel
    centres (torchvision's align_corners=False: output pixel i reads source y0 + (i + 0.5) *
    height / size - 0.5), through fastconv.augment.reference.warp_affine in float64."""
    from fastconv.augment import reference as R
    out = []
    for s, (y0, x0, height, width) in enumerate(box):
        sy, sx = height / size[0], width / size[1]
        source_of_output = np.array([[sx, 0, x0 + 0.5 * sx - 0.5], [0, sy, y0 + 0.5 * sy - 0.5], [0, 0, 1]])
        out.append(R.warp_affine(x[s:s + 1], np.linalg.inv(source_of_output), size, "bilinear", border, fill)[0])
    return np.stack(out)


@pytest.mark.parametrize("p", [1.0, 0.5])
def test_random_resized_crop_pixels_match_the_numpy_reference(p):
    """The output is each sample's box resized; where the transform does not apply, the whole
    image resized."""
    x = rand(24, 3, 30, 40, seed=4)
    crop = RandomResizedCrop((16, 20), scale=(0.2, 0.9), p=p, border="replicate")
    y, params = crop(x, seed=3, return_params=True)
    q = params.transforms[0]
    if p < 1:
        assert 0 < q["apply"].sum() < len(x)
        assert np.all(q["height"][~q["apply"]] == 30) and np.all(q["width"][~q["apply"]] == 40)
    box = np.stack([q["y0"], q["x0"], q["height"], q["width"]], axis=1)
    ref = _resize_box_reference(x, box, (16, 20), "replicate", 0.0)
    # the kernel computes source coordinates in float32: a few ulps of up to 40 pixels, times
    # the image's slope (pixel values in [0, 1] change by at most 1 per pixel)
    np.testing.assert_allclose(y, ref, rtol=0, atol=4 * 40 * np.finfo(np.float32).eps)


def test_random_resized_crop_halving_is_the_2x2_block_mean():
    """The whole 32 x 32 image to 16 x 16: each output pixel's centre falls between four input
    pixels, so bilinear resizing is their mean."""
    x = rand(3, 2, 32, 32, seed=5)
    y = RandomResizedCrop(16, scale=(1, 1), ratio=(1, 1))(x)
    blocks = x.astype(np.float64).reshape(3, 2, 16, 2, 16, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(y, blocks, rtol=0, atol=1e-6)


def test_input_is_not_modified_unless_inplace():
    x = rand(4, 3, 16, 16)
    before = x.copy()
    pipe = Compose([ColorJitter(0.4, 0.4), GaussianNoise(0.1), Cutout(p=1.0)], seed=1)
    y = pipe(x, start_index=0)
    np.testing.assert_array_equal(x, before)
    z = pipe(x, start_index=0, inplace=True)
    assert z is x
    np.testing.assert_array_equal(x, y)


def test_uint8_hwc_images_get_the_same_augmentation_as_float_batches():
    imgs = (rand(6, 22, 20, 3) * 255).astype(np.uint8)
    pipe = Compose([HorizontalFlip(), Affine(rotate=20, translate=0.1, scale=(0.9, 1.1), border="reflect"),
                    ColorJitter(0.3, 0.3, 0.3, 0.05), GaussianBlur(p=0.5), Cutout(p=0.5)], seed=7)
    out8, p8 = pipe.apply_images(imgs, start_index=0, return_params=True)
    batch = images_to_batch(imgs)[0]
    outf, pf = pipe(batch, start_index=0, return_params=True)
    np.testing.assert_array_equal(p8.transforms[1]["angle"], pf.transforms[1]["angle"])
    ref = batch_to_images(outf, (False, np.dtype(np.uint8)))
    # intermediate rounding to uint8 after each step: allow a few levels
    assert out8.dtype == np.uint8 and out8.shape == imgs.shape
    assert np.abs(out8.astype(int) - ref.astype(int)).max() <= 3


def test_images_helper_round_trips_uint8_hwc():
    imgs = (rand(3, 10, 12, 3) * 255).astype(np.uint8)
    out = Compose([HorizontalFlip(p=1.0)]).apply_images(imgs)
    assert out.dtype == np.uint8 and out.shape == imgs.shape
    np.testing.assert_array_equal(out, imgs[:, :, ::-1])
    one = Compose([Rotate((90, 90))]).apply_images(imgs[0][:, :10])
    np.testing.assert_array_equal(one, np.rot90(imgs[0][:, :10], 1, axes=(0, 1)))


@pytest.mark.parametrize("make,match", [
    (lambda: HorizontalFlip(p=1.5), "p must lie in"),
    (lambda: Rotate(30, p=-0.1), "p must lie in"),
    (lambda: Rotate(float("nan")), "degrees"),
    (lambda: Rotate((30, -30)), "degrees must have low <= high"),
    (lambda: Scale((1.2, 0.8)), "range"),
    (lambda: Scale((0.0, 1.0)), "range"),
    (lambda: Translate(1.5), "fraction"),
    (lambda: Affine(shear=(10, 95)), "shear"),
    (lambda: Rotate(10, border="wrap"), "border"),
    (lambda: Brightness(-0.1), "factor|brightness"),
    (lambda: Hue(0.7), "hue"),
    (lambda: GaussianBlur(sigma=(2.0, 1.0)), "sigma"),
    (lambda: GaussianNoise(std=(-0.1, 0.1)), "std"),
    (lambda: SaltAndPepper(amount=(0.0, 2.0)), "amount"),
    (lambda: Cutout(num_holes=0), "num_holes"),
    (lambda: RandomResizedCrop(0), "size"),
    (lambda: Compose([Rotate(3)], seed=-1), "seed"),
])
def test_bad_arguments_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_batches_raise_value_error():
    pipe = Compose([Saturation(0.5)])
    with pytest.raises(ValueError, match="3-channel"):
        pipe(rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="3-channel"):
        Compose([Hue(0.1, p=0.0)])(rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="4-D"):
        pipe(rand(3, 8, 8))
    with pytest.raises(ValueError, match="dtype"):
        pipe(np.zeros((1, 3, 4, 4), np.int16))
    with pytest.raises(ValueError, match="start_index"):
        pipe(rand(1, 3, 4, 4), start_index=-2)
    with pytest.raises(TypeError, match="transforms\\[0\\]"):
        Compose([lambda x: x])
    assert Contrast(0.5)(rand(2, 1, 5, 5)).shape == (2, 1, 5, 5)  # contrast is fine on 1 channel
