"""Written media: real H.264 MP4 files whose DECODED frames show every object exactly where the
ground truth puts it, and PNG images with exact boxes.

The luma dataset paints objects with colours whose BT.601 luma values are at
least 25 apart on a black background and never lets two objects share a
colour, so an object's pixels in a decoded frame are found from the luma
plane alone (the chroma planes are subsampled by 4:2:0 and blur edges).
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
from PIL import Image

LUMA_TOLERANCE = 10  # decoded luma within +-10 of the colour's luma (classes are 25 apart)
BOX_TOLERANCE_PX = 1


def _luma(rgb) -> float:
    r, g, b = rgb
    return 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255  # BT.601, limited range


def _colour_on(obj: dict, events: list[dict], frame: int) -> str:
    """The object's colour on a frame, from its own colour and its colour-change events."""
    for ev in events:
        if ev["object"] == obj["index"] and ev["kind"] == "recolour" and ev["start_frame"] <= frame <= ev["end_frame"]:
            return ev["detail"]["colour"]
    return obj["colour"]


def _box(mask):
    ys, xs = np.nonzero(mask)
    return None if xs.size == 0 else [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def test_videos_are_h264_with_the_configured_rate_and_frames(luma_dataset, truth, configs):
    cfg = configs.luma()
    gts = truth(luma_dataset, "videos")
    assert len(gts) == cfg.num_videos
    for gt in gts:
        with av.open(str(luma_dataset / gt["media"])) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.codec_context.pix_fmt == "yuv420p"
            assert stream.average_rate == Fraction(6)
            assert (stream.width, stream.height) == (160, 120)
            frames = list(container.decode(video=0))
        assert len(frames) == gt["num_frames"] == cfg.video.num_frames
        assert float(frames[-1].time) == (cfg.video.num_frames - 1) / cfg.video.fps


def test_every_box_matches_the_decoded_video_within_one_pixel(luma_dataset, truth, configs):
    luma = {c.name: _luma(c.rgb) for c in configs.luma_palette}
    compared = worst = 0
    kinds = set()
    for gt in truth(luma_dataset, "videos"):
        kinds |= {ev["kind"] for ev in gt["events"]}
        with av.open(str(luma_dataset / gt["media"])) as container:
            planes = [f.to_ndarray()[: gt["height"]].astype(np.float64) for f in container.decode(video=0)]  # Y plane
        for obj in gt["objects"]:
            for f, stored in enumerate(obj["boxes_xyxy"]):
                colour = _colour_on(obj, gt["events"], f)
                measured = _box(np.abs(planes[f] - luma[colour]) <= LUMA_TOLERANCE)
                if stored is None:
                    assert measured is None, (gt["name"], obj["index"], f, measured)
                    continue
                assert measured is not None, (gt["name"], obj["index"], f, stored)
                err = max(abs(a - b) for a, b in zip(stored, measured))
                assert err <= BOX_TOLERANCE_PX, (gt["name"], obj["index"], obj["shape"], f, stored, measured)
                worst = max(worst, err)
                compared += 1
    assert compared > 400
    assert len(kinds) >= 4, f"want a variety of events in the test data, got {kinds}"


def test_png_boxes_are_exact(luma_dataset, truth, configs):
    rgb_of = {c.name: np.array(c.rgb, dtype=np.uint8) for c in configs.luma_palette}
    for gt in truth(luma_dataset, "images"):
        img = np.asarray(Image.open(luma_dataset / gt["media"]).convert("RGB"))
        assert img.shape == (gt["height"], gt["width"], 3)
        for obj in gt["objects"]:
            assert obj["boxes_xyxy"][0] == _box(np.all(img == rgb_of[obj["colour"]], axis=-1))


def test_preview_is_written(tiny_dataset):
    preview = Image.open(tiny_dataset / "preview.png")
    assert preview.width > 300 and preview.height > 300
