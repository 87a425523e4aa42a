"""docs/taskdef.schema.json lists exactly the keys the parser accepts, and accepts our files."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from engine.instructions import gives_result
from engine.language import vocabulary as v
from engine.language.yamlnodes import read_yaml
from engine.simulation.check import is_script

ROOT = Path(__file__).parent.parent.parent
SCHEMA = json.loads((ROOT / "docs" / "taskdef.schema.json").read_text())

# Where each vocabulary lives in the schema ("" is the root object).
VOCABULARIES = {
    "": v.TASK_KEYS,
    "retention": v.RETENTION_KEYS,
    "lifecycle": v.LIFECYCLE_KEYS,
    "state": v.STATE_KEYS,
    "instruction": v.INSTRUCTION_KEYS,
    "http": v.HTTP_KEYS,
    "auth": v.AUTH_KEYS,
    "basicAuth": v.BASIC_AUTH_KEYS,
    "rpc": v.RPC_KEYS,
    "message": v.MESSAGE_KEYS,
    "db": v.DB_KEYS,
    "retry": v.RETRY_KEYS,
    "transition": v.TRANSITION_KEYS,
    "wait": v.WAIT_KEYS,
    # The parser reads every kind in a poll, to refuse the ones with no result by name.
    "poll": v.POLL_KEYS - {kind for kind in v.INSTRUCTION_KINDS if not gives_result(kind)},
    "backoff": v.BACKOFF_KEYS,
    "subscribe": v.SUBSCRIBE_KEYS,
    "source": v.SOURCE_KEYS,
}
ENUMS = {
    "outcome": v.OUTCOMES,
}


def _objects_with_properties(node, where):
    if isinstance(node, dict):
        if "properties" in node:
            yield where, node["properties"]
        for key, child in node.items():
            if key == "$defs":
                for name, definition in child.items():
                    yield from _objects_with_properties(definition, name)
            elif key != "properties":
                yield from _objects_with_properties(child, where)
    elif isinstance(node, list):
        for child in node:
            yield from _objects_with_properties(child, where)


def test_schema_is_valid():
    Draft202012Validator.check_schema(SCHEMA)


def test_every_object_in_the_schema_matches_its_vocabulary():
    found = dict(_objects_with_properties(SCHEMA, ""))
    assert set(found) == set(VOCABULARIES)
    for where, properties in found.items():
        assert set(properties) == VOCABULARIES[where], where


def test_enumerations_match():
    defs = SCHEMA["$defs"]
    assert set(defs["outcome"]["enum"]) == v.OUTCOMES
    assert {m.upper() for m in defs["http"]["properties"]["method"]["enum"]} == v.HTTP_METHODS
    assert set(defs["message"]["properties"]["broker"]["enum"]) == v.BROKERS
    assert set(defs["source"]["properties"]["broker"]["enum"]) == v.BROKERS
    assert set(defs["db"]["properties"]["fetch"]["enum"]) == v.FETCH_MODES
    assert {str(x) for x in defs["retry"]["properties"]["retry_on"]["items"]["enum"]} == v.RETRY_ON
    assert set(defs["rpc"]["properties"]["protocol"]["enum"]) == v.RPC_PROTOCOLS
    instruction_kinds = {next(iter(o["required"])) for o in defs["instruction"]["oneOf"]}
    assert instruction_kinds == v.INSTRUCTION_KINDS
    pollable = {kind for kind in v.INSTRUCTION_KINDS if gives_result(kind)}
    assert {next(iter(o["required"])) for o in defs["poll"]["oneOf"]} == pollable


FILES = sorted(p for p in (ROOT / "taskdefs").glob("*.yaml") if not is_script(p)) + sorted(
    (ROOT / "tests" / "taskdefs" / "valid").glob("*.yaml")
)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_shipped_files_validate_against_the_schema(path):
    root, problems = read_yaml(path.read_text(), str(path))
    assert problems == []
    errors = sorted(Draft202012Validator(SCHEMA).iter_errors(root.plain()), key=str)
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors]
