"""Typed settings from YAML: dataclasses built from parsed YAML with every key, type and value checked.

The recipe schema (:mod:`.recipe`) is plain dataclasses; this module turns a
YAML file into them. It refuses repeated keys (PyYAML would keep the last
one), unknown keys (suggesting the nearest name), values of the wrong type
and values the dataclass's ``validate`` rejects, naming the file and the
dotted key in a :class:`RecipeError`. ``key=value`` overrides are parsed as
YAML values and typed by the dataclass fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConfigError


class RecipeError(ConfigError):
    """A recipe file or override that is invalid; ``path`` and ``key`` say where."""

    def __init__(self, message: str, path: str | None = None, key: str | None = None):
        self.message = message
        self.path = path
        self.key = key
        where = ": ".join(x for x in (path, key) if x)
        super().__init__(f"{where}: {message}" if where else message)


class _UniqueKeyLoader:
    """A PyYAML SafeLoader that refuses a mapping with a repeated key (PyYAML keeps the last one silently)."""

    _cls = None

    @classmethod
    def get(cls):
        if cls._cls is None:
            import yaml

            class Loader(yaml.SafeLoader):
                pass

            def construct_mapping(loader, node, deep=False):
                seen = set()
                for key_node, _ in node.value:
                    key = loader.construct_object(key_node, deep=deep)
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"repeated key {key!r}", key_node.start_mark
                        )
                    seen.add(key)
                return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

            Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
            cls._cls = Loader
        return cls._cls


def _read_yaml(path: Path) -> Any:
    import yaml

    if not path.is_file():
        raise RecipeError("no such recipe file", path=str(path))
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader.get())
    except yaml.YAMLError as exc:
        raise RecipeError(f"not valid YAML: {exc}", path=str(path)) from None


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        item = typing.get_args(tp)[0]
        plural = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}
        return f"a list of {plural.get(item, _type_name(item))}"
    if origin is dict:
        return f"a mapping of names to {_type_name(typing.get_args(tp)[1])}"
    if is_dataclass(tp):
        return "a mapping"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    return f"{value!r} ({type(value).__name__})"


class _Builder:
    """Builds dataclasses from parsed YAML, checking keys, types and values; errors name ``where`` and the key."""

    def __init__(self, where: str):
        self.where = where

    def error(self, key: str, message: str) -> RecipeError:
        return RecipeError(message, path=self.where, key=key or "(top level)")

    def build(self, cls: type, data: Any, prefix: str = ""):
        if not isinstance(data, Mapping):
            raise self.error(prefix, f"expected a mapping, got {_describe(data)}")
        hints = typing.get_type_hints(cls)
        known = [f.name for f in fields(cls) if f.init]
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.error(_join(prefix, str(key)), f"unknown key{hint}; known keys: {', '.join(known)}")
        kwargs = {}
        for f in fields(cls):
            if not f.init:
                continue
            key = _join(prefix, f.name)
            if f.name in data:
                kwargs[f.name] = self.convert(hints[f.name], data[f.name], key)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise self.error(key, "required key is missing")
        obj = cls(**kwargs)
        validate = getattr(obj, "validate", None)
        if validate is not None:
            try:
                validate()
            except RecipeError:
                raise
            except ConfigError as exc:
                raise self._located(prefix, known, str(exc)) from None
        return obj

    def _located(self, prefix: str, known: Sequence[str], message: str) -> RecipeError:
        """A validator's ``"field.sub: message"`` becomes an error at ``prefix.field.sub``."""
        m = re.match(r"^([A-Za-z_][\w.]*): (.*)$", message, flags=re.S)
        if m and m.group(1).split(".")[0] in known:
            return self.error(_join(prefix, m.group(1)), m.group(2))
        return self.error(prefix, message)

    def convert(self, tp: Any, value: Any, key: str) -> Any:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = typing.get_args(tp)
            if value is None:
                if type(None) in args:
                    return None
                raise self.error(key, f"must not be null; expected {_type_name(tp)}")
            options = [a for a in args if a is not type(None)]
            errors = []
            for option in options:
                try:
                    return self.convert(option, value, key)
                except RecipeError as exc:
                    errors.append(exc)
            if len(options) == 1:
                raise errors[0]
            raise self.error(key, f"expected {_type_name(tp)}, got {_describe(value)}")
        if value is None:
            raise self.error(key, f"must not be null; expected {_type_name(tp)}")
        if is_dataclass(tp):
            return self.build(tp, value, key)
        if origin is list:
            if not isinstance(value, list):
                raise self.error(key, f"expected {_type_name(tp)}, got {_describe(value)}")
            (item,) = typing.get_args(tp)
            return [self.convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        if origin is dict:
            if not isinstance(value, Mapping):
                raise self.error(key, f"expected {_type_name(tp)}, got {_describe(value)}")
            key_tp, val_tp = typing.get_args(tp)
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise self.error(f"{key}.{k}", f"mapping keys must be strings, got {_describe(k)}")
                out[k] = self.convert(val_tp, v, f"{key}.{k}")
            return out
        if tp is bool:
            if not isinstance(value, bool):
                raise self.error(key, f"expected true/false, got {_describe(value)}")
            return value
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.error(key, f"expected an integer, got {_describe(value)}")
            return value
        if tp is float:
            if isinstance(value, bool):
                raise self.error(key, f"expected a number, got {_describe(value)}")
            if isinstance(value, (int, float)):
                return float(value)
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise self.error(key, f"expected a number, got {_describe(value)}")
        if tp is str:
            if not isinstance(value, str):
                raise self.error(key, f"expected a string, got {_describe(value)}")
            return value
        if tp is Any:
            return value
        raise TypeError(f"recipe field {key} has a type the loader does not handle: {tp!r}")


def _field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def parse_override(text: str) -> tuple[str, Any]:
    """``"a.b=value"`` -> ``("a.b", parsed value)``; the value is read as YAML
    (``true``, ``2e-5``, ``[a, b]``, ``null``, plain text)."""
    import yaml

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise RecipeError(f"override {text!r} is not of the form key=value", key=key or None)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise RecipeError(f"override {text!r}: the value is not valid YAML ({exc})", key=key) from None
    return key, value


def apply_overrides(data: dict, overrides: Sequence[str], cls: type, where: str | None = None) -> dict:
    """Set dotted keys in the parsed recipe ``data`` (in place; returned too).

    Each path is checked against the dataclass fields: every part must be a
    field of its section, except the last part under a mapping field (e.g.
    ``optim.lr_groups.<part>``), which may be new. Errors name ``where`` (the file).
    """
    for text in overrides:
        try:
            _apply_one(data, text, cls)
        except RecipeError as exc:
            if where is None or exc.path is not None:
                raise
            raise RecipeError(exc.message, path=where, key=exc.key) from None
    return data


def _apply_one(data: dict, text: str, cls: type) -> None:
    """Set one ``key=value`` override in ``data`` after checking its path against ``cls``."""
    key, value = parse_override(text)
    parts = key.split(".")
    node, section, done = data, cls, ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = _join(done, part)
        if section is None:  # inside a mapping field: a free key, which must be the last part
            if not last:
                raise RecipeError(f"override {text!r}: {done} maps names to values; it cannot go deeper", key=where)
            node[part] = value
            break
        names = [f.name for f in fields(section) if f.init]
        if part not in names:
            close = difflib.get_close_matches(part, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RecipeError(f"override {text!r}: unknown key{hint}; known keys: {', '.join(names)}", key=where)
        if last:
            node[part] = value
            break
        tp = _strip_optional(_field_type(section, part))
        if is_dataclass(tp):
            section = tp
        elif typing.get_origin(tp) is dict:
            section = None
        else:
            raise RecipeError(f"override {text!r}: {where} is not a section; it has no keys", key=where)
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise RecipeError(f"override {text!r}: {where} is not a mapping in the recipe", key=where)
        node, done = child, where


__all__ = ["RecipeError", "apply_overrides", "parse_override"]
