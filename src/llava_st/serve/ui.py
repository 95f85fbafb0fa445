"""The web page: upload a clip or pick a sample, pick a task, see the answer, its boxes and timeline.

:func:`build_ui` makes the Gradio page around one
:class:`~llava_st.infer.LlavaST`; :func:`ask_page` is what its button does,
without Gradio: it identifies the media by decoding them and checks them
against the server's :class:`~.settings.Limits` (:mod:`.intake`), runs the
task helper of the chosen task (:data:`PAGE_TASKS`) and returns the answer,
which :func:`~.views.answer_views` draws. Errors about the input are shown
on the page with the library's message.

Tasks on the page: a free question (``LlavaST.ask``), ground in time
(``ground_time``), track (``track``), refer (``refer``, images) and caption
an event (``caption_event``: a start in seconds and a box in pixels of the
object).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import LlavaSTError
from ..infer.answer import Answer
from ..media.load import load_media
from .errors import Unprocessable
from .intake import check_limits, detect
from .params import read_numbers
from .samples import Sample
from .settings import Limits

#: page label -> (task helper of LlavaST, label of the text box, whether start/box are used)
PAGE_TASKS: dict[str, tuple[str, str, bool]] = {
    "free question": ("ask", "Question", False),
    "ground in time": ("ground_time", "What happens (a query)", False),
    "track": ("track", "What to track (a query)", False),
    "refer": ("refer", "What to find in the image (an expression)", False),
    "caption an event": ("caption_event", "(not used)", True),
}
_HINT = {"free question": "question", "ground in time": "query", "track": "query", "refer": "expression"}
KEEP_ANSWERS = 16  # answer folders kept for the page to serve (older ones are removed)


def ask_page(model: Any, media: str | Path, task: str, text: str = "", start: float | None = None,
             box: str = "", max_new_tokens: int = 256, limits: Limits | None = None) -> Answer:
    """Answer the page's request: ``task`` is a label of :data:`PAGE_TASKS`, ``text`` the question
    or query, ``start`` (seconds) and ``box`` (``"x1, y1, x2, y2"`` pixels) for captioning an event."""
    limits = limits or Limits()
    if task not in PAGE_TASKS:
        raise Unprocessable(f"unknown task {task!r}; choose one of {list(PAGE_TASKS)}")
    helper, _, needs_box = PAGE_TASKS[task]
    path = Path(media)
    probe = detect(path)
    check_limits(probe, limits)
    loaded = load_media(path, model.num_frames if probe.kind == "video" else 1, kind=probe.kind)
    generation = {"max_new_tokens": int(max_new_tokens)}
    if needs_box:
        if start is None:
            raise Unprocessable("caption an event needs a start time (seconds)")
        return model.caption_event(loaded, float(start), read_numbers("box", box, True, 4), **generation)
    if not text or not text.strip():
        raise Unprocessable(f"{task} needs a {_HINT[task]}")
    if helper == "ask":
        return model.ask(loaded, text, **generation)
    return getattr(model, helper)(loaded, text, **generation)


def _fresh_folder(root: Path) -> Path:
    """A new answer folder under ``root``, removing all but the newest :data:`KEEP_ANSWERS`."""
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in folders[: max(0, len(folders) - KEEP_ANSWERS + 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"answer-{time.time_ns()}-", dir=root))


def build_ui(model: Any, samples: list[Sample], work_dir: Path, *, limits: Limits | None = None,
             default_max_new_tokens: int = 256, title: str = "LLaVA-ST"):
    """The Gradio page (a ``gradio.Blocks``) answering with ``model``; pictures go under ``work_dir``."""
    import gradio as gr

    from .views import answer_views

    limits = limits or Limits()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    by_name = {s.name: s for s in samples}
    first = samples[0] if samples else None

    def hints(sample_name: str | None, task: str):
        s = by_name.get(sample_name or "")
        h = s.hints if s else {}
        label = PAGE_TASKS.get(task, PAGE_TASKS["free question"])[1]
        text = h.get(_HINT.get(task, "question"), "")
        start = float(h["start"]) if "start" in h else None
        return gr.update(value=text, label=label), gr.update(value=start), gr.update(value=h.get("box", ""))

    def run(sample_name, upload, task, text, start, box, max_new_tokens):
        media = upload or (by_name[sample_name].path if sample_name in by_name else None)
        if media is None:
            raise gr.Error("upload a video or an image, or pick a sample")
        try:
            answer = ask_page(model, media, task, text, start, box, max_new_tokens, limits)
            views = answer_views(answer, _fresh_folder(work_dir))
        except LlavaSTError as exc:
            raise gr.Error(str(exc)) from None
        video = str(views.video) if views.video is not None else None
        return views.text, views.frames, views.timeline, video, views.json

    with gr.Blocks(title=title, delete_cache=(600, 3600)) as page:
        gr.Markdown(f"# {title}\nAsk when and where things happen in a video or an image. Times are seconds on "
                    "the video's clock; boxes are `x1, y1, x2, y2` pixels of the frame.")
        with gr.Row():
            with gr.Column():
                sample = gr.Dropdown(choices=list(by_name), value=first.name if first else None, label="Sample",
                                     elem_id="sample")
                upload = gr.File(label="...or upload a video or an image (it replaces the sample)", type="filepath",
                                 elem_id="media-upload")
                task = gr.Radio(choices=list(PAGE_TASKS), value="track", label="Task", elem_id="task")
                init_text, init_start, init_box = (first.hints.get("query", "") if first else ""), None, ""
                if first and "start" in first.hints:
                    init_start = float(first.hints["start"])
                if first:
                    init_box = first.hints.get("box", "")
                text = gr.Textbox(label=PAGE_TASKS["track"][1], value=init_text, elem_id="text")
                with gr.Row():
                    start = gr.Number(label="Start (s), to caption an event", value=init_start, elem_id="start")
                    box = gr.Textbox(label="Box x1, y1, x2, y2 (pixels), to caption an event", value=init_box,
                                     elem_id="box")
                max_new = gr.Slider(1, min(1024, limits.max_new_tokens), value=default_max_new_tokens, step=1,
                                    label="Most tokens to generate", elem_id="max-new-tokens")
                button = gr.Button("Ask", variant="primary", elem_id="ask")
            with gr.Column():
                answer_text = gr.Textbox(label="Answer", lines=8, elem_id="answer-text")
                frames = gr.Image(label="Frames with boxes", type="numpy", elem_id="frames", format="png")
                timeline = gr.Image(label="Timeline", type="numpy", elem_id="timeline", format="png")
                video = gr.Video(label="Annotated video", elem_id="annotated-video", height=360)
                with gr.Accordion("JSON (the schema of llava-st ask --json)", open=False):
                    as_json = gr.JSON(elem_id="answer-json")
        sample.change(hints, [sample, task], [text, start, box])
        task.change(hints, [sample, task], [text, start, box])
        button.click(run, [sample, upload, task, text, start, box, max_new],
                     [answer_text, frames, timeline, video, as_json], concurrency_limit=1)
    return page


def launch(page, host: str, port: int, work_dir: Path, limits: Limits | None = None, *, block: bool = False) -> str:
    """Serve ``page`` on ``host:port`` and return its address; ``block=False`` returns at once
    (close it with ``page.close()``). Fonts are the system's: nothing is fetched from outside."""
    import gradio as gr

    limits = limits or Limits()
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])
    page.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=not block, share=False,
                ssr_mode=False, allowed_paths=[str(work_dir)], max_file_size=limits.max_upload_bytes, theme=theme,
                show_error=True)
    return f"http://{host}:{port}/"


__all__ = ["KEEP_ANSWERS", "PAGE_TASKS", "ask_page", "build_ui", "launch"]
