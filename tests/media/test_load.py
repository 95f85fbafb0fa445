"""The one media dispatcher: what each input is read as, and loading arrays, clips and images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from llava_st.media import (
    IMAGE_EXTENSIONS,
    FrameRangeError,
    LoadedMedia,
    MediaError,
    MediaKindError,
    MediaNotFoundError,
    classify,
    load_frame_folder,
    load_media,
)
from llava_st.media import folder as folder_module
from llava_st.media import load as load_module


@pytest.fixture
def files(tmp_path, synth):
    images = [synth.pattern(i) for i in range(10)]
    ppm = tmp_path / "still.PPM"  # upper case: the ending is compared in lower case
    Image.fromarray(images[3]).save(ppm, format="PPM")
    png = tmp_path / "still.png"
    Image.fromarray(images[4]).save(png)
    video = synth.write_video(tmp_path / "clip.mp4", images)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:03d}.ppm", format="PPM")
    return {"ppm": ppm, "png": png, "video": video, "folder": folder, "images": images}


def test_one_list_of_image_extensions():
    assert folder_module.IMAGE_EXTENSIONS is load_module.IMAGE_EXTENSIONS is IMAGE_EXTENSIONS
    assert {".ppm", ".png", ".jpg", ".jpeg", ".webp"} <= IMAGE_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in IMAGE_EXTENSIONS)


def test_classify_every_kind_of_input(files):
    frames = np.zeros((5, 8, 8, 3), np.uint8)
    assert classify(files["ppm"]) == "image"
    assert classify(str(files["png"])) == "image"
    assert classify(files["video"]) == "video"
    assert classify(files["folder"]) == "folder"
    assert classify(frames) == "frames"
    assert classify(frames[0]) == "image"
    assert classify(Image.fromarray(files["images"][0])) == "image"
    loaded = load_media(frames, 2)
    assert classify(loaded) == "loaded"
    clip = load_frame_folder(files["folder"], 3, fps=5)
    assert classify(clip) == "clip"
    # a forced kind decides how a file is read, and must agree with anything else
    assert classify(files["png"], kind="video") == "video"
    assert classify(files["video"], kind="image") == "image"
    for source, kind in ((frames, "image"), (frames[0], "video"), (files["folder"], "image"), (loaded, "image"),
                         (clip, "image")):
        with pytest.raises(MediaKindError, match=f"kind='{kind}'"):
            classify(source, kind=kind)
    with pytest.raises(MediaKindError, match="kind must be"):
        classify(files["png"], kind="picture")
    with pytest.raises(MediaNotFoundError, match="nope.ppm"):
        classify(files["ppm"].parent / "nope.ppm")


def test_a_ppm_file_is_an_image_not_a_video(files):
    m = load_media(files["ppm"], 12)
    assert m.kind == "image" and m.frames.shape == (1, 48, 64, 3)
    assert m.source == str(files["ppm"]) and m.timeline.frame_ids == (0,)
    assert np.array_equal(m.frames[0], files["images"][3])  # PPM is lossless


def test_a_folder_of_ppm_frames_is_a_video(files):
    m = load_media(files["folder"], 4, fps=5)
    assert m.kind == "video" and m.timeline.frame_ids == (0, 3, 6, 9)
    assert m.timeline.timestamps == pytest.approx((0.0, 0.6, 1.2, 1.8))
    with pytest.raises(MediaError, match="fps"):
        load_media(files["folder"], 4)


def test_video_file_and_image_options(files):
    m = load_media(files["video"], 5, frame_range=(2, 6))
    assert m.kind == "video" and m.timeline.frame_ids == (2, 3, 4, 5, 6) and m.clip is not None
    with pytest.raises(FrameRangeError, match="is an image"):
        load_media(files["png"], 5, time_range=(0.0, 1.0))
    with pytest.raises(FrameRangeError, match="already sampled"):
        load_media(m.clip, 5, frame_range=(0, 1))
    assert load_media(m, 99) is m  # already loaded: returned as it is


def test_frame_arrays_are_sampled_like_a_video():
    frames = np.arange(20, dtype=np.uint8)[:, None, None, None] * np.ones((1, 32, 32, 3), dtype=np.uint8)
    m = load_media(frames, 12, fps=5)
    assert m.kind == "video" and m.frames.shape[0] == 12 and m.timeline.timestamps[-1] == pytest.approx(19 / 5)
    assert [int(f[0, 0, 0]) for f in m.frames] == [round(i / 11 * 19) for i in range(12)]
    part = load_media(frames, 3, frame_range=(10, 14), fps=5)
    assert part.timeline.frame_ids == (10, 12, 14) and part.timeline.timestamps == pytest.approx((2.0, 2.4, 2.8))
    assert load_media(frames, 2, time_range=(1.0, 2.0), fps=5).timeline.frame_ids == (5, 10)
    assert load_media(frames, 3).timeline.timestamps is None  # no frame rate: positions only
    with pytest.raises(MediaError, match=r"frame_range \[10, 25\] is outside the array of frames"):
        load_media(frames, 3, frame_range=(10, 25))
    with pytest.raises(FrameRangeError, match="needs their frame rate"):
        load_media(frames, 3, time_range=(0.0, 1.0))
    with pytest.raises(MediaKindError, match="kind='image'"):
        load_media(frames, 3, kind="image")
    with pytest.raises(FrameRangeError, match="is an image"):
        load_media(frames[0], 3, frame_range=(0, 1))
    with pytest.raises(MediaError, match="uint8"):
        load_media(frames.astype(np.float32), 3)


def test_every_failure_is_a_media_error_and_a_value_error(files):
    for call in (lambda: load_media(files["ppm"].parent / "missing.mp4", 3),
                 lambda: load_media(np.zeros((2, 4, 4, 3), np.uint8), 0),
                 lambda: load_media(files["folder"], 3, kind="image")):
        with pytest.raises(MediaError) as exc:
            call()
        assert isinstance(exc.value, ValueError)


def test_loaded_media_fields():
    m = load_media(np.full((6, 7, 3), 9, np.uint8), 4)
    assert isinstance(m, LoadedMedia) and m.kind == "image" and m.source is None
    assert (m.timeline.width, m.timeline.height) == (7, 6)
