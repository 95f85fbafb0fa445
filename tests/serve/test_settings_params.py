"""Settings, the request field table, and the command lines ``llava-st serve`` / ``llava-st ui``."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from llava_st.errors import ConfigError
from llava_st.serve.errors import Unprocessable
from llava_st.serve.params import FIELDS, AskParams, read_params, request_schema
from llava_st.serve.settings import Limits, ServerSettings, size_text


def test_the_field_table_and_the_dataclass_agree() -> None:
    assert [f.name for f in FIELDS] == [f.name for f in fields(AskParams)]
    body = request_schema()["content"]
    assert set(body["application/json"]["schema"]["properties"]) == {f.name for f in FIELDS}
    assert set(body["multipart/form-data"]["schema"]["properties"]) == {"file"} | {f.name for f in FIELDS} - {"path"}


def test_form_text_is_read_into_typed_values() -> None:
    p = read_params({"task": "elc", "start": "1.5", "box": "1, 2, 3, 4", "max_new_tokens": "7", "do_sample": "true",
                     "time_range": "[0, 2.5]", "frames": "8"}, Limits(), form=True)
    assert (p.start, p.box, p.max_new_tokens, p.do_sample, p.time_range, p.frames) == (
        1.5, (1.0, 2.0, 3.0, 4.0), 7, True, (0.0, 2.5), 8)
    assert p.generation(512) == {"max_new_tokens": 7, "do_sample": True, "temperature": 1.0, "top_p": 1.0, "seed": None}
    assert read_params({"question": "?"}, Limits()).generation(33)["max_new_tokens"] == 33
    # JSON values keep their JSON types: a string is not a number there
    with pytest.raises(Unprocessable, match="'start': expected a number"):
        read_params({"task": "tr", "start": "1.5", "end": 2}, Limits())
    with pytest.raises(Unprocessable, match="expected a finite number"):
        read_params({"task": "tr", "start": "nan", "end": "2"}, Limits(), form=True)
    with pytest.raises(Unprocessable, match="'frames': expected a whole number"):
        read_params({"question": "?", "frames": 2.5}, Limits())
    assert read_params({"question": "?", "frames": 4.0}, Limits()).frames == 4


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_queue"):
        Limits(max_queue=0)
    with pytest.raises(ConfigError, match="request_timeout_s"):
        Limits(request_timeout_s=-1)
    with pytest.raises(ConfigError, match="max_batch"):
        ServerSettings(max_batch=0)
    with pytest.raises(ConfigError, match="default_max_new_tokens"):
        ServerSettings(default_max_new_tokens=10, limits=Limits(max_new_tokens=5))
    with pytest.raises(ConfigError, match="media root"):
        ServerSettings(media_root="/no/such/folder")
    with pytest.raises(ConfigError, match="api_key is empty"):
        ServerSettings(api_key="  ")
    assert (size_text(512), size_text(1536), size_text(100 * 2**20)) == ("512 bytes", "1.5 KiB", "100.0 MiB")


def _parse(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def test_the_command_lines(tmp_path, capsys) -> None:
    from llava_st.cli import COMMANDS, main
    from llava_st.cli import serve as serve_cli
    from llava_st.cli import ui as ui_cli

    assert {"serve", "ui"} <= set(COMMANDS)
    args = _parse(serve_cli, [])
    assert (args.model, args.host, args.port) == ("tiny", "127.0.0.1", 8000)
    assert _parse(ui_cli, []).model == "tiny" and _parse(ui_cli, []).port == 7860
    args = _parse(serve_cli, ["--media-root", str(tmp_path), "--max-upload-mb", "2", "--max-queue", "3", "--timeout",
                              "9", "--api-key", "k", "--max-batch", "5"])
    s = serve_cli.settings_from_args(args)
    assert s.media_root == tmp_path.resolve() and s.limits.max_upload_bytes == 2 * 2**20
    assert (s.limits.max_queue, s.limits.request_timeout_s, s.api_key, s.max_batch) == (3, 9.0, "k", 5)
    # a model that is not there: exit 2 and the resolver's message, before anything listens
    assert main(["serve", "--model", str(tmp_path / "nothing")]) == 2
    assert "no model folder" in capsys.readouterr().err
    assert main(["serve", "--media-root", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
