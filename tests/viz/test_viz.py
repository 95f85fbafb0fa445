"""Pictures of answers: box pixels where the answer says (grid and decoded video), colours,
span marks, frame choice, interpolation, the timeline's bars, parse failures and bad input.

Every check reads output pixels or artists and compares them with positions
computed here from the answer's numbers (``floor(x1) .. ceil(x2) - 1`` for the
pixels a box touches, the outline ``line_width`` pixels inside them).
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from fractions import Fraction

import numpy as np
import pytest

from llava_st.protocol import answers as A
from llava_st.protocol.timebase import Timeline
from llava_st.protocol.tokens import RELEASE_BINS
from llava_st import viz
from llava_st.viz import GROUND_TRUTH_RGB, PREDICTION_RGB, SPAN_RGB

av = pytest.importorskip("av")
pytest.importorskip("matplotlib")

H, W = 48, 64


def box_tokens(x1: int, y1: int, x2: int, y2: int) -> str:
    return f"[<WIDTH-{x1:03d}><HEIGHT-{y1:03d}><WIDTH-{x2:03d}><HEIGHT-{y2:03d}>]"


def ring_mask(h: int, w: int, box_px, lw: int) -> np.ndarray:
    """Reference outline: pixels a pixel-xyxy box touches, minus those ``lw`` or more inside its edges."""
    x1, y1, x2, y2 = box_px
    c1, r1 = math.floor(x1), math.floor(y1)
    c2, r2 = max(math.ceil(x2) - 1, c1), max(math.ceil(y2) - 1, r1)
    rows = np.arange(h)[:, None]
    cols = np.arange(w)[None, :]
    outer = (rows >= r1) & (rows <= r2) & (cols >= c1) & (cols <= c2)
    inner = (rows >= r1 + lw) & (rows <= r2 - lw) & (cols >= c1 + lw) & (cols <= c2 - lw)
    return outer & ~inner


def frame_colour(i: int) -> tuple[int, int, int]:
    return (40, 60 + 10 * i, 140)


def plain_frames(t: int, h: int = H, w: int = W) -> np.ndarray:
    frames = np.empty((t, h, w, 3), dtype=np.uint8)
    for i in range(t):
        frames[i] = frame_colour(i)
    return frames


def find_tile(grid: np.ndarray, colour, h: int = H, w: int = W) -> tuple[int, int]:
    """Top-left corner of the tile showing a frame of plain ``colour`` (its pixels' bounding box)."""
    ys, xs = np.nonzero(np.all(grid == np.array(colour, np.uint8), axis=-1))
    assert len(ys), f"no tile of colour {colour} in the grid"
    y0, x0 = ys.min(), xs.min()
    assert (ys.max() - y0 + 1, xs.max() - x0 + 1) == (h, w), "tile of unexpected size (box on its edge?)"
    return int(y0), int(x0)


def has_colour(image: np.ndarray, colour) -> bool:
    return bool(np.any(np.all(image == np.array(colour, np.uint8), axis=-1)))


# Six sampled frames of a 41-frame video at 10 fps: frame ids 0, 8, ..., 40.
T6 = 6
TL6 = Timeline(width=W, height=H, timestamps=tuple(i * 0.8 for i in range(T6)), frame_ids=tuple(i * 8 for i in range(T6)))
# Keys 20, 40, 60 name sampled frames round(k / 99 * 5) = 1, 2, 3.
STVG_TEXT = (
    "{<TEMP-020><TEMP-060>} "
    f"<TEMP-020>: {box_tokens(10, 15, 45, 80)}, <TEMP-040>: {box_tokens(30, 20, 70, 75)}, <TEMP-060>: {box_tokens(50, 30, 90, 85)}"
)
GT_TEXT = "{<TEMP-030><TEMP-080>} " f"<TEMP-040>: {box_tokens(20, 25, 60, 60)}, <TEMP-060>: {box_tokens(5, 5, 40, 50)}"


def stvg(text: str = STVG_TEXT, timeline=TL6):
    result = A.parse_answer(text, "stvg", bins=RELEASE_BINS, timeline=timeline)
    assert isinstance(result, A.SpatioTemporalGrounding), result
    return result


def pixel_box(box: A.Box, w: int = W, h: int = H):
    return (box.x1 * w, box.y1 * h, box.x2 * w, box.y2 * h)


# ----------------------------------------------------------------- drawing primitives


def test_box_edges_and_outline_match_reference():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = np.sort(rng.uniform(0, W, 2))
        y = np.sort(rng.uniform(0, H, 2))
        box = (x[0], y[0], x[1], y[1])
        lw = int(rng.integers(1, 5))
        image = np.zeros((H, W, 3), np.uint8)
        viz.draw_box(image, box, (255, 0, 0), lw)
        drawn = np.all(image == (255, 0, 0), axis=-1)
        np.testing.assert_array_equal(drawn, ring_mask(H, W, box, lw), err_msg=f"box {box} lw {lw}")
    assert viz.box_edges((10.2, 5.0, 20.0, 15.7), 32, 32) == (10, 5, 19, 15)
    # Corners on the frame's far edges stay inside the frame.
    assert viz.box_edges((0, 0, W, H), W, H) == (0, 0, W - 1, H - 1)


def test_draw_box_rejects_a_box_outside_the_frame():
    image = np.zeros((H, W, 3), np.uint8)
    with pytest.raises(ValueError, match="outside the frame \\[0, 64\\] x \\[0, 48\\]"):
        viz.draw_box(image, (10, 10, W + 5, 20), (255, 0, 0), 2)
    with pytest.raises(ValueError, match="ends before it starts"):
        viz.draw_box(image, (30, 10, 20, 20), (255, 0, 0), 2)


# ----------------------------------------------------------------- grid


def test_grid_draws_each_track_box_exactly_where_the_answer_says():
    result = stvg()
    lw = 2
    grid = viz.frame_grid(plain_frames(T6), result, TL6, line_width=lw)
    by_frame = {tf.frame: tf for tf in result.track.frames}
    assert sorted(by_frame) == [1, 2, 3]
    for i in range(T6):
        y0, x0 = find_tile(grid, frame_colour(i))
        tile = grid[y0 : y0 + H, x0 : x0 + W]
        red = np.all(tile == PREDICTION_RGB, axis=-1)
        if i in by_frame:
            box = by_frame[i].box
            assert box.pixels == pytest.approx(pixel_box(box))
            expected = ring_mask(H, W, box.pixels, lw)
            np.testing.assert_array_equal(red, expected, err_msg=f"frame {i}")
            np.testing.assert_array_equal(np.all(tile[~expected] == frame_colour(i), axis=-1), True)
        else:
            assert not red.any(), f"frame {i} has no track box but shows one"
            np.testing.assert_array_equal(np.all(tile == frame_colour(i), axis=-1), True)


def test_grid_ground_truth_uses_its_own_colour():
    assert PREDICTION_RGB != GROUND_TRUTH_RGB
    result, gt = stvg(), stvg(GT_TEXT)
    lw = 2
    grid = viz.frame_grid(plain_frames(T6), result, TL6, ground_truth=gt, line_width=lw)
    pred_by_frame = {tf.frame: tf.box.pixels for tf in result.track.frames}
    for tf in gt.track.frames:
        y0, x0 = find_tile(grid, frame_colour(tf.frame))
        tile = grid[y0 : y0 + H, x0 : x0 + W]
        gt_ring = ring_mask(H, W, tf.box.pixels, lw)
        pred_ring = ring_mask(H, W, pred_by_frame[tf.frame], lw) if tf.frame in pred_by_frame else np.zeros_like(gt_ring)
        # The prediction is drawn over the ground truth.
        np.testing.assert_array_equal(np.all(tile == GROUND_TRUTH_RGB, axis=-1), gt_ring & ~pred_ring)
        np.testing.assert_array_equal(np.all(tile == PREDICTION_RGB, axis=-1), pred_ring)


def test_grid_scales_boxes_with_the_tile():
    result = stvg()
    lw = 3
    grid = viz.frame_grid(plain_frames(T6), result, TL6, tile_width=2 * W, line_width=lw)
    for tf in result.track.frames:
        y0, x0 = find_tile(grid, frame_colour(tf.frame), 2 * H, 2 * W)
        tile = grid[y0 : y0 + 2 * H, x0 : x0 + 2 * W]
        scaled = tuple(2 * v for v in tf.box.pixels)
        np.testing.assert_array_equal(np.all(tile == PREDICTION_RGB, axis=-1), ring_mask(2 * H, 2 * W, scaled, lw))


def test_grid_marks_frames_inside_the_predicted_span():
    result = stvg()
    grid = viz.frame_grid(plain_frames(T6), result, TL6)
    for i in range(T6):
        y0, x0 = find_tile(grid, frame_colour(i))
        inside = result.span.start <= i / (T6 - 1) <= result.span.end
        left_of_tile = grid[y0 + H // 2, x0 - 1]
        below_tile = grid[y0 + H, x0 + W // 2]
        assert (tuple(left_of_tile) == SPAN_RGB) == inside, f"frame {i}"
        assert (tuple(below_tile) == SPAN_RGB) == inside, f"frame {i}"
    assert [i for i in range(T6) if result.span.start <= i / 5 <= result.span.end] == [2, 3]


def test_grid_without_boxes_shows_span_marks_only():
    tl = Timeline.from_split((0, 99), 10, W, H, fps=25)
    result = A.parse_answer("{<TEMP-030><TEMP-070>}", "tvg", bins=RELEASE_BINS, timeline=tl)
    grid = viz.frame_grid(plain_frames(10), result, tl)
    assert not has_colour(grid, PREDICTION_RGB)
    for i in range(10):
        y0, x0 = find_tile(grid, frame_colour(i))
        assert (tuple(grid[y0 - 1, x0 + 5]) == SPAN_RGB) == (30 / 99 <= i / 9 <= 70 / 99)


def test_grid_dense_events_mark_every_event_span():
    tl = Timeline.from_split((0, 99), 10, W, H, fps=25)
    result = A.parse_answer("{0.0, 0.2}, a dog runs. {0.6, 0.8}, it sits.", "dvc", bins=RELEASE_BINS, timeline=tl)
    grid = viz.frame_grid(plain_frames(10), result, tl)
    for i in range(10):
        y0, x0 = find_tile(grid, frame_colour(i))
        t = i / 9
        assert (tuple(grid[y0 - 1, x0 + 5]) == SPAN_RGB) == (t <= 0.2 or 0.6 <= t <= 0.8), f"frame {i}"


def test_image_answers_rec_and_dgc():
    image = plain_frames(1)[0]
    rec = A.parse_answer(box_tokens(20, 30, 70, 90), "rec", bins=RELEASE_BINS, timeline=Timeline.for_image(W, H))
    grid = viz.frame_grid(image, rec, line_width=2)
    y0, x0 = find_tile(grid, frame_colour(0))
    tile = grid[y0 : y0 + H, x0 : x0 + W]
    np.testing.assert_array_equal(np.all(tile == PREDICTION_RGB, axis=-1), ring_mask(H, W, rec.box.pixels, 2))

    # DGC, no timeline: pixels are the normalised box times the image size; phrases are written by the boxes.
    dgc = A.parse_answer(f"A cat {box_tokens(10, 50, 40, 95)} sits by a lamp {box_tokens(60, 50, 95, 95)}.", "dgc", bins=RELEASE_BINS)
    assert dgc.phrases[0].box.pixels is None
    grid = viz.frame_grid(image, dgc, line_width=2)
    y0, x0 = find_tile(grid, frame_colour(0))
    tile = grid[y0 : y0 + H, x0 : x0 + W]
    red = np.all(tile == PREDICTION_RGB, axis=-1)
    for phrase in dgc.phrases:
        ring = ring_mask(H, W, pixel_box(phrase.box), 2)
        assert red[ring].all()
        # The phrase label sits on the rows above the box: white text on the prediction colour.
        c1, r1 = math.floor(phrase.box.x1 * W), math.floor(phrase.box.y1 * H)
        above = tile[max(r1 - 14, 0) : r1, c1 : c1 + 12]
        assert (luma(above) > 200).any() and has_colour(above, PREDICTION_RGB)


def test_image_answer_with_pixels_for_another_frame_size_is_refused():
    rec = A.parse_answer(box_tokens(20, 30, 70, 90), "rec", bins=RELEASE_BINS, timeline=Timeline.for_image(2 * W, 2 * H))
    with pytest.raises(ValueError, match="result box"):
        viz.frame_grid(plain_frames(1)[0], rec)


def test_grid_pixel_box_outside_the_frame_is_an_error():
    bad = A.Grounding(text="", box=A.Box(0.1, 0.1, 0.5, 0.5, pixels=(6.4, 4.8, W + 20.0, 24.0)))
    with pytest.raises(ValueError, match=r"result box pixels .* outside the frame \[0, 64\] x \[0, 48\]"):
        viz.frame_grid(plain_frames(1)[0], bad)
    gt_bad = A.Grounding(text="", box=A.Box(0.1, 0.1, 0.5, 0.5, pixels=(6.4, -3.0, 32.0, 24.0)))
    ok = A.Grounding(text="", box=A.Box(0.1, 0.1, 0.5, 0.5))
    with pytest.raises(ValueError, match="ground_truth box pixels"):
        viz.frame_grid(plain_frames(1)[0], ok, ground_truth=gt_bad)


# ----------------------------------------------------------------- choosing frames


def test_choose_frames_prefers_the_track_and_shows_the_span_edges():
    t = 100
    keys = list(range(30, 61))  # one box per frame 30..60 (T = 100 = bins: key k is frame k)
    text = "{<TEMP-030><TEMP-060>} " + ", ".join(f"<TEMP-{k:03d}>: {box_tokens(10, 10, 50, 50)}" for k in keys)
    tl = Timeline.from_split((0, 99), t, W, H, fps=10)
    result = stvg(text, tl)
    marks = viz.marks.read_marks(result, t, W, H)
    chosen = viz.choose_frames(t, 8, marks)
    assert len(chosen) == 8 and np.all(np.diff(chosen) > 0)
    assert 29 in chosen and 61 in chosen  # just outside the span
    inner = [int(i) for i in chosen if i not in (29, 61)]
    # Six track frames evenly spread over 30..60: the reference spread of 31 frames into 6.
    expected = [keys[round(j * 30 / 5)] for j in range(6)]
    assert inner == expected
    # Fewer frames than the budget: all of them.
    np.testing.assert_array_equal(viz.choose_frames(5, 8, marks), np.arange(5))
    # No span, no track: evenly spread over the clip, both ends included.
    empty = viz.marks.read_marks(A.ParseFailure("tvg", "x", "no span"), t, W, H)
    chosen = viz.choose_frames(t, 4, empty)
    np.testing.assert_array_equal(chosen, [0, 33, 66, 99])


def test_grid_shows_at_most_max_frames_in_the_given_columns():
    tl = Timeline.from_split((0, 99), 12, W, H, fps=10)
    result = A.parse_answer("{<TEMP-000><TEMP-099>}", "tvg", bins=RELEASE_BINS, timeline=tl)
    grid = viz.frame_grid(plain_frames(12), result, tl, max_frames=5, columns=2)
    shown = [i for i in range(12) if has_colour(grid, frame_colour(i))]
    assert len(shown) == 5
    corners = sorted(find_tile(grid, frame_colour(i)) for i in shown)
    assert len({x for _, x in corners}) == 2  # two columns
    assert len({y for y, _ in corners}) == 3  # three rows


# ----------------------------------------------------------------- parse failures and bad input


def test_parse_failure_still_renders_with_its_reason():
    failure = A.parse_answer("I cannot tell.", "stvg", bins=RELEASE_BINS, timeline=TL6)
    assert isinstance(failure, A.ParseFailure)
    frames = plain_frames(T6)
    grid = viz.frame_grid(frames, failure, TL6)
    for i in range(T6):
        find_tile(grid, frame_colour(i))  # every frame shown, untouched
    assert not has_colour(grid, PREDICTION_RGB)
    banner = grid[: find_tile(grid, frame_colour(0))[0]]
    # The reason is written in the failure colour (anti-aliased text: look for reddish pixels).
    r, g, b = (banner[..., c].astype(int) for c in range(3))
    assert ((r > 120) & (g < 90) & (b < 90)).sum() > 20
    fig = viz.figure(frames, failure, TL6)
    assert len(fig.axes) == 1  # no times: grid only
    tl_fig = viz.timeline_figure(failure, TL6)
    notes = [a for a in tl_fig.axes[0].texts if a.get_gid() == "prediction-note"]
    assert len(notes) == 1 and failure.reason[:20] in notes[0].get_text()
    # With a ground truth, its boxes are still drawn.
    grid = viz.frame_grid(frames, failure, TL6, ground_truth=stvg(GT_TEXT))
    assert has_colour(grid, GROUND_TRUTH_RGB)


@pytest.mark.parametrize(
    "frames, match",
    [
        (np.zeros((T6, H, W, 3), np.float32), "uint8"),
        (np.zeros((T6, H, W), np.uint8), r"\[T, H, W, 3\]"),
        (np.zeros((T6, H, W, 4), np.uint8), r"\[T, H, W, 3\]"),
        (np.zeros((0, H, W, 3), np.uint8), "non-empty"),
    ],
)
def test_bad_frames_are_named(frames, match):
    with pytest.raises(ValueError, match=f"frames.*{match}"):
        viz.frame_grid(frames, stvg(), TL6)
    with pytest.raises(ValueError, match=f"frames.*{match}"):
        viz.figure(frames, stvg(), TL6)


def test_frames_not_an_array_and_results_of_the_wrong_type():
    with pytest.raises(TypeError, match="frames"):
        viz.frame_grid([[0]], stvg(), TL6)
    with pytest.raises(TypeError, match="result must be a typed answer"):
        viz.frame_grid(plain_frames(T6), "{0.1, 0.2}", TL6)
    tvg = A.parse_answer("{0.1, 0.5}", "tvg", bins=RELEASE_BINS)
    with pytest.raises(TypeError, match="ground_truth is a TemporalGrounding"):
        viz.frame_grid(plain_frames(T6), stvg(), TL6, ground_truth=tvg)
    with pytest.raises(TypeError, match="ground_truth is a ParseFailure"):
        viz.timeline_figure(stvg(), TL6, ground_truth=A.ParseFailure("stvg", "x", "y"))


def test_timeline_for_other_frames_is_named():
    with pytest.raises(ValueError, match="timeline describes 6 sampled frames but 5"):
        viz.frame_grid(plain_frames(5), stvg(), TL6)
    other = Timeline(width=W + 2, height=H, frame_ids=tuple(range(T6)))
    with pytest.raises(ValueError, match="timeline is for 66x48 frames"):
        viz.frame_grid(plain_frames(T6), stvg(), other)
    # A track key naming a frame past the frames given (answer read for a longer clip).
    long_tl = Timeline.from_split((0, 99), 20, W, H, fps=10)
    # key 40 names round(40 / 99 * 19) = 8.
    with pytest.raises(ValueError, match="result track key 40 names sampled frame 8 but only 6"):
        viz.frame_grid(plain_frames(T6), stvg(timeline=long_tl))


def test_save_picture_formats_and_unwritable_paths(tmp_path):
    from PIL import Image

    frames = plain_frames(T6)
    png = viz.save_picture(tmp_path / "answer.png", frames, stvg(), TL6, ground_truth=stvg(GT_TEXT))
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 0
    pdf = viz.save_picture(tmp_path / "answer.pdf", frames, stvg(), TL6)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(ValueError, match=r"extension \.xyz"):
        viz.save_picture(tmp_path / "answer.xyz", frames, stvg(), TL6)
    with pytest.raises(FileNotFoundError, match="missing"):
        viz.save_picture(tmp_path / "missing" / "answer.png", frames, stvg(), TL6)
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    with pytest.raises(FileNotFoundError, match="a_file"):
        viz.save_picture(a_file / "answer.png", frames, stvg(), TL6)
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        viz.save_picture(tmp_path, frames, stvg(), TL6)
    assert not (tmp_path / "answer.xyz").exists()


def test_save_picture_into_a_read_only_folder(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):  # root writes anywhere: make the OS answer as it would for a user
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == folder and mode & os.W_OK else real_access(p, mode))
    try:
        with pytest.raises(PermissionError, match="not writable"):
            viz.save_picture(folder / "answer.png", plain_frames(T6), stvg(), TL6)
        assert not (folder / "answer.png").exists()
    finally:
        folder.chmod(0o700)


# ----------------------------------------------------------------- timeline


def bars(fig) -> dict[str, object]:
    return {p.get_gid(): p for ax in fig.axes for p in ax.patches if p.get_gid()}


def test_timeline_bars_sit_at_the_spans_in_seconds():
    pred, gt = stvg(), stvg(GT_TEXT)
    fig = viz.timeline_figure(pred, TL6, ground_truth=gt)
    found = bars(fig)
    for gid, span in (("prediction-span-0", pred.span), ("ground_truth-span-0", gt.span)):
        bar = found[gid]
        # Seconds through the timeline, computed here: linear between the sampled frames' times.
        start = np.interp(span.start * 5, np.arange(6), TL6.timestamps)
        end = np.interp(span.end * 5, np.arange(6), TL6.timestamps)
        assert bar.get_x() == pytest.approx(start) and bar.get_width() == pytest.approx(end - start)
    assert found["prediction-span-0"].get_y() > found["ground_truth-span-0"].get_y()  # prediction above
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time (s)"
    ticks = next(line for line in ax.lines if line.get_gid() == "prediction-track")
    # A key's tick is at the time of the sampled frame it names: frames 1, 2, 3.
    np.testing.assert_allclose(ticks.get_xdata(), [0.8, 1.6, 2.4])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_timeline_dense_events_one_bar_each_with_caption_normalised_without_timestamps():
    tl = Timeline(width=W, height=H, frame_ids=tuple(range(0, 100, 10)))  # no timestamps
    dvc = A.parse_answer("{0.1, 0.3}, a dog runs. {0.25, 0.9}, it sits down.", "dvc", bins=RELEASE_BINS, timeline=tl)
    fig = viz.timeline_figure(dvc, tl)
    found = bars(fig)
    assert set(found) == {"prediction-span-0", "prediction-span-1"}
    for j, (s, e) in enumerate([(0.1, 0.3), (0.25, 0.9)]):
        assert found[f"prediction-span-{j}"].get_x() == pytest.approx(s)
        assert found[f"prediction-span-{j}"].get_width() == pytest.approx(e - s)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "a dog runs." in texts and "it sits down." in texts
    assert fig.axes[0].get_xlabel().startswith("time (normalised")
    # Without any timeline, seconds carried by the answer are used.
    with_seconds = A.parse_answer("{0.1, 0.3}, a dog runs.", "dvc", bins=RELEASE_BINS, timeline=Timeline.from_split((0, 99), 10, W, H, fps=10))
    fig = viz.timeline_figure(with_seconds)
    bar = bars(fig)["prediction-span-0"]
    assert bar.get_x() == pytest.approx(with_seconds.events[0].span.start_s)
    assert fig.axes[0].get_xlabel() == "time (s)"


def test_timeline_elc_end_mark_and_svg_track():
    tl = Timeline.from_split((0, 99), 10, W, H, fps=10)
    elc = A.parse_answer(
        f"Ends in <TEMP-070>, the man waves. <TEMP-040>: {box_tokens(10, 10, 50, 50)}", "elc", bins=RELEASE_BINS, timeline=tl, start=0.2
    )
    fig = viz.timeline_figure(elc, tl)
    ax = fig.axes[0]
    end = next(line for line in ax.lines if line.get_gid() == "prediction-end")
    assert end.get_xdata()[0] == pytest.approx(elc.end.seconds)
    bar = bars(fig)["prediction-span-0"]
    assert bar.get_x() == pytest.approx(elc.span.start_s) and bar.get_x() + bar.get_width() == pytest.approx(elc.span.end_s)
    svg = A.parse_answer(f"<TEMP-000>: {box_tokens(1, 1, 5, 5)}, <TEMP-099>: {box_tokens(1, 1, 5, 5)}", "svg", bins=RELEASE_BINS, timeline=tl)
    fig = viz.timeline_figure(svg, tl)
    ticks = next(line for line in fig.axes[0].lines if line.get_gid() == "prediction-track")
    np.testing.assert_allclose(ticks.get_xdata(), [tl.timestamps[0], tl.timestamps[-1]])
    assert not bars(fig)


def test_figure_holds_grid_and_timeline():
    fig = viz.figure(plain_frames(T6), stvg(), TL6, ground_truth=stvg(GT_TEXT))
    assert len(fig.axes) == 2
    assert fig.axes[0].images and fig.axes[0].images[0].get_array().shape[2] == 3
    assert {"prediction-span-0", "ground_truth-span-0"} <= set(bars(fig))
    rec = A.parse_answer(box_tokens(20, 30, 70, 90), "rec", bins=RELEASE_BINS)
    assert len(viz.figure(plain_frames(1)[0], rec).axes) == 1


# ----------------------------------------------------------------- interpolation


def test_interpolate_track_matches_the_formula():
    rng = np.random.default_rng(1)
    anchor_u = np.array([3.0, 7.0, 7.0, 12.0, 20.0])
    anchor_boxes = rng.uniform(0, 50, (5, 4))
    frame_u = np.arange(25, dtype=np.float64)
    rows, boxes = viz.interpolate_track(anchor_u, anchor_boxes, frame_u)
    expected_rows, expected = [], []
    for n, u in enumerate(frame_u):  # reference: one frame at a time
        hits = [k for k in range(5) if anchor_u[k] == u]
        if hits:
            for k in hits:
                expected_rows.append(n)
                expected.append(anchor_boxes[k])
            continue
        for k in range(4):
            if anchor_u[k] < u < anchor_u[k + 1]:
                w = (u - anchor_u[k]) / (anchor_u[k + 1] - anchor_u[k])
                expected_rows.append(n)
                expected.append(anchor_boxes[k] + w * (anchor_boxes[k + 1] - anchor_boxes[k]))
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(boxes, np.array(expected))
    assert rows.min() == 3 and rows.max() == 20  # nothing before the first or after the last anchor
    r, b = viz.interpolate_track(np.array([10.0, 20.0]), np.array([[0, 0, 10, 10], [10, 0, 20, 10]]), np.array([15.0, 25.0]))
    np.testing.assert_array_equal(r, [0])
    np.testing.assert_allclose(b, [[5, 0, 15, 10]])


# ----------------------------------------------------------------- annotated video

BG = (20, 20, 20)
N_SRC = 40


@pytest.fixture(scope="module")
def source_video(tmp_path_factory):
    """40 plain frames of 64x48 at 10 fps, H.264."""
    path = tmp_path_factory.mktemp("viz") / "plain.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(N_SRC):
            frame = av.VideoFrame.from_ndarray(np.full((H, W, 3), BG, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def decode_all(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def luma(rgb) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.float64)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def expected_video_boxes(result, timeline, n_src: int, by_frame_number: bool) -> list[list[tuple]]:
    """Reference: pixel box(es) on each source frame, written out one frame at a time."""
    t = timeline.num_frames
    u_sampled = timeline.frame_ids if by_frame_number else timeline.timestamps
    u_src = list(range(n_src)) if by_frame_number else [n / 10 for n in range(n_src)]

    def to_u(x):  # normalised -> source units, linear between sampled frames
        p = x * (t - 1)
        i = min(int(p), t - 2)
        return u_sampled[i] + (p - i) * (u_sampled[i + 1] - u_sampled[i])

    anchors = [(u_sampled[round(tf.time * (t - 1))], pixel_box(tf.box)) for tf in result.track.frames]
    lo, hi = to_u(result.span.start), to_u(result.span.end)
    out = []
    for u in u_src:
        boxes = []
        if lo - 1e-9 <= u <= hi + 1e-9:
            for k, (ua, ba) in enumerate(anchors):
                if ua == u:
                    boxes.append(ba)
                elif k + 1 < len(anchors) and ua < u < anchors[k + 1][0]:
                    ub, bb = anchors[k + 1]
                    w = (u - ua) / (ub - ua)
                    boxes.append(tuple(a + w * (b - a) for a, b in zip(ba, bb)))
        out.append(boxes)
    return out


@pytest.mark.parametrize("by_frame_number", [True, False])
def test_video_track_drawn_where_the_answer_says(source_video, tmp_path, by_frame_number):
    from llava_st.media import load_video

    clip = load_video(source_video, 10)  # frames 0, 4, 9, 13, 17, 22, 26, 30, 35, 39
    timeline = Timeline(
        width=W, height=H, timestamps=tuple(clip.timestamps),
        frame_ids=tuple(int(i) for i in clip.indices) if by_frame_number else None,
    )
    # Keys 22, 44, 78 name sampled frames 2, 4, 7 (source frames 9, 17, 30); the span ends
    # at key 66 = sampled frame 6 (source frame 26): the track goes on past the span, and
    # the interpolated boxes of frames 27..30 must not be drawn.
    text = (
        "{<TEMP-022><TEMP-066>} "
        f"<TEMP-022>: {box_tokens(10, 20, 40, 70)}, <TEMP-044>: {box_tokens(50, 20, 80, 70)}, "
        f"<TEMP-078>: {box_tokens(40, 10, 90, 90)}"
    )
    result = stvg(text, timeline)
    gt = stvg("{<TEMP-022><TEMP-078>} " f"<TEMP-022>: {box_tokens(5, 5, 30, 30)}, <TEMP-078>: {box_tokens(5, 5, 30, 30)}", timeline)
    lw = 4
    out = viz.write_annotated_video(
        source_video, result, timeline, tmp_path / "out.mp4", ground_truth=gt, line_width=lw, overlay=False, crf=12
    )
    decoded = decode_all(out)
    assert len(decoded) == N_SRC and decoded[0].shape == (H, W, 3)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.video[0].average_rate == 10
    pred_boxes = expected_video_boxes(result, timeline, N_SRC, by_frame_number)
    gt_boxes = expected_video_boxes(gt, timeline, N_SRC, by_frame_number)
    assert [n for n in range(N_SRC) if pred_boxes[n]] == list(range(9, 27))
    assert all(len(b) <= 1 for b in pred_boxes)
    bg_luma = luma(BG)
    for n, frame in enumerate(decoded):
        pred_ring = np.zeros((H, W), bool)
        for box in pred_boxes[n]:
            pred_ring |= ring_mask(H, W, box, lw)
        gt_ring = np.zeros((H, W), bool)
        for box in gt_boxes[n]:
            gt_ring |= ring_mask(H, W, box, lw)
        gt_ring &= ~pred_ring
        y = luma(frame)
        # Luma is coded at full resolution: the drawn pixels are exactly those of the rings.
        drawn = y > (bg_luma + min(luma(PREDICTION_RGB), luma(GROUND_TRUTH_RGB))) / 2
        np.testing.assert_array_equal(drawn, pred_ring | gt_ring, err_msg=f"frame {n}")
        if not (pred_ring | gt_ring).any():
            assert np.abs(frame.astype(int) - BG).max() <= 6, f"frame {n} outside the span is not plain"
            continue
        # Colours: the middle of each ring's left edge (chroma is shared by 2x2 pixels, so look 2 px in).
        for ring_boxes, colour, other in ((pred_boxes[n], PREDICTION_RGB, GROUND_TRUTH_RGB), (gt_boxes[n], GROUND_TRUTH_RGB, PREDICTION_RGB)):
            for box in ring_boxes:
                c1, r1 = math.floor(box[0]), math.floor(box[1])
                r2 = math.ceil(box[3]) - 1
                rows = slice(r1 + lw + 2, r2 - lw - 1)
                if not pred_ring[rows, c1 + 1 : c1 + 3].all() and colour == PREDICTION_RGB:
                    continue
                if colour == GROUND_TRUTH_RGB and not gt_ring[rows, c1 + 1 : c1 + 3].all():
                    continue
                pixels = frame[rows, c1 + 1 : c1 + 3].reshape(-1, 3).astype(float)
                mean = pixels.mean(axis=0)
                assert np.abs(mean - colour).max() < 25, f"frame {n}: {mean} is not {colour}"
                assert np.linalg.norm(mean - colour) < np.linalg.norm(mean - other)


def test_video_elc_without_its_start_stops_at_the_end_time(source_video, tmp_path):
    timeline = Timeline.from_split((0, N_SRC - 1), 10, W, H, fps=10)  # frames 0, 4, 9, 13, 17, 22, ...
    # Track on sampled frames 2 and 7 (source 9 and 30); the event ends at key 44 = sampled
    # frame 4 = source frame 17: frames 18..30 of the track are past the end.
    elc = A.parse_answer(
        f"Ends in <TEMP-044>, the dog jumps. <TEMP-022>: {box_tokens(10, 20, 40, 70)}, <TEMP-078>: {box_tokens(50, 20, 80, 70)}",
        "elc", bins=RELEASE_BINS, timeline=timeline,
    )
    assert isinstance(elc, A.EventLocalization) and elc.span is None
    out = viz.write_annotated_video(source_video, elc, timeline, tmp_path / "elc.mp4", overlay=False, line_width=3)
    drawn = [n for n, f in enumerate(decode_all(out)) if (luma(f) > (luma(BG) + luma(PREDICTION_RGB)) / 2).any()]
    assert drawn == list(range(9, 18))


def test_video_overlay_writes_time_and_span_border(source_video, tmp_path):
    from llava_st.media import load_video

    clip = load_video(source_video, 10)
    timeline = Timeline(width=W, height=H, timestamps=tuple(clip.timestamps), frame_ids=tuple(int(i) for i in clip.indices))
    result = A.parse_answer("{<TEMP-022><TEMP-078>}", "tvg", bins=RELEASE_BINS, timeline=timeline)
    out = viz.write_annotated_video(source_video, result, timeline, tmp_path / "tvg.mp4", overlay=True)
    decoded = decode_all(out)
    assert len(decoded) == N_SRC
    span_luma = luma(SPAN_RGB)
    for n, frame in enumerate(decoded):
        bottom_row = luma(frame[H - 1, 10 : W - 10])
        inside = 9 <= n <= 30
        assert bool(np.all(np.abs(bottom_row - span_luma) < 20)) == inside, f"frame {n}"
        # Time label: white text on black in the top-left corner.
        assert luma(frame[2:14, 2:40]).max() > 150 and luma(frame[2:14, 2:40]).min() < 10


def test_video_of_a_parse_failure_and_odd_size(tmp_path):
    path = tmp_path / "odd.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=Fraction(5))
        stream.width, stream.height, stream.pix_fmt = 63, 47, "yuv420p"
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(np.full((47, 63, 3), BG, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    timeline = Timeline(width=63, height=47, frame_ids=(0, 1, 2, 3, 4, 5))
    failure = A.parse_answer("no idea", "stvg", bins=RELEASE_BINS, timeline=timeline)
    written = viz.write_annotated_video(path, failure, timeline, tmp_path / "failure.mp4")
    decoded = decode_all(written)
    assert len(decoded) == 6 and decoded[0].shape == (48, 64, 3)  # padded to even for 4:2:0
    assert all(luma(f[2:12, 2:60]).max() > 150 for f in decoded)  # the reason is written on each frame


def test_video_bad_inputs(source_video, tmp_path):
    from llava_st.media import MediaNotFoundError

    timeline = Timeline.from_split((0, N_SRC - 1), 10, W, H, fps=10)
    result = stvg(timeline=timeline)
    with pytest.raises(ValueError, match=r"out_path .*\.avi"):
        viz.write_annotated_video(source_video, result, timeline, tmp_path / "out.avi")
    with pytest.raises(FileNotFoundError, match="out_path"):
        viz.write_annotated_video(source_video, result, timeline, tmp_path / "nowhere" / "out.mp4")
    with pytest.raises(MediaNotFoundError, match="missing.mp4"):
        viz.write_annotated_video(tmp_path / "missing.mp4", result, timeline, tmp_path / "out.mp4")
    with pytest.raises(TypeError, match="timeline must be"):
        viz.write_annotated_video(source_video, result, None, tmp_path / "out.mp4")
    wrong_size = Timeline.from_split((0, N_SRC - 1), 10, W * 2, H * 2, fps=10)
    with pytest.raises(ValueError, match="timeline is for 128x96 frames"):
        viz.write_annotated_video(source_video, stvg(timeline=wrong_size), wrong_size, tmp_path / "out.mp4")
    too_long = Timeline.from_split((0, 99), 10, W, H, fps=10)
    with pytest.raises(ValueError, match="timeline names frames 0..99"):
        viz.write_annotated_video(source_video, stvg(timeline=too_long), too_long, tmp_path / "out.mp4")
    rec = A.parse_answer(box_tokens(1, 1, 50, 50), "rec", bins=RELEASE_BINS)
    with pytest.raises(ValueError, match="Grounding: its boxes belong to no time"):
        viz.write_annotated_video(source_video, rec, timeline, tmp_path / "out.mp4")
    for bad_fps in (0, -5, float("nan"), "10"):
        with pytest.raises(ValueError, match="fps"):
            viz.write_annotated_video(source_video, result, timeline, tmp_path / "out.mp4", fps=bad_fps)
    with pytest.raises(ValueError, match="crf"):
        viz.write_annotated_video(source_video, result, timeline, tmp_path / "out.mp4", crf=99)
    assert not any(tmp_path.glob("*.mp4"))  # nothing half-written


def test_video_output_rate_follows_fps(source_video, tmp_path):
    timeline = Timeline.from_split((0, N_SRC - 1), 10, W, H, fps=10)
    result = stvg(timeline=timeline)
    out = viz.write_annotated_video(source_video, result, timeline, tmp_path / "fast.mp4", fps=25)
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert stream.average_rate == 25
        assert len([f for f in c.decode(stream)]) == N_SRC


def test_importing_viz_needs_neither_matplotlib_nor_pyav():
    import subprocess
    import sys

    code = "import sys, llava_st.viz; print(sorted(m for m in ('matplotlib', 'av') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
