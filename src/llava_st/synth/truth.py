"""Ground truth read from the renderer: event spans that agree with what is drawn.

The spans of ``appear``, ``disappear``, ``enter`` and ``leave`` are defined by
visibility, so they are read from the rendered boxes (an object occluded at
the planned start appears when it is first seen):

* appear: first visible frame at or after the growth starts .. full size;
* disappear: shrinking starts .. last visible frame;
* enter: first visible frame .. first frame wholly inside the frame;
* leave: last frame wholly inside the frame .. last visible frame.

The other kinds keep their planned spans, which the object's state defines
exactly. Every event must then pass the checks of :func:`check_event`; a
scene with a failing event is drawn again (:class:`~llava_st.synth.sampler.SceneError`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .render import Raster
from .sampler import SceneError
from .scene import Scene, SceneEvent
from ..protocol.timebase import sample_frame_indices
from .timeline import min_event_frames, sampled_span


def _visibility_span(event: SceneEvent, visible: np.ndarray, inside: np.ndarray) -> tuple[int, int] | None:
    if event.kind == "appear":
        seen = np.flatnonzero(visible[event.start : event.end + 1])
        return (event.start + int(seen[0]), event.end) if seen.size else None
    if event.kind == "disappear":
        seen = np.flatnonzero(visible[event.start : event.end + 1])
        return (event.start, event.start + int(seen[-1])) if seen.size else None
    if event.kind == "enter":
        seen = np.flatnonzero(visible)
        if not seen.size:
            return None
        start = int(seen[0])
        whole = np.flatnonzero(inside[start:])
        return (start, start + int(whole[0])) if whole.size else None
    if event.kind == "leave":
        seen = np.flatnonzero(visible)
        if not seen.size:
            return None
        end = int(seen[-1])
        whole = np.flatnonzero(inside[: end + 1])
        return (int(whole[-1]), end) if whole.size else None
    return event.start, event.end


def check_event(event: SceneEvent, visible: np.ndarray, num_samples: int) -> str | None:
    """Why the event is unusable, or None when it is fine.

    Requirements: at least :func:`~llava_st.synth.timeline.min_event_frames`
    frames long; three sampled frames of the whole video inside it; the object
    visible on its first and last frame; for appear/enter, invisible on the
    frame before; for disappear/leave, invisible on the frame after.
    """
    F = visible.shape[0]
    s, e = event.start, event.end
    if not 0 <= s < e <= F - 1:
        return f"span [{s}, {e}] is empty or outside the video"
    if e - s + 1 < min_event_frames(F, num_samples):
        return f"span [{s}, {e}] is shorter than {min_event_frames(F, num_samples)} frames"
    span = sampled_span(sample_frame_indices(0, F - 1, num_samples).tolist(), s, e)
    if span is None or span[1] - span[0] < 2:
        return f"span [{s}, {e}] covers fewer than three sampled frames"
    if not (visible[s] and visible[e]):
        return f"the object is not visible on the first and last frame of [{s}, {e}]"
    if event.kind in ("appear", "enter") and (s == 0 or visible[s - 1]):
        return f"the object is already visible before its {event.kind} span starts"
    if event.kind in ("disappear", "leave") and (e == F - 1 or visible[e + 1]):
        return f"the object is still visible after its {event.kind} span ends"
    return None


def finalise_events(scene: Scene, raster: Raster, num_samples: int) -> list[SceneEvent]:
    """The scene's events with spans read from the pixels, all checked.

    Raises:
        SceneError: an event fails :func:`check_event` (the caller draws a new scene).
    """
    out = []
    for event in scene.events:
        visible = raster.visible(event.object)
        span = _visibility_span(event, visible, raster.inside[event.object])
        if span is None:
            raise SceneError(f"{event.kind} event of object {event.object} is never seen")
        final = replace(event, start=span[0], end=span[1])
        problem = check_event(final, visible, num_samples)
        if problem:
            raise SceneError(f"{event.kind} event of object {event.object}: {problem}")
        out.append(final)
    return out
