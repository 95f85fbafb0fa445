"""The release's chat template (``qwen_1_5``) and the media tag rule (SPEC §2.7, §3).

Pure string logic, no tokenizer: a conversation is normalised into
:class:`Message` objects, the ``<image>`` / ``<video>`` tag is moved to the
front of its turn, and the turns are rendered as::

    <|im_start|>system\\n{system prompt}<|im_end|>\\n
    <|im_start|>user\\n{content}<|im_end|>\\n
    <|im_start|>assistant\\n{content}<|im_end|>\\n
    ...
    <|im_start|>assistant\\n                       (only when an answer is to be generated)

:func:`render_chat` also returns the character spans that decide the labels,
so that the processor can label tokens from their character offsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Mapping, Sequence

from ..protocol.tokens import IMAGE_TAG, VIDEO_TAG
from ..errors import ProtocolError

Role = Literal["system", "user", "assistant"]

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
TURN_START = "<|im_start|>"
TURN_END = "<|im_end|>"
MEDIA_TAGS = {IMAGE_TAG: "image", VIDEO_TAG: "video"}
#: Where a turn's media tag goes: in front of the text (the release) or after it (ours).
MEDIA_POSITIONS = ("first", "last")

# LLaVA data names the roles "human"/"gpt"; chat APIs name them "user"/"assistant".
_ROLE_ALIASES: dict[str, Role] = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}


class ConversationError(ProtocolError):
    """A conversation that the chat template cannot render; the message names the turn."""


@dataclass(frozen=True)
class Message:
    """One turn: ``role`` is ``"system"``, ``"user"`` or ``"assistant"``."""

    role: Role
    content: str


@dataclass(frozen=True)
class Conversation:
    """A normalised conversation.

    ``messages`` starts with at most one system message, then alternates user
    and assistant, starting with a user turn. ``generation`` is True when it
    ends with a user turn: the rendered text then ends with the assistant
    header and no labels exist.
    """

    messages: tuple[Message, ...]
    generation: bool


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalize_conversation(conversation: str | Sequence[Mapping[str, object]]) -> Conversation:
    """Read a prompt string or a list of turns into a :class:`Conversation`.

    Accepted turns: ``{"from": "human" | "gpt" | "system", "value": str}``
    (LLaVA data) or ``{"role": "user" | "assistant" | "system", "content": str}``.
    A final assistant turn whose text is ``None`` (the release's marker of an
    answer to be generated) is dropped. A bare string is one user turn.

    Example::

        >>> normalize_conversation("<image>\\nWhat is this?").generation
        True

    Raises:
        ConversationError: unknown role or keys, a system turn that is not
            first, turns that do not alternate user/assistant starting with
            the user, a text that is not a string, or no user turn.
    """
    if isinstance(conversation, str):
        return Conversation((Message("user", conversation),), generation=True)
    if isinstance(conversation, Mapping) or not isinstance(conversation, Iterable):
        raise ConversationError(
            f"a conversation is a prompt string or a list of turns, got {type(conversation).__name__}"
        )
    turns = list(conversation)
    messages: list[Message] = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, Mapping):
            raise ConversationError(f"turn {i} must be a mapping, got {type(turn).__name__}: {turn!r}")
        if "from" in turn and "value" in turn:
            raw_role, content = turn["from"], turn["value"]
        elif "role" in turn and "content" in turn:
            raw_role, content = turn["role"], turn["content"]
        else:
            raise ConversationError(
                f"turn {i} must have 'from' and 'value' (or 'role' and 'content') keys, got {sorted(turn)}"
            )
        role = _ROLE_ALIASES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise ConversationError(f"turn {i} has unknown role {raw_role!r}; expected one of {sorted(_ROLE_ALIASES)}")
        if content is None and role == "assistant" and i == len(turns) - 1:
            continue  # "answer to be generated"
        if not isinstance(content, str):
            raise ConversationError(f"turn {i} ({role}) text must be a string, got {type(content).__name__}")
        messages.append(Message(role, content))

    body = messages[1:] if messages and messages[0].role == "system" else messages
    if not body:
        raise ConversationError("the conversation has no user turn")
    for j, message in enumerate(body):
        expected = "user" if j % 2 == 0 else "assistant"
        if message.role != expected:
            where = "a system turn must come first" if message.role == "system" else "turns must alternate"
            raise ConversationError(
                f"turn {j + len(messages) - len(body)} is {message.role!r} where {expected!r} was expected "
                f"({where}, starting with the user): {_short(message.content)!r}"
            )
    return Conversation(tuple(messages), generation=body[-1].role == "user")


def find_media_tag(messages: Sequence[Message]) -> tuple[int, str] | None:
    """The turn index and tag (``"<image>"`` / ``"<video>"``) of the conversation's one media tag, or None.

    Raises:
        ConversationError: more than one tag in the conversation, or a tag in
            a system or assistant turn.
    """
    found: list[tuple[int, str]] = []
    for i, message in enumerate(messages):
        for tag in MEDIA_TAGS:
            found.extend((i, tag) for _ in range(message.content.count(tag)))
    if not found:
        return None
    if len(found) > 1:
        tags = ", ".join(f"{tag} in turn {i}" for i, tag in found)
        raise ConversationError(f"a sample holds exactly one media tag, found {len(found)}: {tags}")
    index, tag = found[0]
    if messages[index].role != "user":
        raise ConversationError(
            f"the media tag {tag} must be in a user turn, found it in the {messages[index].role} turn "
            f"{index}: {_short(messages[index].content)!r}"
        )
    return found[0]


def place_media_tag(text: str, tag: str, position: str = "first") -> str:
    """Move ``tag`` to the front (``position="first"``, the release, SPEC §2.7) or the end
    (``"last"``, ours) of its turn, separated from the text by a newline.

    The tag is removed, the rest is stripped of leading and trailing
    whitespace, and the result is ``tag + "\\n" + rest`` (first) or
    ``rest + "\\n" + tag`` (last). (The release skips this when the text
    already starts with the tag; the two agree whenever the tag is followed by
    a newline and the text has no trailing whitespace, as in every release
    prompt.) ``"last"`` puts the question before the pixels, so that the
    visual positions of a causal LLM can read it (the embedded model's
    layout, :data:`MEDIA_POSITIONS`).

    Example::

        >>> place_media_tag("What happens here? <video>", "<video>")
        '<video>\\nWhat happens here?'
        >>> place_media_tag("<video>\\nWhat happens here?", "<video>", "last")
        'What happens here?\\n<video>'
    """
    if text.count(tag) != 1:
        raise ConversationError(f"expected exactly one {tag} in {_short(text)!r}, found {text.count(tag)}")
    if position not in MEDIA_POSITIONS:
        raise ConversationError(f"media position must be one of {MEDIA_POSITIONS}, got {position!r}")
    rest = text.replace(tag, "", 1).strip()
    return f"{tag}\n{rest}" if position == "first" else f"{rest}\n{tag}"


@dataclass(frozen=True)
class ChatText:
    """A rendered conversation and the character spans that decide its labels.

    ``answer_spans``: each assistant turn's content plus its closing
    ``<|im_end|>`` (what our labels supervise). ``assistant_turn_spans``: each
    whole assistant turn, header ``<|im_start|>assistant\\n`` to the ``"\\n"``
    after ``<|im_end|>`` (what the release supervises, besides its per-token
    rule).
    """

    text: str
    answer_spans: tuple[tuple[int, int], ...]
    assistant_turn_spans: tuple[tuple[int, int], ...]


def render_chat(conversation: Conversation, system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> ChatText:
    """Render with the release template; a system message in the conversation replaces ``system_prompt``.

    Example::

        >>> render_chat(normalize_conversation("Hi")).text
        '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n'
    """
    messages = list(conversation.messages)
    if not messages or messages[0].role != "system":
        if not isinstance(system_prompt, str):
            raise ConversationError(f"system_prompt must be a string, got {type(system_prompt).__name__}")
        messages.insert(0, Message("system", system_prompt))
    parts: list[str] = []
    answers: list[tuple[int, int]] = []
    turns: list[tuple[int, int]] = []
    pos = 0
    for message in messages:
        header = f"{TURN_START}{message.role}\n"
        piece = f"{header}{message.content}{TURN_END}\n"
        if message.role == "assistant":
            start = pos + len(header)
            answers.append((start, start + len(message.content) + len(TURN_END)))
            turns.append((pos, pos + len(piece)))
        parts.append(piece)
        pos += len(piece)
    if conversation.generation:
        parts.append(f"{TURN_START}assistant\n")
    return ChatText("".join(parts), tuple(answers), tuple(turns))


__all__ = [
    "ChatText",
    "Conversation",
    "ConversationError",
    "DEFAULT_SYSTEM_PROMPT",
    "MEDIA_POSITIONS",
    "MEDIA_TAGS",
    "Message",
    "TURN_END",
    "TURN_START",
    "find_media_tag",
    "normalize_conversation",
    "place_media_tag",
    "render_chat",
]
