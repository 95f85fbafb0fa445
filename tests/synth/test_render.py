"""The renderer: boxes equal the drawn pixels (occlusion and clipping included); both frame paths agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from llava_st.synth import PRESETS
from llava_st.synth.background import make_background
from llava_st.synth.geometry import draw_outline, outline
from llava_st.synth.motion import move_profile, path_from_speeds, reflect, start_profile, stop_profile
from llava_st.synth.render import compose, rasterise, rgb_to_ycbcr, yuv420_frames
from llava_st.synth.sampler import SceneError, sample_scene
from llava_st.synth.scene import Scene, SceneObject
from llava_st.synth.split import heldout_pairs


def _scenes(config, media, count, split="train"):
    out = []
    seed = 0
    while len(out) < count:
        rng = np.random.default_rng([seed, 99])
        seed += 1
        try:
            out.append(sample_scene(rng, config, media, split, heldout_pairs(config))[0])
        except SceneError:
            continue
    return out


def _pixel_box(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def test_boxes_equal_the_bounding_box_of_each_colour_in_the_rgb_frames(configs):
    """Unique colours on black: an object's pixels are exactly the pixels of its colour on that frame."""
    config = configs.luma()
    palette = np.array([c.rgb for c in config.scene.colours], dtype=np.uint8)
    checked = 0
    for scene in _scenes(config, "video", 4) + _scenes(config, "image", 4):
        raster = rasterise(scene)
        for f in range(scene.num_frames):
            rgb = compose(scene, raster, f)
            for obj in scene.objects:
                colour = palette[obj.colour_track[f]]
                expected = _pixel_box(np.all(rgb == colour, axis=-1))
                assert raster.box(obj.index, f) == expected, (obj.index, f)
                assert raster.area[obj.index, f] == np.count_nonzero(np.all(rgb == colour, axis=-1))
                checked += expected is not None
    assert checked > 300


def test_luma_plane_equals_the_rgb_frame_and_background_chroma_is_exact():
    config = PRESETS["standard"]
    scenes = _scenes(config, "video", 6)
    assert any(np.any(s.camera != 0) for s in scenes), "want at least one panning scene"
    for scene in scenes[:3] + [s for s in scenes if np.any(s.camera != 0)][:1]:
        raster = rasterise(scene)
        H, W = scene.height, scene.width
        for f, planes in enumerate(yuv420_frames(scene, raster)):
            if f % 7:
                continue
            ycc = rgb_to_ycbcr(compose(scene, raster, f))
            assert np.array_equal(planes[:H], ycc[..., 0])
            chroma = planes[H:].reshape(-1)
            cb = chroma[: H * W // 4].reshape(H // 2, W // 2)
            blocks = ycc[..., 1].astype(np.int32).reshape(H // 2, 2, W // 2, 2).sum((1, 3))
            # chroma of objects is drawn on the half-resolution grid and may reach one block
            # further than the full-resolution pixels: compare blocks at least one block away
            occupied = np.pad((raster.ids[f] > 0).reshape(H // 2, 2, W // 2, 2).any((1, 3)), 1)
            near = np.zeros((H // 2, W // 2), dtype=bool)
            for dy in range(3):
                for dx in range(3):
                    near |= occupied[dy : dy + H // 2, dx : dx + W // 2]
            assert (~near).sum() > H * W // 8
            assert np.array_equal(cb[~near], ((blocks + 2) // 4)[~near])


def _tiny_scene(objects, width=64, height=48, frames=1):
    from llava_st.synth.background import Background

    bg = Background("solid", np.zeros((height, width, 3), dtype=np.uint8), "a plain dark background", ((0, 0, 0),))
    return Scene(
        media="image", width=width, height=height, num_frames=frames, fps=1.0, split="train", background=bg,
        camera=np.zeros((frames, 2), dtype=np.int64), objects=objects, events=[],
        palette=((255, 0, 0), (0, 0, 255)), palette_names=("red", "blue"),
    )


def _object(index, shape, x, y, r, z, colour=0):
    return SceneObject(
        index=index, shape=shape, colour=("red", "blue")[colour], size="small", radius=r, role="extra", z=z,
        motion="static", centre=np.array([[x, y]], dtype=float), angle=np.zeros(1), scale=np.ones(1),
        colour_track=np.full(1, colour),
    )


def test_occlusion_and_clipping():
    hidden = _object(0, "circle", 30, 20, 5, z=0)
    cover = _object(1, "square", 30, 20, 14, z=1, colour=1)  # a square of circumradius 14 covers the disc of 5
    half = _object(2, "circle", 10, 20, 6, z=0)
    edge = _object(3, "square", 62, 45, 8, z=0)  # sticks out of the bottom right corner
    scene = _tiny_scene([hidden, cover, half, edge])
    raster = rasterise(scene)
    assert raster.box(0, 0) is None and raster.area[0, 0] == 0
    x1, y1, x2, y2 = raster.box(3, 0)
    assert x2 == 64 and y2 == 48 and x1 > 50 and y1 > 35
    assert not raster.inside[3, 0] and raster.inside[2, 0]
    # the visible part of a partly covered object
    scene2 = _tiny_scene([_object(0, "circle", 20, 20, 8, z=0), _object(1, "square", 30, 20, 8, z=1, colour=1)])
    r2 = rasterise(scene2)
    circle_alone = rasterise(_tiny_scene([_object(0, "circle", 20, 20, 8, z=0)]))
    square_alone = rasterise(_tiny_scene([_object(0, "square", 30, 20, 8, z=1, colour=1)]))
    assert r2.box(0, 0)[0] == circle_alone.box(0, 0)[0]  # left edge unchanged
    assert r2.box(0, 0)[2] < circle_alone.box(0, 0)[2]  # right part hidden by the square
    seen = (circle_alone.ids[0] == 1) & (square_alone.ids[0] == 0)
    assert r2.box(0, 0) == _pixel_box(seen) and r2.area[0, 0] == seen.sum()


@pytest.mark.parametrize("shape", ["square", "circle", "triangle", "star", "ring", "cross"])
def test_shapes_cover_their_ideal_area(shape):
    r, c = 30.0, 50.0
    canvas = Image.new("L", (100, 100), 0)
    o = outline(shape, c, c, r, 0.3)
    draw_outline(ImageDraw.Draw(canvas), o, 1)
    mask = np.asarray(canvas) > 0
    if o.kind == "polygon":
        x, y = o.points[:, 0], o.points[:, 1]
        ideal = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))  # shoelace
    elif o.kind == "disc":
        ideal = math.pi * r * r
    else:
        ideal = math.pi * (r * r - (r - o.width) ** 2)
    assert abs(mask.sum() - ideal) / ideal < 0.08, (mask.sum(), ideal)
    x0, y0, x1, y1 = o.extent
    box = _pixel_box(mask)
    assert box[0] >= math.floor(x0) - 1 and box[2] <= math.ceil(x1) + 2
    assert box[1] >= math.floor(y0) - 1 and box[3] <= math.ceil(y1) + 2
    assert mask[50, 50] == (shape != "ring")  # the ring has a hole, the others a solid centre


def test_motion_helpers():
    assert reflect(np.array([12.0, 23.0, 5.0]), np.array(0.0), np.array(10.0)).tolist() == [8.0, 3.0, 5.0]
    F = 12
    for profile in (move_profile, start_profile, stop_profile):
        v = profile(F, 3, 7, 2.0)
        pos = path_from_speeds(np.array([1.0, 0.0]), v)[:, 0]
        moving = np.diff(pos) > 0  # moving[f - 1]: position changes from frame f - 1 to f
        if profile is move_profile:
            assert moving.tolist() == [False] * 3 + [True] * 4 + [False] * 4
        elif profile is start_profile:
            assert moving.tolist() == [False] * 3 + [True] * 8
        else:
            assert moving.tolist() == [True] * 7 + [False] * 4


def test_backgrounds_have_the_requested_size_and_muted_tones():
    settings = PRESETS["standard"].scene
    for kind in ("solid", "gradient", "noise"):
        bg = make_background(np.random.default_rng(0), kind, 50, 40, settings)
        assert bg.pixels.shape == (40, 50, 3) and bg.pixels.dtype == np.uint8
        assert bg.pixels.max() <= 255 * settings.background_value[1] + 1
    noise = make_background(np.random.default_rng(0), "noise", 50, 40, settings).pixels
    assert len(np.unique(noise.reshape(-1, 3), axis=0)) > 20


def test_hard_scenes_hold_partial_and_full_occlusion():
    """Objects get hidden behind others: boxes then cover the visible part only, or are absent."""
    from llava_st.synth import DIFFICULTIES
    from llava_st.synth.render import solo_area

    config = PRESETS["tiny"].replace(difficulty=DIFFICULTIES["hard"])
    partial = full = 0
    for scene in _scenes(config, "video", 8):
        raster = rasterise(scene)
        for obj in scene.objects:
            for f in range(scene.num_frames):
                alone = solo_area(scene, obj, f)
                seen = raster.area[obj.index, f]
                assert seen <= alone
                if alone and not seen:
                    full += 1
                    assert raster.box(obj.index, f) is None
                elif seen < alone:
                    partial += 1
    assert partial > 20 and full > 0
