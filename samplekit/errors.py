"""samplekit's error hierarchy: every error a user can cause is a ``SamplekitError``.

    SamplekitError                          base; the CLI prints its message, never a traceback
    +-- InvalidArgumentError (ValueError)   a bad value for a named argument
    +-- ArgumentTypeError (TypeError)       a value of the wrong type for a named argument
    +-- UnknownComponentError (KeyError)    no component of that kind and name (close names listed)
    +-- DuplicateComponentError             two plugins register one name
    +-- PluginError                         a plugin failed to load or its hook raised
    +-- InputFileError (ValueError)         a user's file cannot be read as what it should be
    |   +-- ArrayChoiceError (KeyError)     an .npz without the wanted array
    +-- OutputError (OSError)               an output path that cannot be written (or would be overwritten)
    +-- CheckpointError (ValueError)        a model checkpoint that cannot be loaded into its network
    |   +-- UnsafeCheckpointError           a checkpoint that only an arbitrary unpickle could read
    |   +-- UntrustedCodeError              a TorchScript archive without trust_code=True
    +-- ResourceLimitError (ValueError)     a config asking for more memory than allowed
    +-- NonFiniteError (FloatingPointError) NaN/Inf where a finite value is needed
    +-- OptionError (ValueError)            an option that does not exist or does not fit its declared type
    +-- SolverError (ValueError)            a solver cannot run as asked (budget, SDE, options, contract)
    |   +-- BudgetExceededError             a run would pass its network-call cap
    |   +-- PluginSolverError               a solver's step raised or returned something unusable
    +-- SuiteError (ValueError)             a benchmark suite file or override that cannot run
    +-- BenchLockedError                    another live benchmark run holds the output directory
    +-- CorruptResultsError                 a results file that is not one JSON record per line
    +-- NetworkError (RuntimeError)         a network raised (TorchScript) or refused the samples' dtype

Every error class is defined here (other modules import them from here); ValueError/TypeError stay
second bases so ``except ValueError`` still works.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

__all__ = [
    "ArgumentTypeError",
    "ArrayChoiceError",
    "BenchLockedError",
    "BudgetExceededError",
    "CheckpointError",
    "CorruptResultsError",
    "DuplicateComponentError",
    "InputFileError",
    "InvalidArgumentError",
    "NetworkError",
    "NonFiniteError",
    "OptionError",
    "OutputError",
    "PluginError",
    "PluginSolverError",
    "ResourceLimitError",
    "SamplekitError",
    "SolverError",
    "SuiteError",
    "UnknownComponentError",
    "UnsafeCheckpointError",
    "UntrustedCodeError",
    "loading_errors",
]


class SamplekitError(Exception):
    """Base class of the errors a user of samplekit can cause; ``exit_code`` is the CLI's exit status."""

    exit_code = 2


class InvalidArgumentError(SamplekitError, ValueError):
    """A bad value for a named argument."""


class ArgumentTypeError(SamplekitError, TypeError):
    """A value of the wrong type for a named argument."""


class UnknownComponentError(SamplekitError, KeyError):
    """No registered component of that kind and name."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class DuplicateComponentError(SamplekitError):
    """Two plugins registered the same name for one kind."""


class PluginError(SamplekitError):
    """A plugin failed to import, validate, or register."""


class InputFileError(SamplekitError, ValueError):
    """A user's input file cannot be read as what it should hold."""


class ArrayChoiceError(InputFileError, KeyError):
    """An .npz holds several arrays and none has the expected name."""

    def __init__(self, path, names: list[str], wanted: str) -> None:
        super().__init__(wanted)
        self.path, self.names, self.wanted = str(path), names, wanted

    def __str__(self) -> str:
        return f"{self.path} holds arrays {self.names}, none named {self.wanted!r}"


class OutputError(SamplekitError, OSError):
    """An output path that cannot be written, or exists and would be overwritten."""

    def __str__(self) -> str:  # OSError formats (errno, strerror); show the message plainly
        return str(self.args[0]) if self.args else ""


class CheckpointError(SamplekitError, ValueError):
    """A model checkpoint that cannot be read, or does not fit the network it is loaded into."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that only an arbitrary unpickle could read."""


class UntrustedCodeError(CheckpointError):
    """A TorchScript archive (code, under PyTorch's security policy) loaded without ``trust_code=True``."""


class ResourceLimitError(SamplekitError, ValueError):
    """A configuration that asks for more memory than the limit allows."""


class NonFiniteError(SamplekitError, FloatingPointError):
    """NaN/Inf where a finite value is needed (a network's output, a solver's state, an input)."""

    exit_code = 1


class OptionError(SamplekitError, ValueError):
    """An option that does not exist, or a value that does not fit its declared type or range."""


class SolverError(SamplekitError, ValueError):
    """A solver cannot run as asked (budget, SDE, options, or a solver written against another contract)."""


class BudgetExceededError(SolverError):
    """A network call that would pass the run's cap (``nfe``); the core's meter raises it before the call."""


class PluginSolverError(SolverError):
    """A solver's ``init``/``step``/``solve`` raised, or returned something that is not (x, state, denoised)
    with x of the input's shape and dtype; the message names the solver, its plugin and the step."""


class SuiteError(SamplekitError, ValueError):
    """A suite file or a command-line override that cannot run."""


class BenchLockedError(SamplekitError):
    """Another live run holds the output directory."""


class CorruptResultsError(SamplekitError):
    """The results file holds something that is not one JSON record per line."""


class NetworkError(SamplekitError, RuntimeError):
    """A network failed when called: a TorchScript network raising, or inputs of a dtype its weights refuse."""

    exit_code = 1


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


def library_error_message(exc: BaseException) -> str | None:
    """A one-line explanation of an error that torch, safetensors, json or the OS raised while reading a
    user's model or file; None for anything else (a bug, which should keep its traceback)."""
    name = type(exc).__name__
    if name == "SafetensorError" or name == "HeaderTooLarge" or "safetensors" in type(exc).__module__:
        return f"not a valid safetensors file ({_first_line(exc)})"
    if isinstance(exc, RuntimeError) and "state_dict" in str(exc):
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = "; ".join(lines[1:4]) or lines[0]
        return f"the weights do not fit the network: {detail[:400]}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {exc.filename or _first_line(exc)}"
    if isinstance(exc, IsADirectoryError):
        return f"a directory where a file is needed: {exc.filename or _first_line(exc)}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or _first_line(exc)}"
    if isinstance(exc, (IndexError, KeyError, UnicodeDecodeError, EOFError)):
        return f"malformed content ({type(exc).__name__}: {_first_line(exc)})"
    return None


@contextlib.contextmanager
def loading_errors(what: str, fix: str = "") -> Iterator[None]:
    """Turn the errors libraries raise while reading a user's model or file into a ``CheckpointError``
    naming ``what`` (e.g. "model 'net.pt' (loader 'torch')"); samplekit's own errors pass through."""
    try:
        yield
    except SamplekitError:
        raise
    except Exception as exc:
        message = library_error_message(exc)
        if message is None:
            raise
        raise CheckpointError(f"cannot load {what}: {message}" + (f"; {fix}" if fix else "")) from exc
