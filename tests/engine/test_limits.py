"""Sizes of what a run carries: the measure, the edges of each limit, and the runner's
reaction to a result or data over its limit (the attempt fails, ``on_error`` routes it)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import instructions
from engine.clock import FakeClock
from engine.limits import SizeLimitExceeded, check_size, json_size
from engine.runner import EngineSettings, Runner
from engine.runs import EventRecord, RunStatus
from tests.engine.fakes import MemoryStore, ScriptedHttp, new_run, ok

POOL = ThreadPoolExecutor(max_workers=2)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_the_size_is_the_byte_length_of_compact_utf8_json(value):
    expected = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                   .encode("utf-8", "surrogatepass"))
    assert json_size(value) == expected


def test_non_ascii_counts_its_utf8_bytes():
    assert json_size({"k": "é"}) == len('{"k":""}') + 2
    assert json_size("😀") == 2 + 4


def test_a_value_at_the_limit_passes_and_one_byte_more_is_refused():
    at_limit = {"k": "x" * 92}  # {"k":"…"} is 8 bytes + 92
    assert check_size(at_limit, what="run data", limit=100, setting="MAX_DATA_BYTES") == 100
    with pytest.raises(SizeLimitExceeded) as info:
        check_size({"k": "x" * 93}, what="run data", limit=100, setting="MAX_DATA_BYTES")
    assert str(info.value) == (
        "run data is 101 bytes as JSON; the limit is 100 bytes (MAX_DATA_BYTES)")
    assert (info.value.size, info.value.limit, info.value.setting) == (101, 100,
                                                                       "MAX_DATA_BYTES")


def test_a_limit_of_zero_turns_the_check_off():
    assert check_size("x" * 1000, what="v", limit=0, setting="S") == 1002


def test_a_value_nested_too_deep_to_encode_is_refused_not_raised():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(SizeLimitExceeded, match="nested too deeply to measure"):
        check_size(deep, what="run data", limit=100, setting="MAX_DATA_BYTES")


# ---------------------------------------------------------------------------- the runner

TASK = """
name: sizes
version: 1
start_state: fetch
states:
  fetch:
    instructions:
      - name: call
        http: {url: "http://127.0.0.1:9/x"}
        save_as: reply
        on_error: too_big
    transitions:
      - to: grow
  grow:
    instructions:
      - name: pad
        set: {pad: "{{ input.pad }}"}
    transitions:
      - to: done
  done: {final: succeeded}
  too_big: {final: failed}
"""


def _runner(store, clock, **limits) -> Runner:
    return Runner(store=store, clock=clock, pool=POOL,
                  settings=EngineSettings(inline_retry_max_seconds=0.0, **limits))


@pytest.fixture
def http():
    original = instructions.executor_for("http")
    fake = ScriptedHttp([ok("x" * 1000)])
    instructions.register(fake, replace=True)
    yield fake
    instructions.register(original, replace=True)


def _result_size(body: str) -> int:
    return json_size({"status": 200, "body": body, "headers": {}})


def test_a_result_over_the_limit_fails_the_attempt_and_takes_on_error(store, clock, http):
    limit = _result_size("x" * 1000) - 1
    run = new_run(TASK, clock.now(), input={"pad": ""})
    _runner(store, clock, max_result_bytes=limit).advance(run)
    assert run.status is RunStatus.FAILED and run.state == "too_big"
    assert "reply" not in run.data
    assert store.path() == [(None, "fetch", "start"), ("fetch", "too_big", "error")]
    detail = store.transitions[-1].detail
    assert detail["message"] == (
        f"the result of instruction 'call' is {limit + 1:,} bytes as JSON; the limit is "
        f"{limit:,} bytes (MAX_RESULT_BYTES)")
    assert detail["instruction"] == "call" and detail["attempts"] == 1
    assert [(a.ok, a.error) for a in store.attempts] == [(False, detail["message"])]
    assert http.calls[0][1].max_result_bytes == limit  # the executor is told, to read less


def test_the_executor_is_told_the_descriptor_directory(store, clock, http):
    run = new_run(TASK, clock.now(), input={"pad": ""})
    _runner(store, clock, descriptor_dir="/srv/protos").advance(run)
    assert http.calls[0][1].descriptor_dir == "/srv/protos"  # where descriptor_set files are


def test_a_result_exactly_at_the_limit_is_kept(store, clock, http):
    run = new_run(TASK, clock.now(), input={"pad": ""})
    _runner(store, clock, max_result_bytes=_result_size("x" * 1000)).advance(run)
    assert run.status is RunStatus.SUCCEEDED and run.data["reply"]["body"] == "x" * 1000


def test_data_that_would_pass_its_limit_fails_the_instruction_that_grew_it(store, clock, http):
    http.answers = [ok("")]
    reply = {"status": 200, "body": "", "headers": {}}
    base = json_size({"reply": reply, "pad": ""})
    run = new_run(TASK, clock.now(), input={"pad": "y" * 50})
    _runner(store, clock, max_data_bytes=base + 49).advance(run)
    # A set has no on_error: the run fails, naming the instruction and the limit.
    assert run.status is RunStatus.FAILED and run.data == {"reply": reply}
    assert store.path()[-1] == ("grow", None, "error")
    assert run.error == {
        "code": "instruction_failed", "instruction": "pad", "state": "grow",
        "message": f"instruction 'pad' in state 'grow' failed after 1 attempt(s): run data "
                   f"(in state 'grow') is {base + 50:,} bytes as JSON; the limit is "
                   f"{base + 49:,} bytes (MAX_DATA_BYTES)"}

    store2, run2 = MemoryStore(), new_run(TASK, clock.now(), input={"pad": "y" * 50})
    _runner(store2, clock, max_data_bytes=base + 50).advance(run2)
    assert run2.status is RunStatus.SUCCEEDED and run2.data["pad"] == "y" * 50


SUBSCRIBE = """
name: sub
version: 1
start_state: wait
states:
  wait:
    transitions:
      - to: done
        subscribe: {event: big, save_as: got}
  done: {final: succeeded}
"""


def test_an_event_payload_that_would_pass_the_data_limit_fails_the_run(store, clock):
    store.events.append(EventRecord(id="1", name="big", payload={"v": "z" * 100},
                                    received_at=clock.now() - timedelta(seconds=1)))
    run = new_run(SUBSCRIBE, clock.now())
    _runner(store, clock, max_data_bytes=50).advance(run)
    size = json_size({"got": {"v": "z" * 100}})
    assert run.status is RunStatus.FAILED and run.state == "wait" and run.data == {}
    assert store.path() == [(None, "wait", "start"), ("wait", None, "error")]
    assert run.error == {
        "code": "size_limit", "state": "wait",
        "message": f"taking the transition to 'done' failed: run data (in state 'wait') is "
                   f"{size} bytes as JSON; the limit is 50 bytes (MAX_DATA_BYTES)"}
    assert store.consumed == []


keys = st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True)
paths = st.lists(keys, min_size=1, max_size=4).map(".".join)
# Text a set instruction keeps as it is, through YAML and back: no template syntax, no
# surrogates or control characters; quotes, backslashes and non-ASCII characters (2 and 3
# bytes in UTF-8) all grow differently in JSON.
plain = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFFFF,
                              blacklist_categories=("Cs", "Cc"), blacklist_characters="{}%#"),
                max_size=12)
set_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | plain,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)


@settings(deadline=None, max_examples=60)  # each example loads a task: ~10 ms, more when busy
@given(st.lists(st.tuples(paths, set_values), min_size=1, max_size=12),
       st.integers(min_value=20, max_value=400))
def test_data_kept_by_a_step_is_never_over_its_limit(saves, limit):
    """The runner measures data only when a bound on its growth says it may be over the
    limit: whatever the keys (quotes, non-ASCII, nesting) and values, what it keeps is
    never larger than the limit, and it refuses only what really is."""
    from engine.datapaths import set_path

    instructions_yaml = "\n".join(
        f"      - name: s{i}\n        set: {{{json.dumps(path)}: {json.dumps(value)}}}"
        for i, (path, value) in enumerate(saves))
    task = ("name: grow\nversion: 1\nstart_state: a\nstates:\n  a:\n    instructions:\n"
            f"{instructions_yaml}\n    transitions:\n      - to: done\n"
            "  done: {final: succeeded}\n")
    clock, store = FakeClock(), MemoryStore()
    run = new_run(task, clock.now())
    _runner(store, clock, max_data_bytes=limit).advance(run)
    assert json_size(run.data) <= limit
    if run.status is RunStatus.FAILED:  # the refused save really was over the limit
        failed = int(store.attempts[-1].instruction[1:])
        try:
            grown = set_path(run.data, *saves[failed])
        except (TypeError, ValueError):
            return  # a path through a non-mapping: refused for that, not for size
        assert json_size(grown) > limit


INTO_A_LIST = """
name: into_list
version: 1
start_state: a
states:
  a:
    instructions:
      - set: {items: [1, 2]}
      - name: deeper
        set: {items.first: 1}
    transitions:
      - to: done
  done: {final: succeeded}
"""


def test_a_save_through_a_value_that_is_not_a_mapping_fails_the_attempt(store, clock):
    run = new_run(INTO_A_LIST, clock.now())
    _runner(store, clock).advance(run)  # before: a TypeError escaped and crashed the step
    assert run.status is RunStatus.FAILED and run.data == {"items": [1, 2]}
    assert run.error["message"] == (
        "instruction 'deeper' in state 'a' failed after 1 attempt(s): cannot save the result "
        "of instruction 'deeper': cannot set 'items.first': 'items' is a list, not a mapping")
