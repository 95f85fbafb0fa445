"""Images: EXIF orientation, every mode's conversion to RGB, numpy/PIL inputs, bad input.

Expected pixels are written out from the definitions (EXIF orientation table,
palette lookup, CMYK/HSV formulas, 16-bit scaling), not from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageCms

from llava_st.media import CorruptMediaError, MediaNotFoundError, UnsupportedMediaError, load_image

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)  # non-square so turns are visible

# EXIF 2.3, tag 0x0112: where the stored 0th row and 0th column belong on screen.
EXIF_UPRIGHT = {
    1: lambda s: s,  # top, left
    2: lambda s: s[:, ::-1],  # top, right: mirrored left-right
    3: lambda s: s[::-1, ::-1],  # bottom, right: turned 180
    4: lambda s: s[::-1],  # bottom, left: upside down
    5: lambda s: s.transpose(1, 0, 2),  # left, top
    6: lambda s: s.transpose(1, 0, 2)[:, ::-1],  # right, top: needs a quarter turn clockwise
    7: lambda s: s.transpose(1, 0, 2)[::-1, ::-1],  # right, bottom
    8: lambda s: s.transpose(1, 0, 2)[::-1],  # left, bottom: needs a quarter turn counter-clockwise
}


@pytest.mark.parametrize("orientation", list(EXIF_UPRIGHT))
def test_exif_orientation_file_and_pil(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    Image.fromarray(RGB).save(path, exif=exif)
    expected = EXIF_UPRIGHT[orientation](RGB)
    assert np.array_equal(load_image(path), expected)
    assert np.array_equal(load_image(Image.open(path)), expected)


def test_exif_orientation_in_jpeg(tmp_path):
    big = np.zeros((32, 48, 3), np.uint8)
    big[:8, :8] = 255  # a white corner: top-left stored
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(big).save(tmp_path / "p.jpg", exif=exif, quality=95)
    got = load_image(tmp_path / "p.jpg")
    assert got.shape == (48, 32, 3)
    assert got[:8, -8:].mean() > 200 and got[:8, :8].mean() < 50  # the corner went top-right


def _palette():
    pal = RNG.integers(0, 256, size=(256, 3), dtype=np.uint8)
    idx = RNG.integers(0, 256, size=(5, 7), dtype=np.uint8)
    img = Image.fromarray(idx, mode="P")
    img.putpalette(pal.tobytes())
    return img, pal, idx


def test_grey_binary_and_palette():
    grey = RGB[..., 0]
    assert np.array_equal(load_image(Image.fromarray(grey, mode="L")), np.stack([grey] * 3, axis=-1))
    bits = grey > 127
    assert np.array_equal(load_image(Image.fromarray(bits)), np.stack([bits * 255] * 3, axis=-1).astype(np.uint8))
    img, pal, idx = _palette()
    assert np.array_equal(load_image(img), pal[idx])


def test_alpha_is_dropped_by_default_like_the_release():
    alpha = RNG.integers(0, 256, size=(5, 7), dtype=np.uint8)
    rgba = np.dstack([RGB, alpha])
    assert np.array_equal(load_image(Image.fromarray(rgba, mode="RGBA")), RGB)
    assert np.array_equal(load_image(rgba), RGB)
    grey = RGB[..., 1]
    la = Image.fromarray(np.dstack([grey, alpha]), mode="LA")
    assert np.array_equal(load_image(la), np.stack([grey] * 3, axis=-1))
    img, pal, idx = _palette()
    img.info["transparency"] = int(idx[0, 0])
    assert np.array_equal(load_image(img), pal[idx])
    pa = img.convert("PA")
    assert np.array_equal(load_image(pa), pal[idx])


def test_alpha_composited_over_a_background():
    alpha = np.zeros((5, 7), np.uint8)
    alpha[1] = 255
    alpha[2] = 128
    rgba = np.dstack([RGB, alpha])
    bg = (10, 20, 30)
    got = load_image(rgba, background=bg).astype(int)
    assert np.array_equal(got[0], np.broadcast_to(bg, (7, 3)))
    assert np.array_equal(got[1], RGB[1])
    blend = (RGB[2].astype(float) * 128 + np.array(bg) * 127) / 255
    assert np.abs(got[2] - blend).max() <= 1
    img, pal, idx = _palette()
    img.info["transparency"] = int(idx[0, 0])
    got = load_image(img, background=bg)
    keyed = idx == idx[0, 0]
    assert np.array_equal(got[keyed], np.broadcast_to(bg, (int(keyed.sum()), 3)))
    assert np.array_equal(got[~keyed], pal[idx][~keyed])


def test_premultiplied_modes_keep_opaque_pixels():
    opaque = np.dstack([RGB, np.full((5, 7), 255, np.uint8)])
    rgba_pm = Image.fromarray(opaque, mode="RGBA").convert("RGBa")
    assert np.array_equal(load_image(rgba_pm), RGB)
    la = Image.fromarray(np.dstack([RGB[..., 0], np.full((5, 7), 255, np.uint8)]), mode="LA").convert("La")
    assert np.array_equal(load_image(la), np.stack([RGB[..., 0]] * 3, axis=-1))


def test_cmyk_without_black_is_the_complement_and_full_black_is_black():
    cmyk = np.dstack([RGB, np.zeros((5, 7), np.uint8)])
    assert np.array_equal(load_image(Image.fromarray(cmyk, mode="CMYK")), 255 - RGB)
    cmyk[..., 3] = 255
    assert not load_image(Image.fromarray(cmyk, mode="CMYK")).any()


def test_ycbcr_hsv_lab_rgbx():
    ycc = np.zeros((2, 2, 3), np.uint8)
    ycc[..., 0], ycc[..., 1], ycc[..., 2] = 128, 128, 128  # neutral grey in JFIF YCbCr
    assert np.abs(load_image(Image.fromarray(ycc, mode="YCbCr")).astype(int) - 128).max() <= 1
    hsv = np.array([[[0, 255, 255], [85, 255, 255], [170, 255, 255], [0, 0, 77]]], np.uint8)
    got = load_image(Image.fromarray(hsv, mode="HSV")).astype(int)
    expected = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [77, 77, 77]]])
    assert np.abs(got - expected).max() <= 2
    # LAB: take sRGB colours to LAB through littleCMS, then back through load_image
    colours = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [30, 160, 90]]], np.uint8)
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    lab = ImageCms.applyTransform(Image.fromarray(colours), to_lab)
    assert lab.mode == "LAB"
    assert np.abs(load_image(lab).astype(int) - colours).max() <= 8  # 8-bit LAB loses a little
    rgbx = Image.fromarray(np.dstack([RGB, np.zeros((5, 7), np.uint8)]), mode="RGBA").convert("RGBX")
    assert np.array_equal(load_image(rgbx), RGB)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L"])
def test_sixteen_bit_grey_is_scaled_not_clipped(mode):
    values = np.array([[0, 257, 65535, 32896, 300, 65000]], np.uint16)
    expected = np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    order = {"I;16": "=u2", "I;16B": ">u2", "I;16L": "<u2"}[mode]
    img = Image.frombytes(mode, (values.shape[1], values.shape[0]), values.astype(order).tobytes())
    got = load_image(img)
    assert np.array_equal(got, np.stack([expected] * 3, axis=-1))
    assert got[0, 4, 0] == 1  # Pillow's own convert("RGB") would give 255 here


def test_sixteen_bit_png_file(tmp_path):
    values = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    expected = np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert np.array_equal(load_image(tmp_path / "deep.png")[..., 0], expected)


@pytest.mark.parametrize("mode", ["I", "F"])
def test_modes_without_a_value_range_are_refused(mode):
    with pytest.raises(UnsupportedMediaError, match=f"mode '{mode}'"):
        load_image(Image.new(mode, (4, 3)))


def test_numpy_inputs():
    got = load_image(RGB)
    assert np.array_equal(got, RGB) and not np.shares_memory(got, RGB)
    grey = RGB[..., 2]
    assert np.array_equal(load_image(grey), np.stack([grey] * 3, axis=-1))
    assert np.array_equal(load_image(grey[..., None]), np.stack([grey] * 3, axis=-1))
    assert np.array_equal(load_image(np.asfortranarray(RGB)), RGB)
    assert load_image(RGB).flags["C_CONTIGUOUS"]


@pytest.mark.parametrize(
    "array,match",
    [
        (np.zeros((4, 4, 3), np.float32), "uint8"),
        (np.zeros((4, 4, 3), np.uint16), "uint8"),
        (np.zeros((4, 4, 2), np.uint8), r"\[H, W, 3\]"),
        (np.zeros((2, 4, 4, 3), np.uint8), r"got \[2, 4, 4, 3\]"),
    ],
)
def test_bad_arrays(array, match):
    with pytest.raises(UnsupportedMediaError, match=match):
        load_image(array)


def test_bad_sources(tmp_path):
    with pytest.raises(MediaNotFoundError, match="missing.png"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(UnsupportedMediaError, match="folder"):
        load_image(tmp_path)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(UnsupportedMediaError, match="text.png"):
        load_image(tmp_path / "text.png")
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptMediaError, match="cut.png"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(UnsupportedMediaError, match="list"):
        load_image([[1, 2, 3]])
    with pytest.raises(ValueError, match="background"):
        load_image(np.zeros((2, 2, 4), np.uint8), background=(1, 2))
