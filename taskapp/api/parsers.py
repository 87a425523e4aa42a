"""Request bodies: JSON with bounds, and task YAML sent as it is.

Every body is read through ``read_body``, which stops at ``API_MAX_BODY_BYTES`` (413). A JSON
body is then refused (400) before or after decoding when it is deeper than
``API_MAX_JSON_DEPTH`` (Python's decoder recursed until ``RecursionError`` on 10,000 nested
arrays), holds a key twice, or holds a value the database cannot store (NUL or a lone
surrogate in a string, an integer beyond ``API_MAX_INTEGER``, ``NaN``, ``Infinity``,
``1e999``): ``taskapp.jsonvalues`` names the field.

DRF reads a body through ``request.body`` for its own ``JSONParser``, which raises Django's
``RequestDataTooBig`` past ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (an HTML 400 from Django); these
parsers are not ``JSONParser`` subclasses, so DRF hands them the stream instead.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import IO, Any

from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.parsers import BaseParser

from taskapp.conf import conf
from taskapp.errorcodes import ErrorCode
from taskapp.jsonvalues import find_unstorable


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = ErrorCode.REQUEST_TOO_LARGE

    def __init__(self, limit: int):
        super().__init__(
            f"the request body is larger than {limit} bytes (API_MAX_BODY_BYTES)")


def read_body(stream: IO[bytes] | None) -> bytes:
    """The whole body, or ``RequestTooLarge`` once it passes ``API_MAX_BODY_BYTES``: never
    more than that limit and one byte is read."""
    limit = int(conf.API_MAX_BODY_BYTES)
    data = stream.read(limit + 1) if stream is not None else b""
    if len(data) > limit:
        raise RequestTooLarge(limit)
    return data


def body_text(data: bytes) -> str:
    """UTF-8 text (a leading byte order mark is dropped, as RFC 8259 allows)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"the body is not UTF-8 text: {exc}") from None
    return text.removeprefix("\ufeff")


# A JSON string (with its escapes) or one bracket: what counts for the nesting depth.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text``, without decoding it (so without
    recursion): strings are dropped, then the brackets left are counted in C loops."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; one that names a key twice is refused (which value was meant?)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ParseError(f"JSON parse error - the key {json.dumps(twice)} appears twice "
                         "in one object")
    return result


def _integer(digits: str) -> int:
    """An integer, without converting thousands of digits (Python refuses 4,300 and more
    with ``ValueError``): one with more digits than the bound is simply past it, and
    ``find_unstorable`` then names its field."""
    bound = int(conf.API_MAX_INTEGER)
    if len(digits.lstrip("-")) > len(str(bound)):
        return -(bound + 1) if digits.startswith("-") else bound + 1
    return int(digits)


def decode_json(text: str) -> Any:
    """A JSON document within the API's bounds; ``ParseError`` or ``ValidationError``
    (naming the field) otherwise."""
    limit = int(conf.API_MAX_JSON_DEPTH)
    if (depth := json_depth(text)) > limit:
        raise ParseError(f"JSON parse error - arrays and objects nest {depth} deep; the "
                         f"limit is {limit} (API_MAX_JSON_DEPTH)")
    try:
        data = json.loads(text, object_pairs_hook=_object, parse_int=_integer)
    except ValueError as exc:  # JSONDecodeError, or a string json cannot decode
        raise ParseError(f"JSON parse error - {exc}") from None
    problem = find_unstorable(data, max_integer=int(conf.API_MAX_INTEGER))
    if problem is not None:
        raise ValidationError({problem.path or "non_field_errors": [problem.reason]})
    return data


class JsonParser(BaseParser):
    """``application/json``, bounded (module docstring)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        return decode_json(body_text(read_body(stream)))


class YamlTextParser(BaseParser):
    """An ``application/yaml`` body as one string."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None) -> str:
        return body_text(read_body(stream))


class TextYamlParser(YamlTextParser):
    media_type = "text/yaml"


class PlainTextParser(YamlTextParser):
    media_type = "text/plain"
