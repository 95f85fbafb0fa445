"""Helpers of the server tests (tests/serve): requests, error answers, the artefact folder."""

from __future__ import annotations

from pathlib import Path

#: Where tests keep what a person may want to look at (screenshots); git-ignored.
ARTEFACTS = Path(__file__).resolve().parent / "artefacts"


def upload(client, path: Path, name: str | None = None, **fields):
    """POST ``path`` as the multipart field ``file`` (named ``name``) with text ``fields``."""
    return client.post("/v1/ask", files={"file": (name or path.name, path.read_bytes())},
                       data={k: str(v) for k, v in fields.items()})


def error_of(response, status: int) -> dict:
    """The error object of a JSON error answer, checked to have ``status``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == status, body
    assert body["error"]["message"], body
    return body["error"]
