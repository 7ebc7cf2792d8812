"""Declared, typed options of a component: read from the annotated keyword parameters of ``__init__``.

A solver declares its options once, in its signature, e.g.
``def __init__(self, eta: float = 1.0, solver_type: str = "midpoint", **base)``; this module turns
that into :class:`OptionSpec` objects, checks values given from Python against the declared types
(``denoise_final="False"`` is refused, not read as truthy), and parses ``--option KEY=VALUE`` text
from the command line against them.
"""

from __future__ import annotations

import inspect
import json
import numbers
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

from samplekit.registry import SamplekitError

_NO_DEFAULT = inspect.Parameter.empty
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class OptionError(SamplekitError, ValueError):
    """An option that does not exist, or a value that does not fit its declared type."""


@dataclass(frozen=True)
class OptionSpec:
    """One option: its name, its declared type (an annotation) and its default."""

    name: str
    annotation: Any
    default: Any = None

    @property
    def type_name(self) -> str:
        return _type_name(self.annotation)

    def check(self, value: Any, owner: str) -> Any:
        """``value`` if it fits the declared type (numpy scalars become Python ones), else an OptionError."""
        for kind in _alternatives(self.annotation):
            ok, converted = _fits(kind, value)
            if ok:
                return converted
        raise OptionError(
            f"{owner}: option {self.name}={value!r} must be {self.type_name}; "
            f"e.g. {self.name}={self.default!r} (the default)"
        )

    def parse(self, text: str, owner: str) -> Any:
        """The value of a command-line ``KEY=VALUE`` text, parsed against the declared type."""
        kinds = _alternatives(self.annotation)
        low = text.strip().lower()
        if type(None) in kinds and low in ("none", "null"):
            return None
        for kind in kinds:
            if kind is bool and low in TRUE_WORDS + FALSE_WORDS:
                return low in TRUE_WORDS
            if kind is int:
                try:
                    return int(text)
                except ValueError:
                    continue
            if kind is float:
                try:
                    return float(text)
                except ValueError:
                    continue
            if kind is str:
                return text
        try:
            value = json.loads(text)
        except ValueError:
            raise OptionError(
                f"{owner}: --option {self.name}={text!r} is not {self.type_name}; "
                f"e.g. --option {self.name}={_show(self.default)}"
            ) from None
        return self.check(value, owner)


def option_specs(cls: type) -> dict[str, OptionSpec]:
    """The typed keyword parameters of ``cls.__init__`` and, through ``**kwargs``, of its bases."""
    specs: dict[str, OptionSpec] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if init is object.__init__:
            break
        hints = typing.get_type_hints(init)
        params = inspect.signature(init).parameters.values()
        for p in params:
            if p.name == "self" or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) or p.name in specs:
                continue
            specs[p.name] = OptionSpec(p.name, hints.get(p.name, Any), None if p.default is _NO_DEFAULT else p.default)
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return specs


def check_options(cls: type, owner: str, options: dict) -> dict:
    """``options`` checked against ``cls``'s declared ones: unknown names and ill-typed values refused."""
    specs = option_specs(cls)
    unknown = sorted(set(options) - set(specs))
    if unknown:
        raise OptionError(
            f"{owner} has no option {', '.join(map(repr, unknown))}; its options are: "
            f"{', '.join(f'{s.name} ({s.type_name})' for s in specs.values()) or 'none'}"
        )
    return {name: specs[name].check(value, owner) for name, value in options.items()}


def parse_options(cls: type, owner: str, pairs: dict[str, str]) -> dict:
    """Command-line ``KEY=VALUE`` texts parsed against ``cls``'s declared option types."""
    specs = option_specs(cls)
    if set(pairs) - set(specs):
        check_options(cls, owner, dict.fromkeys(pairs))  # raises, naming the unknown options
    return {name: specs[name].parse(text, owner) for name, text in pairs.items()}


def _alternatives(annotation) -> tuple:
    origin = typing.get_origin(annotation)
    if origin is Union or (hasattr(types, "UnionType") and isinstance(annotation, types.UnionType)):
        return tuple(a for arg in typing.get_args(annotation) for a in _alternatives(arg))
    if origin is not None:
        return (origin,)
    return (annotation,)


def _fits(kind, value) -> tuple[bool, Any]:
    if kind is Any:
        return True, value
    if kind is type(None):
        return value is None, None
    if kind is bool:
        ok = isinstance(value, bool) or type(value).__name__ == "bool_"  # numpy.bool_ too
        return ok, bool(value) if ok else None
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return False, None  # a bool is not a number here
    if kind is int:
        return isinstance(value, numbers.Integral), int(value) if isinstance(value, numbers.Integral) else None
    if kind is float:
        ok = isinstance(value, numbers.Real)
        return ok, float(value) if ok else None
    if isinstance(kind, type):
        return isinstance(value, kind), value
    return True, value


def _type_name(annotation) -> str:
    names = []
    for kind in _alternatives(annotation):
        names.append(
            "None" if kind is type(None) else "any value" if kind is Any else getattr(kind, "__name__", str(kind))
        )
    return " or ".join(f"a {n}" if n not in ("None", "any value") else n for n in names)


def _show(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


__all__ = ["OptionError", "OptionSpec", "option_specs", "check_options", "parse_options"]
