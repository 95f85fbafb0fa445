"""What a server may accept and how it batches: :class:`Limits` and :class:`ServerSettings`.

Every number that bounds the work one request may cause lives in
:class:`Limits`, with a default that is safe for a server open to a team
(100 MiB uploads, ten-minute videos, 60 s per request, 64 requests waiting);
:class:`ServerSettings` adds where path requests may read (``media_root``),
where uploads are written for decoding (``upload_dir``), the optional API key
and the batching of concurrent requests. Both are checked on construction: a
bad value is a :class:`~llava_st.errors.ConfigError` naming the field.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import ConfigError

MIB = 1024 * 1024


def size_text(n: float) -> str:
    """A byte count as people read it: ``512 bytes``, ``1.5 KiB``, ``100.0 MiB``."""
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{int(n)} bytes"


@dataclass(frozen=True)
class Limits:
    """Bounds on one request and on the queue.

    Attributes:
        max_upload_bytes: largest uploaded file (bytes); a larger one is answered 413.
        max_json_bytes: largest JSON body (bytes).
        max_video_seconds: longest video accepted (its whole duration, seconds).
        max_video_frames: most frames a video may hold (its whole length).
        max_pixels: largest frame or image, width x height.
        max_sample_frames: most frames a request may ask to sample (``frames``).
        max_question_chars: longest question or query text.
        max_new_tokens: most tokens a request may ask to generate.
        request_timeout_s: seconds from a request's arrival to its answer;
            past it the request is answered 504 and dropped from the queue.
        max_queue: requests waiting for the model at once; one more is answered 429.
    """

    max_upload_bytes: int = 100 * MIB
    max_json_bytes: int = 64 * 1024
    max_video_seconds: float = 600.0
    max_video_frames: int = 36_000
    max_pixels: int = 4096 * 4096
    max_sample_frames: int = 256
    max_question_chars: int = 4000
    max_new_tokens: int = 2048
    request_timeout_s: float = 60.0
    max_queue: int = 64

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"Limits.{f.name} must be a number > 0, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ServerSettings:
    """How a server answers.

    Attributes:
        model: the model's name or folder as given (reported by ``GET /v1/model``).
        limits: the :class:`Limits`.
        media_root: folder that JSON requests name files under (``{"path": ...}``);
            ``None`` refuses path requests.
        upload_dir: folder for the temporary files of uploads (``None``: a new
            folder under the system's temporary folder, removed at shutdown).
        api_key: when set, ``/v1/ask`` and ``/v1/model`` need it, as
            ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``.
        max_batch: most requests answered together by one ``ask_batch`` call.
        batch_wait_ms: how long a batch that is not full waits for more
            requests after its first one.
        intake_wait_ms: how long it waits instead while requests already
            accepted are still reading their media (they will come soon).
        default_max_new_tokens: token budget of a request that gives none.
        load_workers: threads that decode the media of requests side by side
            (the model runs on its own thread).
    """

    model: str = "tiny"
    limits: Limits = field(default_factory=Limits)
    media_root: Path | None = None
    upload_dir: Path | None = None
    api_key: str | None = None
    max_batch: int = 16
    batch_wait_ms: float = 20.0
    intake_wait_ms: float = 200.0
    default_max_new_tokens: int = 512
    load_workers: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.limits, Limits):
            raise ConfigError(f"ServerSettings.limits must be a Limits, got {type(self.limits).__name__}")
        if isinstance(self.max_batch, bool) or not isinstance(self.max_batch, int) or self.max_batch < 1:
            raise ConfigError(f"ServerSettings.max_batch must be a whole number >= 1, got {self.max_batch!r}")
        if isinstance(self.load_workers, bool) or not isinstance(self.load_workers, int) or self.load_workers < 1:
            raise ConfigError(f"ServerSettings.load_workers must be a whole number >= 1, got {self.load_workers!r}")
        for name in ("batch_wait_ms", "intake_wait_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"ServerSettings.{name} must be a number >= 0, got {value!r}")
        if not 1 <= self.default_max_new_tokens <= self.limits.max_new_tokens:
            raise ConfigError(
                f"ServerSettings.default_max_new_tokens must be in 1..{self.limits.max_new_tokens} "
                f"(Limits.max_new_tokens), got {self.default_max_new_tokens!r}"
            )
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("ServerSettings.api_key is empty; give a key or None for no key")
        if self.media_root is not None:
            root = Path(self.media_root)
            if not root.is_dir():
                raise ConfigError(f"media root {root} is not a folder")
            object.__setattr__(self, "media_root", root.resolve())
        if self.upload_dir is not None:
            up = Path(self.upload_dir)
            if not up.is_dir() or not os.access(up, os.W_OK):
                raise ConfigError(f"upload folder {up} is not a writable folder")
            object.__setattr__(self, "upload_dir", up.resolve())


__all__ = ["MIB", "Limits", "ServerSettings", "size_text"]
