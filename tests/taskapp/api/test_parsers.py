"""The API's JSON parser and ``taskapp.jsonvalues``, without a database: every document
within the bounds comes back as it was, every other input is a ParseError, a
ValidationError naming the field, or a 413, whatever the bytes."""

from __future__ import annotations

import io
import json
import math

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ParseError, ValidationError

from taskapp.api.parsers import JsonParser, RequestTooLarge, json_depth
from taskapp.jsonvalues import MAX_INTEGER, find_unstorable

REFUSALS = (ParseError, ValidationError, RequestTooLarge)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-MAX_INTEGER, MAX_INTEGER),
    st.floats(allow_nan=False, allow_infinity=False), st.text(st.characters(
        exclude_characters="\x00", exclude_categories=("Cs",))))
documents = st.recursive(
    scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8).filter(
            lambda k: "\x00" not in k), inner, max_size=4)),
    max_leaves=30)


def parse(data: bytes):
    return JsonParser().parse(io.BytesIO(data))


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@given(documents)
@settings(max_examples=300, deadline=None)
def test_a_document_within_the_bounds_comes_back_as_it_was(value):
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        assert json_depth(text) == _depth(value)
        assert parse(text.encode()) == value


@given(st.binary(max_size=300))
@settings(max_examples=500, deadline=None)
def test_any_bytes_are_a_document_or_a_refusal(data):
    try:
        parse(data)
    except REFUSALS:
        pass


@given(st.lists(st.one_of(st.text(max_size=5), st.sampled_from(["\x00", "\ud800", "\udfff"])),
                min_size=1).map("".join)
       # as JSON: "\ud800\udfff" is a valid pair, one character
       .filter(lambda s: find_unstorable(json.loads(json.dumps(s))) is not None),
       st.sampled_from(["value", "key", "nested"]))
@settings(max_examples=200, deadline=None)
def test_nul_and_lone_surrogates_are_refused_where_they_are(text, where):
    document = {"value": {"a": text}, "key": {"a": {text: 1}},
                "nested": {"a": [1, {"b": text}]}}[where]
    with pytest.raises(ValidationError) as refused:
        parse(json.dumps(document).encode())
    path = next(iter(refused.value.detail))
    assert path.startswith("a"), path


@pytest.mark.parametrize("number, ok", [
    (str(MAX_INTEGER), True), (str(-MAX_INTEGER), True), (str(MAX_INTEGER + 1), False),
    ("9" * 19, False), ("9" * 20, False), ("-" + "9" * 5000, False), ("9" * 100_000, False),
    ("1e308", True), ("1e309", False), ("-1e309", False), ("NaN", False),
    ("Infinity", False), ("-Infinity", False), ("1" + "0" * 5000 + ".5", False),
    ("0." + "0" * 5000 + "1", True),
])
def test_numbers_are_bounded(number, ok):
    data = f'{{"n": [{number}]}}'.encode()
    if ok:
        value = parse(data)["n"][0]
        assert math.isfinite(value)
    else:
        with pytest.raises(ValidationError) as refused:
            parse(data)
        assert list(refused.value.detail) == ["n[0]"]


def test_depth_is_counted_without_recursion():
    assert json_depth("[" * 1_000_000) == 1_000_000
    assert json_depth('["[[[[", "\\"[[", {"a": "{"}]') == 2
    with pytest.raises(ParseError, match="1000000 deep; the limit is 64"):
        parse(b"[" * 1_000_000 + b"]" * 1_000_000)


def test_find_unstorable_walks_without_recursion():
    deep: list = ["\x00"]
    for _ in range(100_000):
        deep = [deep]
    found = find_unstorable(deep, root="data")
    assert found is not None and found.path == "data" + "[0]" * 100_001


@override_settings(ASYNC_STATES={"API_MAX_BODY_BYTES": 12, "API_MAX_JSON_DEPTH": 2,
                                 "API_MAX_INTEGER": 100})
def test_the_limits_are_settings():
    assert parse(b'{"a": [100]}') == {"a": [100]}
    with pytest.raises(RequestTooLarge, match="larger than 12 bytes"):
        parse(b'{"a": [1000]}')
    with pytest.raises(ValidationError):
        parse(b'{"a": 101}')
    with pytest.raises(ParseError, match="limit is 2"):
        parse(b"[[[]]]")
