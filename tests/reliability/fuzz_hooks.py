"""Schemathesis hooks for test_fuzz_api.py: JSON bodies that are not quite JSON.

Schemathesis sends valid JSON, of a valid or an invalid shape. Clients and attackers
also send what Python's parser accepts but JSON does not (NaN, Infinity, 1e999), and
what no parser accepts (cut short, trailing bytes, bad UTF-8). About half the bodies
here are bent one of those ways; which one follows from the body's own bytes, so a seed
repeats a run exactly. Loaded through ``SCHEMATHESIS_HOOKS=tests.reliability.fuzz_hooks``.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from typing import Any

import schemathesis

# A number outside a string: after a colon, an opening bracket or a comma.
NUMBER = re.compile(r"(?<=[:\[,])\s*-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _number(token: str) -> Callable[[str], str]:
    """Put ``token`` where the first number is, or add it as a field or an element."""

    def bend(text: str) -> str:
        if NUMBER.search(text):
            return NUMBER.sub(" " + token, text, count=1)
        if text.startswith("{"):
            return '{"_": ' + token + ("}" if text == "{}" else ", " + text[1:])
        if text.startswith("["):
            return "[" + token + ("]" if text == "[]" else ", " + text[1:])
        return token

    return bend


BENDS: list[Callable[[str], str]] = [
    _number("NaN"),
    _number("Infinity"),
    _number("-Infinity"),
    _number("1e999"),
    lambda text: text[: len(text) // 2],  # cut short
    lambda text: text + "}",  # trailing bytes
]


@schemathesis.serializer("application/json")
def bent_json(ctx: Any, value: Any) -> bytes:  # noqa: ANN401 - schemathesis' hook types
    if isinstance(value, bytes):  # raw bytes schemathesis chose to send: left alone
        return value
    text = json.dumps(value, default=str)  # as schemathesis spells binary values
    # About half the bodies are bent, half are sent as schemathesis made them.
    choice = zlib.crc32(text.encode()) % (2 * len(BENDS) + 2)
    if choice < len(BENDS):
        return BENDS[choice](text).encode()
    if choice == len(BENDS):
        return b"\xff" + text.encode()  # not UTF-8
    return text.encode()  # left as it was
