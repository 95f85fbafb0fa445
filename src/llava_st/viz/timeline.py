"""The timeline: an answer's spans, events, end time and track keys on a time axis (matplotlib).

One horizontal lane per thing drawn, prediction lanes above ground-truth
lanes:

* a span (TVG, STVG, ELC with its start) is a bar from start to end;
* DVC events get one lane each, the caption written over the bar;
* an ELC end time is a vertical mark, the event caption beside it;
* a track (STVG, SVG, ELC) is a lane of ``|`` ticks, one per track key, at
  the time of the sampled frame the key names.

The axis is in seconds when the timeline has timestamps (or, without a
timeline, when every time in the answers carries seconds), otherwise in
normalised time (0 = first sampled frame, 1 = last). Artists carry ids
(``Artist.get_gid()``) so they can be found: ``prediction-span-{j}``,
``ground_truth-span-{j}``, ``prediction-end``, ``prediction-track``, ...

matplotlib is imported lazily through :func:`llava_st._optional.require`;
figures are built with ``matplotlib.figure.Figure`` (no pyplot state), so
they render with the non-interactive Agg canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.timebase import Timeline, nearest_sampled_frame
from .._optional import require
from . import draw as D
from .marks import Marks, check_ground_truth, check_result, check_timeline, read_marks

_CAPTION_CHARS = 90


def _rgb(color) -> tuple[float, float, float]:
    return tuple(c / 255.0 for c in color)  # type: ignore[return-value]


@dataclass(frozen=True)
class Clock:
    """Places normalised times on the axis: seconds (``seconds=True``) or normalised.

    With a timeline with timestamps, seconds are the timeline's
    (:meth:`llava_st.protocol.answers.Timeline.to_seconds`; a track key's tick is at
    its sampled frame's timestamp); without a timeline, the seconds the
    answers carry.
    """

    seconds: bool
    timeline: Timeline | None = None

    @property
    def label(self) -> str:
        return "time (s)" if self.seconds else "time (normalised: 0 = first sampled frame, 1 = last)"

    def point(self, t: float, seconds: float | None = None) -> float:
        if not self.seconds:
            return float(t)
        if self.timeline is not None:
            return float(self.timeline.to_seconds(t))
        return float(seconds)  # type: ignore[arg-type]

    def key(self, t: float, seconds: float | None = None) -> float:
        """Time of a track key: its sampled frame's time."""
        if self.seconds and self.timeline is not None:
            return self.timeline.frame_seconds(nearest_sampled_frame(t, self.timeline.num_frames))
        return self.point(t, seconds)

    def limits(self, marks: list[Marks]) -> tuple[float, float]:
        if not self.seconds:
            return (0.0, 1.0)
        if self.timeline is not None:
            ts = self.timeline.timestamps
            return (float(ts[0]), float(ts[-1]))  # type: ignore[index]
        values = [0.0]
        for m in marks:
            values += [v for s in m.spans for v in (s.start_s, s.end_s)]
            values += [v for v in m.track_seconds] + ([m.end_s] if m.end is not None else [])
        return (min(values), max(values))


def make_clock(timeline: Timeline | None, marks: list[Marks]) -> Clock:
    """Seconds when the timeline has timestamps, or without a timeline when every time carries seconds."""
    if timeline is not None:
        return Clock(timeline.timestamps is not None, timeline)
    have = []
    for m in marks:
        have += [s.start_s is not None and s.end_s is not None for s in m.spans]
        have += [v is not None for v in m.track_seconds]
        if m.end is not None:
            have.append(m.end_s is not None)
    return Clock(bool(have) and all(have))


def _short(text: str) -> str:
    return text if len(text) <= _CAPTION_CHARS else text[: _CAPTION_CHARS - 3] + "..."


def _lanes(marks: Marks, who: str) -> list[tuple[str, str, object]]:
    """``(lane label, kind, payload)`` for one answer; kinds: span, end, track, note."""
    name = "prediction" if who == "prediction" else "ground truth"
    lanes: list[tuple[str, str, object]] = []
    if marks.failure is not None:
        lanes.append((name, "note", f"could not read the answer: {marks.failure}"))
        return lanes
    if marks.task == "dvc":
        for j, s in enumerate(marks.spans):
            lanes.append((f"{name} event {j + 1}", "span", (j, s)))
    else:
        for j, s in enumerate(marks.spans):
            lanes.append((name, "span", (j, s)))
    if marks.end is not None:
        if marks.spans:
            lanes[-1] = (lanes[-1][0], "span+end", lanes[-1][2])
        else:
            lanes.append((name, "end", None))
    if marks.track:
        lanes.append((f"{name} track ({len(marks.track_times)} keys)", "track", None))
    if not lanes:
        lanes.append((name, "note", "no times in this answer"))
    return lanes


def draw_timeline(ax, result, timeline: Timeline | None = None, ground_truth=None) -> None:
    """Draw the timeline of ``result`` (and ``ground_truth``) into matplotlib axes ``ax``."""
    check_result(result)
    check_timeline(timeline, None, None, None)
    check_ground_truth(result, ground_truth)
    pred = read_marks(result, name="result")
    gt = read_marks(ground_truth, name="ground_truth") if ground_truth is not None else None
    answers = [("prediction", pred, D.PREDICTION_RGB)] + ([("ground_truth", gt, D.GROUND_TRUTH_RGB)] if gt else [])
    clock = make_clock(timeline, [m for _, m, _ in answers])
    lo, hi = clock.limits([m for _, m, _ in answers])
    width = hi - lo if hi > lo else 1.0

    rows = [(who, m, rgb, lane) for who, m, rgb in answers for lane in _lanes(m, who)]
    n = len(rows)
    labels = []
    for r, (who, m, rgb, (label, kind, payload)) in enumerate(rows):
        y = n - 1 - r  # first lane on top
        labels.append((y, label))
        color = _rgb(rgb)
        if kind in ("span", "span+end"):
            j, s = payload
            a = clock.point(s.start, s.start_s)
            b = clock.point(s.end, s.end_s)
            bars = ax.barh(y, b - a, left=a, height=0.5, color=color, alpha=0.75, edgecolor=color, linewidth=1.5)
            bars.patches[0].set_gid(f"{who}-span-{j}")
            if s.caption:
                ax.text(a, y + 0.3, _short(s.caption), fontsize=8, va="bottom", ha="left", clip_on=True)
        if kind in ("end", "span+end"):
            e = clock.point(m.end, m.end_s)
            (line,) = ax.plot([e, e], [y - 0.35, y + 0.35], color=color, linewidth=3)
            line.set_gid(f"{who}-end")
            ax.text(e + 0.01 * width, y + 0.3, _short(f"ends: {m.text}"), fontsize=8, va="bottom", ha="left", clip_on=True)
        if kind == "track":
            xs = [clock.key(t, sec) for t, sec in zip(m.track_times, m.track_seconds)]
            (ticks,) = ax.plot(xs, [y] * len(xs), linestyle="none", marker="|", markersize=14, markeredgewidth=2, color=color)
            ticks.set_gid(f"{who}-track")
        if kind == "note":
            note = ax.text(lo + 0.01 * width, y, _short(str(payload)), fontsize=9, va="center", ha="left",
                           color=_rgb(D.FAILURE_RGB) if m.failure else "black")
            note.set_gid(f"{who}-note")
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_yticks([y for y, _ in labels], [label for _, label in labels])
    ax.set_xlim(lo - 0.02 * width, hi + 0.02 * width)
    ax.set_xlabel(clock.label)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


def count_lanes(result, ground_truth=None) -> int:
    """How many lanes :func:`draw_timeline` draws (for sizing a figure)."""
    n = len(_lanes(read_marks(result, name="result"), "prediction"))
    if ground_truth is not None:
        n += len(_lanes(read_marks(ground_truth, name="ground_truth"), "ground_truth"))
    return n


def timeline_figure(result, timeline: Timeline | None = None, ground_truth=None):
    """A matplotlib ``Figure`` with the timeline of ``result`` (and ``ground_truth``, an answer of the same kind).

    The axis is in seconds through ``timeline`` (normalised time when it has
    no timestamps); see the module docstring for what is drawn. A
    ``ParseFailure`` gives a figure with the reason written in its lane.
    """
    require("matplotlib")
    from matplotlib.figure import Figure

    check_result(result)
    check_ground_truth(result, ground_truth)
    lanes = count_lanes(result, ground_truth)
    fig = Figure(figsize=(10, 1.2 + 0.55 * lanes), layout="constrained")
    ax = fig.add_subplot()
    draw_timeline(ax, result, timeline, ground_truth)
    return fig


__all__ = ["Clock", "count_lanes", "draw_timeline", "make_clock", "timeline_figure"]
