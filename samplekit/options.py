"""Declared, typed options of a component: read from the annotated keyword parameters of ``__init__``.

A solver declares its options once, in its signature, e.g.

    def __init__(self, eta: Annotated[float, Ge(0)] = 1.0,
                 solver_type: Literal["midpoint", "heun"] = "midpoint", **base)

and this module turns that into :class:`OptionSpec` objects, checks values given from Python against
the declared types, ``Literal`` choices and ``Annotated`` ranges (:class:`Ge`, :class:`Gt`,
:class:`Le`, :class:`Lt`, :class:`Finite`) before the component is built (``denoise_final="False"``
is refused, not read as truthy), describes them for ``samplekit list --json``, and parses
``--option KEY=VALUE`` text from the command line against them.  :func:`check_arguments` is the one
check of keyword arguments against a plain signature (registry factories, model loaders).
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import numbers
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union

from samplekit.errors import InvalidArgumentError, OptionError

_NO_DEFAULT = inspect.Parameter.empty
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class Bound:
    """A range marker for ``Annotated[float, ...]`` options: the value compared with ``bound``."""

    bound: float
    symbol: ClassVar[str] = "?"

    def holds(self, value) -> bool:
        raise NotImplementedError

    def __str__(self) -> str:
        return f"{self.symbol} {self.bound:g}"


class Ge(Bound):
    symbol = ">="

    def holds(self, value) -> bool:
        return value >= self.bound


class Gt(Bound):
    symbol = ">"

    def holds(self, value) -> bool:
        return value > self.bound


class Le(Bound):
    symbol = "<="

    def holds(self, value) -> bool:
        return value <= self.bound


class Lt(Bound):
    symbol = "<"

    def holds(self, value) -> bool:
        return value < self.bound


@dataclass(frozen=True)
class Finite:
    """A marker for ``Annotated[float, Finite()]``: NaN and +-inf refused."""

    def holds(self, value) -> bool:
        return math.isfinite(value)

    def __str__(self) -> str:
        return "finite"


@dataclass(frozen=True)
class OptionSpec:
    """One option: its name, its declared type (an annotation) and its default."""

    name: str
    annotation: Any
    default: Any = None

    @property
    def type_name(self) -> str:
        return _type_name(self.annotation)

    @property
    def choices(self) -> list | None:
        """The allowed values of a ``Literal`` option, else None."""
        found = [
            c for kind in _alternatives(self.annotation) if typing.get_origin(kind) is Literal for c in kind.__args__
        ]
        return found or None

    @property
    def constraints(self) -> tuple:
        """The range markers of an ``Annotated`` option (Ge, Gt, Le, Lt, Finite)."""
        return _constraints(self.annotation)

    def describe(self) -> dict:
        """What ``samplekit list solver --json`` shows: type, default, and choices or range if declared."""
        out: dict = {"type": self.type_name, "default": self.default}
        if self.choices is not None:
            out["choices"] = self.choices
        if self.constraints:
            out["range"] = " and ".join(map(str, self.constraints))
        return out

    def check(self, value: Any, owner: str) -> Any:
        """``value`` if it fits the declared type, choices and range (numpy scalars become Python ones),
        else an OptionError naming the option and what it takes."""
        for kind in _alternatives(self.annotation):
            ok, converted = _fits(kind, value)
            if ok:
                if converted is not None:
                    bad = [c for c in self.constraints if not c.holds(converted)]
                    if bad:
                        need = " and ".join(map(str, self.constraints))
                        raise OptionError(
                            f"{owner}: option {self.name}={value!r} must be {need}; "
                            f"e.g. {self.name}={self.default!r} (the default)"
                        )
                return converted
        if self.choices is not None:
            raise OptionError(
                f"{owner}: option {self.name}={value!r} must be one of {', '.join(map(repr, self.choices))}; "
                f"e.g. {self.name}={self.default!r} (the default)"
            )
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
            if typing.get_origin(kind) is Literal:
                for choice in kind.__args__:
                    if str(choice) == text.strip():
                        return choice
                continue
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
        hints = typing.get_type_hints(init, include_extras=True)
        params = inspect.signature(init).parameters.values()
        for p in params:
            if p.name == "self" or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) or p.name in specs:
                continue
            specs[p.name] = OptionSpec(p.name, hints.get(p.name, Any), None if p.default is _NO_DEFAULT else p.default)
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return specs


def check_options(cls: type, owner: str, options: dict) -> dict:
    """``options`` checked against ``cls``'s declared ones: unknown names, ill-typed values, values outside
    their choices or range refused."""
    specs = option_specs(cls)
    check_arguments(
        list(specs),
        owner,
        options,
        error=OptionError,
        listing=", ".join(f"{s.name} ({s.type_name})" for s in specs.values()) or "none",
    )
    return {name: specs[name].check(value, owner) for name, value in options.items()}


def check_arguments(
    takes: Callable[..., Any] | list[str],
    owner: str,
    options: dict,
    *,
    skip: int = 0,
    required: bool = False,
    error: type[Exception] = InvalidArgumentError,
    listing: str | None = None,
    phrases: tuple[str, str] = ("has no option", "its options are"),
    needs_hint: str = "",
) -> None:
    """Refuse keyword ``options`` that ``takes`` (a callable's signature, its first ``skip`` parameters
    left out, or a list of names) does not accept, listing those it does; with ``required``, also
    those it needs and were not given.  A callable taking ``**kwargs`` accepts everything."""
    params: dict = {}
    if callable(takes):
        try:
            params = dict(list(inspect.signature(takes).parameters.items())[skip:])
        except (TypeError, ValueError):
            return
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return
        names = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    else:
        names = list(takes)
    listing = listing if listing is not None else ", ".join(names) or "none"
    unknown = sorted(set(options) - set(names))
    if unknown:
        hints = [
            f"{u!r} (did you mean {close[0]!r}?)"
            if (close := difflib.get_close_matches(u, names, 1) or [n for n in names if n.endswith("_" + u)])
            else repr(u)
            for u in unknown
        ]
        raise error(f"{owner} {phrases[0]} {', '.join(hints)}; {phrases[1]}: {listing}")
    if required:
        missing = [n for n in names if params[n].default is inspect.Parameter.empty and n not in options]
        if missing:
            raise error(f"{owner} needs {', '.join(f'{m}=' for m in missing)}{needs_hint}; {phrases[1]}: {listing}")


def parse_options(cls: type, owner: str, pairs: dict[str, str]) -> dict:
    """Command-line ``KEY=VALUE`` texts parsed against ``cls``'s declared option types."""
    specs = option_specs(cls)
    if set(pairs) - set(specs):
        check_options(cls, owner, dict.fromkeys(pairs))  # raises, naming the unknown options
    return {name: specs[name].parse(text, owner) for name, text in pairs.items()}


def _constraints(annotation) -> tuple:
    if typing.get_origin(annotation) is Annotated:
        return tuple(m for m in annotation.__metadata__ if isinstance(m, (Bound, Finite)))
    origin = typing.get_origin(annotation)
    if origin is Union or (hasattr(types, "UnionType") and isinstance(annotation, types.UnionType)):
        return tuple(c for arg in typing.get_args(annotation) for c in _constraints(arg))
    return ()


def _alternatives(annotation) -> tuple:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _alternatives(typing.get_args(annotation)[0])
    if origin is Literal:
        return (annotation,)
    if origin is Union or (hasattr(types, "UnionType") and isinstance(annotation, types.UnionType)):
        return tuple(a for arg in typing.get_args(annotation) for a in _alternatives(arg))
    if origin is not None:
        return (origin,)
    return (annotation,)


def _fits(kind, value) -> tuple[bool, Any]:
    if kind is Any:
        return True, value
    if typing.get_origin(kind) is Literal:
        for choice in kind.__args__:
            if type(choice) is type(value) and choice == value:
                return True, choice
        return False, None
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
        if typing.get_origin(kind) is Literal:
            names.append("one of " + ", ".join(map(repr, kind.__args__)))
            continue
        names.append(
            "None" if kind is type(None) else "any value" if kind is Any else getattr(kind, "__name__", str(kind))
        )
    return " or ".join(
        (f"an {n}" if n[0] in "aeiou" else f"a {n}")
        if n not in ("None", "any value") and not n.startswith("one of")
        else n
        for n in names
    )


def _show(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


__all__ = [
    "Finite",
    "Ge",
    "Gt",
    "Le",
    "Lt",
    "OptionError",
    "OptionSpec",
    "check_arguments",
    "check_options",
    "option_specs",
    "parse_options",
]
