"""Pictures of answers: frame grids, timelines, whole figures and annotated videos.

Public API (what ``Answer.plot()`` / ``Answer.save()`` and ``llava-st ask --viz`` call):

* :func:`frame_grid` -> uint8 RGB image: sampled frames with boxes and span marks;
* :func:`timeline_figure` -> matplotlib Figure: spans, events and track keys on a time axis;
* :func:`figure` -> matplotlib Figure: the grid above the timeline;
* :func:`save_picture` writes that figure (format by extension);
* :func:`write_annotated_video` -> H.264 video with the track drawn on every frame.

Conventions: answer times are normalised to the sampled clip (0 = first
sampled frame, 1 = last) and shown in seconds through a
:class:`llava_st.protocol.answers.Timeline`; boxes are ``xyxy``, drawn at their pixel
coordinates (normalised times the frame size). Colours:
:data:`PREDICTION_RGB` for predictions, :data:`GROUND_TRUTH_RGB` for ground
truth, :data:`SPAN_RGB` marks frames inside a predicted span.

Modules: ``draw`` (uint8 drawing, colours), ``marks`` (answer -> what to
draw), ``grid``, ``timeline``, ``figure``, ``video``. matplotlib and PyAV
are imported only when a picture or video is made (extra ``viz``).
"""

from .draw import GROUND_TRUTH_RGB, PREDICTION_RGB, SPAN_RGB, box_edges, draw_box
from .figure import figure, save_picture
from .grid import choose_frames, frame_grid
from .timeline import timeline_figure
from .video import interpolate_track, write_annotated_video

__all__ = [
    "GROUND_TRUTH_RGB",
    "PREDICTION_RGB",
    "SPAN_RGB",
    "box_edges",
    "choose_frames",
    "draw_box",
    "figure",
    "frame_grid",
    "interpolate_track",
    "save_picture",
    "timeline_figure",
    "write_annotated_video",
]
