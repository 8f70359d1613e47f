"""Text from users, events and databases made safe to print on a terminal.

A description holding ``ESC [2J`` clears the screen, ``U+202E`` reverses what follows, and
``CR LF`` forges a line of output. ``safe`` escapes every such character in Python's own
notation (``\\x1b``, ``\\u202e``, ``\\r\\n``) so that a person sees what is stored; ``markup_safe``
also escapes rich markup (``[link=…]``) for text that goes into rich tables, trees or prints.
Every human (non-JSON) output of the CLI passes user-provided strings through one of them.
"""

from __future__ import annotations

import unicodedata

# Cc: C0, DEL and C1 controls; Cf: bidi overrides and isolates, zero-width and other format
# characters; Zl/Zp: line and paragraph separators; Cs: lone surrogates (cannot be encoded).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def first_unsafe(text: str) -> str | None:
    """The first control, bidi or other invisible format character in ``text`` (None: none)."""
    return next((ch for ch in text if _unsafe(ch)), None)


def safe(value: object) -> str:
    """``str(value)`` with control, bidi and other invisible format characters escaped.

    >>> safe("ok\\x1b[2J\\u202e\\r\\nforged")
    'ok\\\\x1b[2J\\\\u202e\\\\r\\\\nforged'
    """
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case: nothing to escape (printable excludes all above)
        return text
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


def safe_lines(text: str) -> str:
    """``safe`` per line, keeping the line breaks: for messages meant to span lines (a
    configuration error, a report) that may quote stored text."""
    return "\n".join(safe(line) for line in text.split("\n"))


def markup_safe(value: object) -> str:
    """``safe(value)`` with rich markup escaped too, for text printed through rich."""
    from rich.markup import escape

    return escape(safe(value))
