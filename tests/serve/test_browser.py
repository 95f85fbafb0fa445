"""The web page in a real browser: headless Chromium (Debian's package) driven by Playwright.

The page is served on 127.0.0.1; the test uploads the sample video (the one
shipped with the package, or one ST-Synth renders when there is none), asks a
tracking question and waits for the answer text and the frames with the
boxes. The model is the tiny random model whose generation is replaced by a
fixed tracking answer, so that there are boxes to see. The screenshot is kept
in tests/artefacts/ (git-ignored; its path is printed).

Chromium: ``$LLAVA_ST_CHROMIUM``, else ``chromium`` on the PATH (``.ci/run``
installs Debian's ``chromium``). Without Chromium or Playwright the test is
skipped on a developer's machine and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest
import torch

from serve_helpers import ARTEFACTS

pytestmark = pytest.mark.slow

TRACK_TEXT = ("{<TEMP-010><TEMP-070>} <TEMP-010>: [<WIDTH-010><HEIGHT-020><WIDTH-045><HEIGHT-060>], "
              "<TEMP-040>: [<WIDTH-030><HEIGHT-025><WIDTH-065><HEIGHT-065>], "
              "<TEMP-070>: [<WIDTH-050><HEIGHT-030><WIDTH-085><HEIGHT-070>]")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _require(what: str, found):
    if found:
        return found
    message = f"{what} is not installed (.ci/run installs it: apt-get install chromium; pip install -e '.[dev]')"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


def _chromium() -> str:
    env = os.environ.get("LLAVA_ST_CHROMIUM")
    return _require("Chromium", env or shutil.which("chromium") or shutil.which("chromium-browser"))


class ScriptedGeneration:
    """Stands in for ``model.generate``: says :data:`TRACK_TEXT` and records the prompts it got."""

    def __init__(self, st):
        tok = st.processor.tokenizer
        self.eos = st.config.token_ids.eos
        self.ids = tok.encode(TRACK_TEXT, add_special_tokens=False) + [self.eos]
        self.prompts: list[str] = []
        self.tok = tok

    def __call__(self, input_ids, **kwargs):
        from llava_st.model.generate import GenerationOutput

        n = input_ids.shape[0]
        self.prompts += [self.tok.decode(row) for row in input_ids]
        return GenerationOutput(sequences=torch.tensor([self.ids] * n), lengths=torch.tensor([len(self.ids)] * n),
                                stopped=torch.ones(n, dtype=torch.bool))


def test_upload_the_sample_and_track_in_a_real_browser(tiny_model_dir, tmp_path) -> None:
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require("Playwright", None)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from llava_st.infer import LlavaST
    from llava_st.serve.loadgen import free_port
    from llava_st.serve.samples import find_samples
    from llava_st.serve.ui import build_ui, launch

    st = LlavaST.from_pretrained(tiny_model_dir)
    scripted = ScriptedGeneration(st)
    st.model.generate = scripted
    samples = find_samples(tmp_path / "samples")  # the package's sample clip, or one ST-Synth renders
    video = next(s for s in samples if s.kind == "video")
    page = build_ui(st, samples, tmp_path / "answers", default_max_new_tokens=32)
    url = launch(page, "127.0.0.1", free_port(), tmp_path)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / "ui_track.png"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            try:
                tab = browser.new_page(viewport={"width": 1400, "height": 1500})
                tab.goto(url, wait_until="domcontentloaded")
                tab.wait_for_selector("#ask", timeout=60_000)
                tab.set_input_files("#media-upload input[type=file]", str(video.path))
                # uploaded: the box lists the file (Gradio writes its stem and extension apart)
                tab.wait_for_function(r"name => document.querySelector('#media-upload').textContent"
                                      r".replace(/\s+/g, '').includes(name)",
                                      arg=video.path.name, timeout=60_000, polling=200)
                tab.get_by_label("track", exact=True).check()
                query = tab.locator("#text textarea")
                query.fill(video.hints["query"])
                deadline = time.monotonic() + 10  # the task's hint may rewrite the box once after the click
                while query.input_value() != video.hints["query"] and time.monotonic() < deadline:
                    time.sleep(0.1)
                    query.fill(video.hints["query"])
                tab.click("#ask")
                tab.wait_for_function(
                    "() => { const t = document.querySelector('#answer-text textarea'); return t && t.value.includes('track') }",
                    timeout=120_000, polling=200,
                )
                answer = tab.locator("#answer-text textarea").input_value()
                tab.wait_for_function(
                    "() => { const i = document.querySelector('#frames img'); return i && i.complete && i.naturalWidth > 0 }",
                    timeout=60_000, polling=200,
                )
                tab.wait_for_selector("#annotated-video video", timeout=60_000)
                tab.screenshot(path=str(shot), full_page=True)
            except Exception:
                tab.screenshot(path=str(ARTEFACTS / "ui_track_failure.png"), full_page=True)
                print("upload box:", tab.evaluate("() => [...document.querySelectorAll('#media-upload')]"
                                                  ".map(e => [e.innerText, e.textContent])"))
                print(f"\nscreenshot of the failure: {ARTEFACTS / 'ui_track_failure.png'}")
                raise
            finally:
                browser.close()
    finally:
        page.close()
    print(f"\nscreenshot of the page: {shot}")
    assert TRACK_TEXT.split(" ")[0] in answer  # the answer text, bin tokens kept
    assert answer.count("  track ") == 3 and " px" in answer  # the track read in seconds and pixels
    assert any("When and where does this happen: " + video.hints["query"] in p for p in scripted.prompts)
    assert shot.stat().st_size > 10_000
