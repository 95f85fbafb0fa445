"""The REST API through FastAPI's test client: every route, every limit, every bad input.

Answers are compared with the library's own (``LlavaST.ask`` and the task
helpers) and with ``llava-st ask --json``; every client checks on closing
that no temporary upload file is left (tests/serve/conftest.py).
"""

from __future__ import annotations

import json
import os

import pytest

from llava_st.infer import Request
from llava_st.serve.app import FORM_OVERHEAD
from serve_helpers import error_of, upload

TOKENS = 6
TASK_TOKENS = 64  # enough for every task's shortest constrained answer on the tiny model (12 frames)


def _without_source(answer: dict) -> dict:
    """The answer as JSON carries it (tuples become lists), its media's source left out."""
    answer = json.loads(json.dumps(answer))
    return {**answer, "media": {**answer["media"], "source": None}}


# ----------------------------------------------------------------- routes


def test_health_model_and_docs(make_client, st) -> None:
    with make_client() as client:
        health = client.get("/v1/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert health.json()["queued"] == 0
        info = client.get("/v1/model").json()
        assert info["num_frames"] == st.num_frames == 12
        assert info["image_size"] == st.config.vision.image_size
        assert info["coordinate_bins"] == {"time": 100, "space": 100}
        assert set(info["tasks"]) == {"tvg", "stvg", "svg", "elc", "tr", "dvc", "rec", "reg", "dgc"}
        assert info["tasks"]["elc"]["arguments"] == ["start", "box"] and info["tasks"]["stvg"]["media"] == "video"
        assert "seconds" in info["conventions"]["times"] and "pixels" in info["conventions"]["boxes"]
        assert info["limits"]["max_queue"] == 64 and info["answer_schema_version"] == 1
        assert info["path_requests"] is False and info["api_key_required"] is False
        spec = client.get("/openapi.json").json()
        assert {"/v1/ask", "/v1/model", "/v1/health"} <= set(spec["paths"])
        body = spec["paths"]["/v1/ask"]["post"]["requestBody"]["content"]
        assert set(body) == {"application/json", "multipart/form-data"}
        assert "file" in body["multipart/form-data"]["schema"]["properties"]
        assert "path" in body["application/json"]["schema"]["properties"]
        assert {"200", "413", "429"} <= set(spec["paths"]["/v1/ask"]["post"]["responses"])
        docs = client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_unknown_route_and_method_answer_json(make_client) -> None:
    with make_client() as client:
        assert error_of(client.get("/v1/nothing"), 404)["code"] == "not_found"
        assert error_of(client.get("/v1/ask"), 405)["code"] == "method_not_allowed"


def test_path_request_answers_as_the_library_and_the_cli(make_client, st, media_root, capsys, tiny_model_dir) -> None:
    from llava_st.cli import main

    with make_client(media_root=media_root) as client:
        response = client.post("/v1/ask", json={"path": "clip.mp4", "question": "What happens?", "max_new_tokens": TOKENS})
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["media"]["source"] == "clip.mp4"  # as requested, not the server's path
    direct = st.ask(media_root / "clip.mp4", "What happens?", max_new_tokens=TOKENS).to_dict()
    assert _without_source(got) == _without_source(direct)
    code = main(["ask", "--model", str(tiny_model_dir), "--video", str(media_root / "clip.mp4"), "--json", "--quiet",
                 "--max-new-tokens", str(TOKENS), "What happens?"])
    assert code == 0
    assert _without_source(json.loads(capsys.readouterr().out)) == _without_source(got)


def test_upload_equals_the_path_request(make_client, media_root) -> None:
    with make_client(media_root=media_root) as client:
        by_path = client.post("/v1/ask", json={"path": "clip.mp4", "question": "What happens?", "task": "tvg"}).json()
        by_upload = upload(client, media_root / "clip.mp4", name="my clip.mp4", question="What happens?", task="tvg")
        assert by_upload.status_code == 200, by_upload.text
        assert by_upload.json()["media"]["source"] == "my clip.mp4"
        assert _without_source(by_upload.json()) == _without_source(by_path)
        assert by_path["task"] == "tvg" and by_path["result"]["type"] in ("TemporalGrounding", "ParseFailure")
        # a client's folders are not echoed
        named = upload(client, media_root / "photo.png", name="C:\\Users\\me\\photo.png", question="What?")
        assert named.json()["media"]["source"] == "photo.png"


def test_the_kind_is_decided_by_decoding_not_by_the_name(make_client, media_root) -> None:
    with make_client(media_root=media_root) as client:
        for name, kind in [("image_named.mp4", "image"), ("video_named.png", "video")]:
            by_path = client.post("/v1/ask", json={"path": name, "question": "What is it?"})
            assert by_path.status_code == 200, by_path.text
            assert by_path.json()["media"]["kind"] == kind
            by_upload = upload(client, media_root / name, name="upload.bin", question="What is it?")
            assert by_upload.status_code == 200 and by_upload.json()["media"]["kind"] == kind
        assert client.post("/v1/ask", json={"path": "sub/inner.png", "question": "?"}).status_code == 200


def test_generation_and_sampling_fields(make_client, media_root) -> None:
    with make_client(media_root=media_root) as client:
        short = client.post("/v1/ask", json={"path": "clip.mp4", "question": "What?", "max_new_tokens": 2}).json()
        assert 1 <= short["num_tokens"] <= 2
        framed = upload(client, media_root / "clip.mp4", question="What?", frames=5, time_range="[0.5, 2.5]")
        assert framed.status_code == 200, framed.text
        ts = framed.json()["media"]["timestamps"]
        assert len(ts) == 5 and ts[0] == pytest.approx(0.5)
        sampled = client.post("/v1/ask", json={"path": "clip.mp4", "question": "What?", "do_sample": True, "seed": 3,
                                               "temperature": 0.7, "top_p": 0.9})
        assert sampled.status_code == 200, sampled.text


# ----------------------------------------------------------------- tasks


TASK_CASES = [
    ("tvg", "clip.mp4", {"query": "it gets bright"}, "ground_time", ("it gets bright",), {}),
    ("stvg", "clip.mp4", {"query": "the grey square"}, "track", ("the grey square",), {}),
    ("svg", "clip.mp4", {"query": "the square", "start": 0.5, "end": 2.0}, "boxes_in_span", ("the square", 0.5, 2.0), {}),
    ("elc", "clip.mp4", {"start": 1.0, "box": [4, 4, 40, 30]}, "caption_event", (1.0, [4, 4, 40, 30]), {}),
    ("tr", "clip.mp4", {"start": 0.2, "end": 0.8, "units": "normalised"}, "describe_span", (0.2, 0.8),
     {"units": "normalised"}),
    ("dvc", "clip.mp4", {}, "dense_captions", (), {}),
    ("rec", "photo.png", {"expression": "the bright part"}, "refer", ("the bright part",), {}),
    ("reg", "photo.png", {"box": [10, 5, 60, 35]}, "describe_region", ([10, 5, 60, 35],), {}),
    ("dgc", "photo.png", {}, "grounded_caption", (), {}),
]


@pytest.mark.parametrize("task, name, fields, helper, args, kwargs", TASK_CASES, ids=[c[0] for c in TASK_CASES])
def test_each_task_answers_as_its_helper(make_client, st, media_root, task, name, fields, helper, args, kwargs) -> None:
    with make_client(media_root=media_root) as client:
        response = client.post("/v1/ask", json={"path": name, "task": task, **fields, "max_new_tokens": TASK_TOKENS})
        free = client.post("/v1/ask", json={"path": name, "task": task, **fields, "max_new_tokens": TOKENS,
                                            "constrained": False})
    assert response.status_code == 200, response.text
    got = response.json()
    expected = getattr(st, helper)(media_root / name, *args, max_new_tokens=TASK_TOKENS, **kwargs).to_dict()
    assert got["task"] == task and got["question"] == expected["question"]
    assert _without_source(got) == _without_source(expected)
    assert got["ok"]  # decoded under the task's grammar, as the helpers do: it parses
    unconstrained = getattr(st, helper)(media_root / name, *args, max_new_tokens=TOKENS, constrained=False, **kwargs)
    assert free.status_code == 200 and _without_source(free.json()) == _without_source(unconstrained.to_dict())


def test_a_free_question_read_and_constrained_by_a_task(make_client, st, media_root) -> None:
    body = {"path": "clip.mp4", "question": "When does it get bright?", "task": "tvg", "max_new_tokens": 16}
    with make_client(media_root=media_root) as client:
        loose = client.post("/v1/ask", json=body).json()
        strict = client.post("/v1/ask", json={**body, "constrained": True}).json()
        err = error_of(client.post("/v1/ask", json={"path": "clip.mp4", "question": "?", "constrained": True}), 422)
    video = media_root / "clip.mp4"
    assert _without_source(loose) == _without_source(st.ask(video, body["question"], task="tvg", max_new_tokens=16).to_dict())
    assert _without_source(strict) == _without_source(
        st.ask(video, body["question"], task="tvg", constrained=True, max_new_tokens=16).to_dict())
    assert strict["ok"] and "needs a 'task'" in err["message"]


def test_a_budget_too_small_for_one_request_fails_that_request_only(st, media_root) -> None:
    from llava_st.serve.app import answer_batch
    from llava_st.serve.params import read_params
    from llava_st.serve.settings import Limits
    from llava_st.serve.tasks import build_request

    media = st.load(media_root / "clip.mp4")
    elc = build_request(read_params({"task": "elc", "start": 1.0, "box": [4, 4, 40, 30]}, Limits()), media)
    tvg = build_request(read_params({"task": "tvg", "query": "it gets bright"}, Limits()), media)
    outcomes = answer_batch(st, [elc, tvg], (("max_new_tokens", 12),))  # elc needs more, tvg fits
    assert isinstance(outcomes[0], Exception) and "too small" in str(outcomes[0])
    assert outcomes[1].ok
    assert _without_source(outcomes[1].to_dict()) == _without_source(st.ground_time(media, "it gets bright",
                                                                                    max_new_tokens=12).to_dict())


def test_task_arguments_in_a_form(make_client, media_root) -> None:
    with make_client() as client:
        response = upload(client, media_root / "clip.mp4", task="elc", start="1.0", box="4, 4, 40, 30",
                          max_new_tokens=TASK_TOKENS, constrained="true")
        assert response.status_code == 200, response.text
        assert response.json()["task"] == "elc"


@pytest.mark.parametrize("body, status, words", [
    ({"task": "stvg"}, 422, "missing ['query']"),
    ({"task": "dvc", "query": "x"}, 422, "do not apply"),
    ({"question": "What?", "query": "x"}, 422, "task arguments"),
    ({"task": "rec", "expression": "x"}, 422, "needs an image"),
    ({"task": "elc", "start": 1.0, "box": [4, 4, 400, 30]}, 422, "400"),
    ({"task": "tr", "start": 0.5, "end": 99.0}, 422, "99"),
    ({"task": "tr", "start": 2.0, "end": 1.0}, 422, "start before it ends"),
    ({"task": "tr", "start": 0.2, "end": 1.5, "units": "normalised"}, 422, "outside [0, 1]"),
    ({"task": "svg", "query": "  ", "start": 0.1, "end": 1.0}, 422, "empty"),
    ({"task": "fly"}, 422, "not one of"),
], ids=["missing-argument", "extra-argument", "question-with-arguments", "wrong-media", "box-outside", "time-outside",
        "reversed-span", "normalised-outside", "empty-query", "unknown-task"])
def test_bad_task_requests_name_the_problem(make_client, media_root, body, status, words) -> None:
    with make_client(media_root=media_root) as client:
        err = error_of(client.post("/v1/ask", json={"path": "clip.mp4", **body}), status)
    assert words in err["message"]


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize("name, status, code, words", [
    ("notes.txt", 415, "unsupported_media_type", "neither an image nor a video"),
    ("broken.png", 422, "corrupt_media", "decoded"),
    ("truncated.mp4", 415, "unsupported_media_type", "FFmpeg"),
    ("empty.mp4", 422, "invalid_request", "empty"),
], ids=["text-file", "corrupt-image", "truncated-video", "empty-file"])
def test_wrong_type_and_corrupt_files(make_client, media_root, name, status, code, words) -> None:
    with make_client(media_root=media_root) as client:
        err = error_of(upload(client, media_root / name, question="What?"), status)
        assert err["code"] == code and words in err["message"]
        assert str(client.uploads) not in err["message"]  # the server's paths are not shown
        if name != "empty.mp4":
            by_path = error_of(client.post("/v1/ask", json={"path": name, "question": "What?"}), status)
            assert str(media_root) not in by_path["message"]


@pytest.mark.parametrize("path, status", [
    ("../secret.png", 403), ("sub/../../secret.png", 403), ("/etc/passwd", 403), ("escape.png", 403),
    ("missing.mp4", 404), ("sub", 422), ("", 422), ("bad\x00name", 422),
], ids=["dotdot", "nested-dotdot", "absolute", "link-outside", "missing", "folder", "empty", "nul"])
def test_paths_outside_the_media_root_are_refused(make_client, media_root, path, status) -> None:
    with make_client(media_root=media_root) as client:
        err = error_of(client.post("/v1/ask", json={"path": path, "question": "What?"}), status)
        assert str(media_root) not in err["message"]


def test_path_requests_need_a_media_root(make_client) -> None:
    with make_client() as client:
        assert "--media-root" in error_of(client.post("/v1/ask", json={"path": "clip.mp4", "question": "?"}), 403)["message"]
        assert "'path' is missing" in error_of(client.post("/v1/ask", json={"question": "?"}), 422)["message"]


@pytest.mark.parametrize("content, ctype, status, words", [
    (b'{"path": "clip.mp4", "question": ', "application/json", 400, "not valid JSON"),
    (b"\xff\xfe\x00", "application/json", 400, "not valid JSON"),
    (b'["clip.mp4"]', "application/json", 422, "JSON object"),
    (b'{"path": "clip.mp4", "question": "?", "colour": 1}', "application/json", 422, "unknown field(s) ['colour']"),
    (b'{"path": "clip.mp4", "question": "?", "max_new_tokens": "many"}', "application/json", 422, "max_new_tokens"),
    (b'{"path": "clip.mp4", "question": "?", "max_new_tokens": 0}', "application/json", 422, "max_new_tokens"),
    (b'{"path": "clip.mp4", "question": "?", "do_sample": "yes"}', "application/json", 422, "do_sample"),
    (b'{"path": "clip.mp4", "question": "?", "temperature": 0}', "application/json", 422, "temperature"),
    (b'{"path": "clip.mp4", "question": "?", "frames": 0}', "application/json", 422, "frames"),
    (b'{"path": "clip.mp4", "question": "?", "time_range": [3, 1]}', "application/json", 422, "time_range"),
    (b'{"path": "clip.mp4", "question": "?", "time_range": [0.5, 9]}', "application/json", 422, "9"),
    (b'{"path": "photo.png", "question": "?", "frames": 4}', "application/json", 422, "apply to videos"),
    (b'{"path": "clip.mp4", "question": ""}', "application/json", 422, "empty"),
    (b'{"path": "clip.mp4"}', "application/json", 422, "give a 'question'"),
    (b'{"path": "clip.mp4", "question": "?", "box": [1, 2]}', "application/json", 422, "4 numbers"),
    (b"question=What", "application/x-www-form-urlencoded", 415, "multipart/form-data"),
    (b"hello", "text/plain", 415, "content type"),
    (b"--x\r\nbroken", "multipart/form-data", 400, "multipart"),
], ids=["truncated-json", "not-utf8", "array", "unknown-field", "string-for-int", "zero-tokens", "string-for-bool",
        "zero-temperature", "zero-frames", "reversed-range", "range-outside", "frames-for-image", "empty-question",
        "no-question", "short-box", "urlencoded", "text", "multipart-no-boundary"])
def test_bad_bodies_are_4xx_with_the_reason(make_client, media_root, content, ctype, status, words) -> None:
    with make_client(media_root=media_root) as client:
        err = error_of(client.post("/v1/ask", content=content, headers={"content-type": ctype}), status)
    assert words in err["message"]


def test_bad_multipart_forms(make_client, media_root) -> None:
    video = (media_root / "clip.mp4").read_bytes()
    with make_client() as client:
        assert "field 'file' is missing" in error_of(client.post("/v1/ask", data={"question": "?"},
                                                                 files={"other": ("a", b"")}), 422)["message"]
        assert "must be a file upload" in error_of(client.post("/v1/ask", data={"question": "?", "file": "clip.mp4"},
                                                               files={"x": ("a", b"1")}), 422)["message"]
        two = client.post("/v1/ask", data={"question": "?"},
                          files=[("file", ("a.mp4", video)), ("file", ("b.mp4", video))])
        assert "Too many files" in error_of(two, 400)["message"]
        twice = client.post("/v1/ask", data={"question": ["a", "b"]}, files={"file": ("a.mp4", video)})
        assert "more than once" in error_of(twice, 422)["message"]
        path = client.post("/v1/ask", data={"question": "?", "path": "clip.mp4"}, files={"file": ("a.mp4", video)})
        assert "belongs to JSON requests" in error_of(path, 422)["message"]
        bad_box = client.post("/v1/ask", data={"task": "reg", "box": "1, two, 3, 4"}, files={"file": ("a.mp4", video)})
        assert "box" in error_of(bad_box, 422)["message"]


# ----------------------------------------------------------------- limits


def test_oversize_upload_is_refused_before_and_while_reading(make_client, media_root) -> None:
    big = os.urandom(FORM_OVERHEAD + 50_000)
    video = (media_root / "clip.mp4").read_bytes()
    with make_client(limits={"max_upload_bytes": 1000}) as client:
        # Content-Length says it: refused before the body is read
        err = error_of(client.post("/v1/ask", files={"file": ("a.mp4", big)}, data={"question": "?"}), 413)
        assert "the upload limit is 1000 bytes" in err["message"]

        def chunks():  # no Content-Length: the body is counted as it streams in
            yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n"
            for i in range(0, len(big), 4096):
                yield big[i : i + 4096]
            yield b"\r\n--b--\r\n"

        err = error_of(client.post("/v1/ask", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}), 413)
        assert "larger than the limit for uploads" in err["message"]
        # within the form's slack but over the file limit: refused while copying to the temporary file
        err = error_of(upload(client, media_root / "clip.mp4", question="?"), 413)
        assert f"{len(video)}" not in err["message"] and "larger than the limit of 1000 bytes" in err["message"]


def test_oversize_json_body(make_client, media_root) -> None:
    with make_client(media_root=media_root, limits={"max_json_bytes": 200}) as client:
        err = error_of(client.post("/v1/ask", json={"path": "clip.mp4", "question": "x" * 300}), 413)
    assert "the limit is 200 bytes" in err["message"]


@pytest.mark.parametrize("limits, words", [
    ({"max_video_seconds": 1.5}, "lasts 3.0 s; the limit is 1.5 s"),
    ({"max_video_frames": 20}, "has 30 frames; the limit is 20"),
    ({"max_pixels": 1000}, "64x48 pixels"),
    ({"max_sample_frames": 4}, "expected 1..4"),
    ({"max_new_tokens": 8, "max_question_chars": 5}, "limit is 5"),
], ids=["duration", "frame-count", "pixels", "sample-frames", "question-length"])
def test_media_limits(make_client, media_root, limits, words) -> None:
    with make_client(media_root=media_root, limits=limits, default_max_new_tokens=4) as client:
        fields = {"question": "What happens?", "frames": 6 if "max_sample_frames" in limits else None}
        status = 422 if "max_sample_frames" in limits or "max_question_chars" in limits else 413
        assert words in error_of(client.post("/v1/ask", json={"path": "clip.mp4", **fields}), status)["message"]
        assert words in error_of(upload(client, media_root / "clip.mp4", **{k: v for k, v in fields.items() if v}),
                                 status)["message"]


def test_the_api_key(make_client, media_root) -> None:
    body = {"path": "clip.mp4", "question": "What?"}
    with make_client(media_root=media_root, api_key="s3cret") as client:
        assert client.get("/v1/health").status_code == 200  # open to load balancers
        err = error_of(client.post("/v1/ask", json=body), 401)
        assert "API key" in err["message"]
        assert client.post("/v1/ask", json=body).headers["www-authenticate"] == "Bearer"
        assert error_of(client.post("/v1/ask", json=body, headers={"Authorization": "Bearer nope"}), 401)["message"] == "wrong API key"
        assert error_of(client.post("/v1/ask", json=body, headers={"X-API-Key": "s3cret2"}), 401)
        assert error_of(upload(client, media_root / "clip.mp4", question="?"), 401)
        assert error_of(client.get("/v1/model"), 401)
        assert client.post("/v1/ask", json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.post("/v1/ask", json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert client.get("/v1/model", headers={"X-API-Key": "s3cret"}).json()["api_key_required"] is True


def test_the_default_upload_folder_is_removed_at_shutdown(st, media_root) -> None:
    from fastapi.testclient import TestClient

    from llava_st.serve import ServerSettings, create_app

    app = create_app(st, ServerSettings(default_max_new_tokens=2))
    with TestClient(app) as client:
        folder = app.state.serve["upload_dir"]
        assert folder.is_dir()
        assert upload(client, media_root / "clip.mp4", question="?").status_code == 200
        assert error_of(upload(client, media_root / "notes.txt", question="?"), 415)
        assert list(folder.iterdir()) == []
    assert not folder.exists()


def test_one_request_s_media_failing_in_the_batch_does_not_fail_the_others(st) -> None:
    from llava_st.serve.app import answer_batch

    import numpy as np

    frames = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    outcomes = answer_batch(st, [Request(frames, "What?"), Request("/no/such/file.mp4", "What?")],
                            (("max_new_tokens", 2),))
    assert outcomes[0].num_tokens >= 1
    assert isinstance(outcomes[1], Exception) and "not found" in str(outcomes[1])
