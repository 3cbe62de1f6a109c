"""The one error hierarchy of lstmconv.

Every error says what failed, where (file › layer › direction › tensor), expected against found,
and how to fix it. Deep code raises with the facts it knows; the boundary that knows the file or
the layer adds it once with :meth:`LstmconvError.within`.
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Any

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` safe to print on a terminal: control and format characters (a newline that
    would forge a second line, the ESC of a terminal escape sequence, U+2028, bidirectional
    overrides) shown as escapes (``\\n``, ``\\x1b``, ``\\u2028``). Every name from a file (node
    names, tensor keys, file names) passes through here before it reaches stderr or stdout."""
    out = []
    for char in str(text):
        if char == "\n" and keep_newlines:
            out.append(char)
        elif char in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[char])
        elif unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            code = ord(char)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
        else:
            out.append(char)
    return "".join(out)


def printable_tree(value: Any) -> Any:
    """Every string in nested dicts and lists (keys too) made :func:`printable`."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_tree(key): printable_tree(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(printable_tree(item) for item in value)
    return value


class PrintableFilter(logging.Filter):
    """For a handler: each record's message made :func:`printable` (a warning naming a tensor
    whose name holds a newline stays one line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = printable(record.getMessage()), None
        return True


class LstmconvError(Exception):
    """Root of every error lstmconv raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        where: tuple[str, ...] = (),
        hint: str | None = None,
        cli_hint: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.where = tuple(part for part in where if part)
        self.hint = hint
        #: The hint in the command line's words (``--force`` for ``overwrite=True``), where
        #: they differ from the API's: one message, two renderings.
        self.cli_hint = cli_hint

    def within(self, *outer: str) -> LstmconvError:
        """Prefix the location with outer parts (file, layer…) that are not named yet."""
        new = tuple(part for part in outer if part and part not in self.where)
        self.where = new + self.where
        return self

    #: Whether the message may span lines (a verification report does); names never may.
    multiline = False

    def __str__(self) -> str:
        return self.render()

    def render(self, cli: bool = False) -> str:
        """The message with its location and hint, the hint in the command line's words when
        ``cli`` and the error has them; every name escaped (:func:`printable`)."""
        text = printable(self.message, keep_newlines=self.multiline)
        if self.where:
            text = " › ".join(printable(part) for part in self.where) + ": " + text
        hint = self.cli_hint if cli and self.cli_hint else self.hint
        if hint:
            text += f" ({printable(hint)})"
        return text


class WeightLayoutError(LstmconvError, ValueError):
    """A tensor has the wrong shape, dtype or gate count, or tensors disagree with each other."""


class PortMismatchError(LstmconvError, ValueError):
    """The layers of a source and a target do not line up (count, kind, shapes) or differ in an
    option that changes the numbers (a norm's epsilon): the message names both sides' layers."""


class UnsupportedFeatureError(LstmconvError, ValueError):
    """The source uses a feature the target format or framework cannot express."""


class FormatError(LstmconvError, ValueError):
    """A file or object is not what its format says: truncated, corrupt or unrecognised."""


class UnknownFormatError(FormatError):
    """The format cannot be told from the name or the object, and none was given."""


class UnsafeInputError(FormatError):
    """The input asks for something lstmconv refuses to do: run code, leave its folder, or
    allocate far more than the file holds."""


class UsageError(LstmconvError):
    """lstmconv was asked for something impossible (an option or environment variable that
    makes no sense): the user's to fix, not the file's; no file is named."""


class MissingDependencyError(LstmconvError, ImportError):
    """A framework needed for this step is not installed."""


class UnknownOptionError(LstmconvError, TypeError):
    """A keyword option the format's reader or writer does not take (a misspelling, most often)."""


class InputNotFoundError(LstmconvError, FileNotFoundError):
    """The input file (or folder, or checkpoint prefix) is not there."""


class OutputExistsError(LstmconvError, FileExistsError):
    """The output exists and overwriting was not asked for."""


class VerificationError(LstmconvError, ArithmeticError):
    """Two forms of the same model disagree beyond the tolerance (``report``: the check's, when
    there was one)."""

    report: Any = None

    multiline = True


class LstmconvWarning(UserWarning):
    """What lstmconv warns of (assumptions that change the numbers, NaN weights, masks, what is
    not carried): issued through :mod:`warnings` as well as logged to the ``lstmconv`` logger,
    so ``python -W error`` and :func:`warnings.catch_warnings` (filtering on this class) work."""


def missing(module: str, extra: str, purpose: str, *, failed: str | None = None) -> MissingDependencyError:
    """The error for a framework that is not installed (or ``failed`` to import), with the
    command that fixes it."""
    state = "which is not installed" if failed is None else f"which failed to import: {failed}"
    return MissingDependencyError(
        f"{purpose} needs {module}, {state}", hint=f"pip install 'lstmconv[{extra}]'"
    )
