"""``llava-st ask`` as a shell user runs it: output, JSON schema, pictures, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_tiny_model_dir, write_test_video
from llava_st.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    image = d / "photo.png"
    Image.fromarray(np.full((40, 80, 3), 90, dtype=np.uint8)).save(image)
    return {"video": write_test_video(d / "clip.mp4"), "image": image, "dir": d}


def _ask(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["ask", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_output_follows_the_schema(tiny_model_dir, files, capsys) -> None:
    code, out, err = _ask(capsys, "--model", str(tiny_model_dir), "--video", str(files["video"]), "--task", "tvg",
                          "--max-new-tokens", "12", "--json", "When does it get bright?")
    assert code == 0, err
    data = json.loads(out)
    assert data["task"] == "tvg" and data["question"] == "When does it get bright?"
    assert isinstance(data["answer"], str) and 1 <= data["num_tokens"] <= 12
    media = data["media"]
    assert media["kind"] == "video" and media["width"] == 64 and media["height"] == 48
    assert len(media["timestamps"]) == len(media["frame_ids"]) == 12
    for key in ("spans", "boxes", "track", "events", "failures"):
        assert isinstance(data[key], list)
    assert data["result"]["type"] == "TemporalGrounding" and len(data["spans"]) == 1  # decoded under tvg's grammar
    assert "loading model" in err and "answered in" in err
    code, out, err = _ask(capsys, "--model", str(tiny_model_dir), "--video", str(files["video"]), "--frames", "7",
                          "--max-new-tokens", "2", "--json", "--quiet", "What?")
    assert code == 0, err
    assert len(json.loads(out)["media"]["frame_ids"]) == 7


def test_frames_default_to_the_model_s_own_count(files, tmp_path_factory, capsys) -> None:
    model = make_tiny_model_dir(tmp_path_factory.mktemp("ten-frames"), num_frames=10)
    code, out, err = _ask(capsys, "--model", str(model), "--video", str(files["video"]), "--max-new-tokens", "1",
                          "--json", "What?")
    assert code == 0, err
    assert len(json.loads(out)["media"]["frame_ids"]) == 10 and "reading 10 frames of" in err
    code, out, err = _ask(capsys, "--model", str(model), "--video", str(files["video"]), "--frames", "7",
                          "--max-new-tokens", "1", "--json", "--quiet", "What?")
    assert code == 0, err
    assert len(json.loads(out)["media"]["frame_ids"]) == 7
    with pytest.raises(SystemExit) as exc:
        main(["ask", "--model", str(model), "--video", str(files["video"]), "--frames", "0", "What?"])
    assert exc.value.code == 2


def test_a_ppm_image(tiny_model_dir, files, capsys) -> None:
    ppm = files["dir"] / "photo.ppm"
    Image.fromarray(np.full((20, 30, 3), 60, dtype=np.uint8)).save(ppm)
    code, out, err = _ask(capsys, "--model", str(tiny_model_dir), "--image", str(ppm), "--max-new-tokens", "1",
                          "--json", "--quiet", "What?")
    assert code == 0, err
    assert json.loads(out)["media"] | {"frame_ids": None} == {"kind": "image", "source": str(ppm), "width": 30,
                                                              "height": 20, "frame_ids": None, "timestamps": [0.0]}


def test_a_task_answer_is_decoded_under_its_grammar(tiny_model_dir, files, capsys) -> None:
    """A random-weight model never writes a box by itself; with --task rec it must."""
    code, out, err = _ask(capsys, "--model", str(tiny_model_dir), "--image", str(files["image"]), "--task", "rec",
                          "--json", "--quiet", "Where is it?")
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] and data["result"]["type"] == "Grounding" and len(data["boxes"]) == 1
    code, out, err = _ask(capsys, "--model", str(tiny_model_dir), "--image", str(files["image"]), "--task", "rec",
                          "--unconstrained", "--max-new-tokens", "6", "--json", "--quiet", "Where is it?")
    assert code == 0, err
    assert json.loads(out)["result"]["type"] == "ParseFailure"


def test_text_output_and_picture(tiny_model_dir, files, capsys) -> None:
    out_png = files["dir"] / "answer.png"
    code, out, err = _ask(capsys, "--model", str(tiny_model_dir), "--image", str(files["image"]), "--task", "rec",
                          "--max-new-tokens", "12", "--viz", str(out_png), "--quiet", "Where is it?")
    assert code == 0, err
    assert out.strip() and err == ""
    assert out_png.is_file() and Image.open(out_png).size[0] > 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["--video", "missing.mp4", "q"], "media file not found"),
        (["--image", "{image}", "   "], "question is empty"),
        (["--image", "{image}", "--start", "1", "--end", "2", "q"], "apply to --video only"),
        (["--video", "{video}", "--start", "1", "q"], "give both --start and --end"),
        (["--video", "{video}", "--start", "1", "--end", "99", "q"], "outside"),
        (["--image", "{bad}", "q"], "bad.png"),
        (["--image", "{image}", "--task", "rec", "--temperature", "0", "--sample", "q"], "temperature"),
        (["--image", "{image}", "--unconstrained", "q"], "applies with --task only"),
    ],
)
def test_bad_input_exits_2_with_a_message(tiny_model_dir, files, capsys, args, message) -> None:
    bad = files["dir"] / "bad.png"
    bad.write_bytes(b"not an image")
    args = [a.format(image=files["image"], video=files["video"], bad=bad) for a in args]
    code, out, err = _ask(capsys, "--model", str(tiny_model_dir), "--quiet", *args)
    assert code == 2 and out == ""
    assert message in err and err.startswith("llava-st ask:")


def test_missing_model_and_usage_errors(files, capsys) -> None:
    code, _, err = _ask(capsys, "--model", str(files["dir"] / "nomodel"), "--image", str(files["image"]), "q")
    assert code == 2 and "registered model name" in err
    with pytest.raises(SystemExit) as exc:
        main(["ask", "--model", str(files["dir"]), "q"])  # no --video or --image
    assert exc.value.code == 2


def test_console_script_runs(tiny_model_dir, files) -> None:
    proc = subprocess.run([sys.executable, "-m", "llava_st", "ask", "--model", str(tiny_model_dir), "--image",
                           str(files["image"]), "--max-new-tokens", "2", "--json", "--quiet", "What?"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["media"]["kind"] == "image"
    proc = subprocess.run([sys.executable, "-m", "llava_st"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "ask" in proc.stdout
