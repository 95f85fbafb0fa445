"""Conversation and media -> model inputs, and generated ids -> text (SPEC §2.7-2.10, §3, §7).

* :mod:`.chat`: the release chat template and the media tag rule (strings only);
* :mod:`.tokenizer`: loading, checking and building the release tokenizer layout;
* :mod:`.pixels`: decoded media -> ``pixel_values``;
* :mod:`.processing`: :class:`LlavaSTProcessor`, which puts them together;
* :mod:`.decoding`: generated ids -> answer text.
"""

from .chat import (
    DEFAULT_SYSTEM_PROMPT,
    ChatText,
    Conversation,
    ConversationError,
    Message,
    find_media_tag,
    normalize_conversation,
    place_media_tag,
    render_chat,
)
from .decoding import decode_generated, to_release_answer
from .pixels import MediaError, media_pixels
from .processing import (
    IGNORE_INDEX,
    PROCESSOR_FILE,
    EncodedSample,
    LlavaSTProcessor,
    ProcessorOptions,
    ProcessorOutput,
)
from .tokenizer import TokenizerMismatchError, build_release_tokenizer, check_tokenizer, load_tokenizer

__all__ = [
    "ChatText",
    "Conversation",
    "ConversationError",
    "DEFAULT_SYSTEM_PROMPT",
    "EncodedSample",
    "IGNORE_INDEX",
    "LlavaSTProcessor",
    "MediaError",
    "Message",
    "PROCESSOR_FILE",
    "ProcessorOptions",
    "ProcessorOutput",
    "TokenizerMismatchError",
    "build_release_tokenizer",
    "check_tokenizer",
    "decode_generated",
    "find_media_tag",
    "load_tokenizer",
    "media_pixels",
    "normalize_conversation",
    "place_media_tag",
    "render_chat",
    "to_release_answer",
]
