"""The exceptions of llava-st: one root class and one subclass per area.

Catch :class:`LlavaSTError` to handle every error the library raises about
its inputs (a bad file, malformed markup, a checkpoint that does not fit, a
data file with a wrong field) without also catching ``ValueError`` or
``RuntimeError`` from anywhere else. Catch an area's class to handle that
area only. Specific errors live next to the code that raises them and
derive from one of these.

The area classes that describe a bad value also derive from ``ValueError``
(and the checkpoint and run-folder ones from ``RuntimeError``), so code
written against the built-in types keeps working.

=================  ==========================================================
class              raised for
=================  ==========================================================
MediaError         a video, image or frame folder that cannot be used as asked
ProtocolError      coordinate markup, bins, conversations and answers' values
ConfigError        a model, generator or run configuration that is invalid
CheckpointError    a model folder that is missing or whose files do not fit
DataError          a dataset or annotation file that breaks its format
EvalError          predictions and run folders of the evaluation
SynthError         ST-Synth settings that cannot produce data
=================  ==========================================================
"""

from __future__ import annotations


class LlavaSTError(Exception):
    """Root of every error llava-st raises about its inputs."""


class MediaError(LlavaSTError, ValueError):
    """The media input cannot be used as asked (see :mod:`llava_st.media.errors`)."""


class ProtocolError(LlavaSTError, ValueError):
    """Text on the model's side is malformed: coordinate markup, values, bins or turns."""


class ConfigError(LlavaSTError, ValueError):
    """A configuration value is invalid, or several cannot hold together."""


class CheckpointError(LlavaSTError, RuntimeError):
    """A model folder whose files do not fit the model; the message lists every problem."""


class ModelNotFoundError(CheckpointError, FileNotFoundError):
    """A model folder, or a file that a model folder must hold, does not exist."""


class UnknownModelError(ConfigError, KeyError):
    """A model name that is neither a registered name nor a folder."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(LlavaSTError, ValueError):
    """A data or annotation file that does not have its format; the message names the file."""


class EvalError(LlavaSTError):
    """The evaluation cannot go on: predictions or a run folder are not usable."""


class SynthError(LlavaSTError):
    """ST-Synth cannot produce the data asked for."""


__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "EvalError",
    "LlavaSTError",
    "MediaError",
    "ModelNotFoundError",
    "ProtocolError",
    "SynthError",
    "UnknownModelError",
]
