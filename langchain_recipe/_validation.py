"""Checks of text that enters the library from users, agents and files (private)."""

from __future__ import annotations

from typing import Any

from langchain_recipe.errors import InvalidInputError

__all__ = ["check_text", "check_unicode", "is_utf8"]


def check_text(text: Any, what: str) -> str:
    """``text`` itself when it is a non-empty ``str`` that encodes as UTF-8.

    Args:
        text: the value to check.
        what: how to name it in the error, e.g. ``"Statement 3"`` or ``"The query"``.

    Raises:
        InvalidInputError: ``text`` is bytes (decode it first), not a string, empty or only
            whitespace, or not valid Unicode (see :func:`check_unicode`).
    """
    if isinstance(text, (bytes, bytearray)):
        msg = f"{what} is bytes ({bytes(text[:40])!r}...); decode it to str first, e.g. data.decode('utf-8')."
        raise InvalidInputError(msg)
    if not isinstance(text, str) or not text.strip():
        msg = f"{what} is {text!r}; it must be a string with some text in it (not empty, not only whitespace)."
        raise InvalidInputError(msg)
    return check_unicode(text, what)


def check_unicode(text: str, what: str) -> str:
    """``text`` itself when it encodes as UTF-8 (an empty string does).

    Raises:
        InvalidInputError: ``text`` holds lone surrogates, what ``bytes.decode(errors="surrogateescape")``
            makes of bytes that are not UTF-8; no tokenizer or Qdrant server accepts them.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        msg = (
            f"{what} is not valid Unicode text: {error.reason} at character {error.start} "
            f"({text[max(0, error.start - 20) : error.start]!r} before it). It was probably decoded from bytes "
            "that are not UTF-8; decode them with the right encoding."
        )
        raise InvalidInputError(msg) from None
    return text


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (no lone surrogate).

    Only such text can be stored, so reads skip other ids as unknown where writes refuse them
    (:func:`check_unicode`).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
