"""Dotted data paths: reading through mappings and lists, copy-on-write setting."""

from __future__ import annotations

import pytest

from engine.datapaths import get_path, set_path, split_path

DOC = {"a": {"b": {"c": 1}}, "items": [{"id": "x"}, {"id": "y"}], "n": None, "s": "text"}


@pytest.mark.parametrize(
    ("path", "expected"),
    [("a.b.c", 1), ("a.b", {"c": 1}), ("items.1.id", "y"), ("items.0", {"id": "x"}), ("n", None)],
)
def test_get_path_reads_mappings_and_list_indexes(path, expected):
    assert get_path(DOC, path) == expected


@pytest.mark.parametrize("path", ["missing", "a.x", "a.b.c.d", "items.2", "items.-1", "s.0"])
def test_get_path_miss_raises_key_error_naming_the_path(path):
    with pytest.raises(KeyError, match="nothing at"):
        get_path(DOC, path)


def test_get_path_miss_returns_the_default_when_given():
    assert get_path(DOC, "a.x.y", default=None) is None
    assert get_path(DOC, "items.9", default="d") == "d"


def test_get_path_error_names_the_first_missing_segment():
    with pytest.raises(KeyError, match="nothing at 'a.x'"):
        get_path(DOC, "a.x.y")


@pytest.mark.parametrize("path", ["", "a..b", ".a", "a.", None, 3])
def test_malformed_paths_are_rejected(path):
    with pytest.raises(ValueError):
        split_path(path)
    with pytest.raises(ValueError):
        get_path(DOC, path)
    with pytest.raises(ValueError):
        set_path(DOC, path, 1)


def test_set_path_creates_intermediate_mappings():
    assert set_path({}, "a.b.c", 1) == {"a": {"b": {"c": 1}}}
    assert set_path(None, "x", 2) == {"x": 2}


def test_set_path_is_copy_on_write():
    doc = {"a": {"b": 1, "keep": [1]}, "other": {"z": 0}}
    new = set_path(doc, "a.b", 2)
    assert doc == {"a": {"b": 1, "keep": [1]}, "other": {"z": 0}}
    assert new == {"a": {"b": 2, "keep": [1]}, "other": {"z": 0}}
    assert new["other"] is doc["other"]  # untouched branches are shared, not copied
    assert new["a"] is not doc["a"]


def test_set_path_replaces_a_whole_subtree():
    assert set_path(DOC, "a", 5)["a"] == 5


def test_set_path_numeric_segment_is_a_mapping_key():
    assert set_path({}, "codes.404", "nf") == {"codes": {"404": "nf"}}


@pytest.mark.parametrize(
    ("path", "blocker"), [("items.0.id", "items"), ("s.x", "s"), ("n.x", "n"), ("a.b.c.d", "a.b.c")]
)
def test_set_path_refuses_to_write_through_a_non_mapping(path, blocker):
    with pytest.raises(TypeError, match=f"'{blocker}' is a"):
        set_path(DOC, path, 1)


def test_set_path_refuses_a_non_mapping_document():
    with pytest.raises(TypeError, match="'the document' is a list"):
        set_path([], "a", 1)
