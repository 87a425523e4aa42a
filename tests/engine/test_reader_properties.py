"""Property tests of the task-file reader: whatever the bytes, a definition or problems.

Random bytes, random text, YAML-looking token soup and mutated task files (the campaign's
own mutations: byte flips, duplication, truncation, deep nesting, alias bombs, huge numbers,
giant strings, tags, encodings) all end in a ``Report`` — a definition, or problems with
file:line:column — and ``load_text`` raises nothing but ``SpecError``. Each reading stays
under a generous bound of CPU time (the 1 s of docs/reliability.md, "The task-file campaign").
"""

from __future__ import annotations

import random
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import SpecError
from engine.language import load_text, validate_text
from tests.hostile.mutations import MUTATIONS, TOKENS, generate, without_power
from tests.hostile.taskfiles import read, seeds

CORPUS = seeds()
CPU_SECONDS = 1.0
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _reads_cleanly(data: bytes) -> None:
    started = time.process_time()
    assert read(data) in ("task", "problems")
    assert time.process_time() - started < CPU_SECONDS


def _problems_are_placed(text: str) -> None:
    report = validate_text(text, "p.yaml")
    assert (report.task is None) == bool(report.errors)
    for problem in report.problems:
        assert problem.line >= 1 and problem.column >= 1
        assert str(problem).startswith(f"p.yaml:{problem.line}:{problem.column}: ")
    try:
        load_text(text, "p.yaml")
    except SpecError as exc:
        assert exc.problems
    else:
        assert report.task is not None


@SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes_end_in_a_report(data):
    _reads_cleanly(data)


@SETTINGS
@given(st.text(max_size=2000))
def test_random_text_ends_in_placed_problems(text):
    _problems_are_placed(text)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=300))
def test_yaml_looking_text_ends_in_placed_problems(tokens):
    _problems_are_placed("".join(tokens))


@SETTINGS
@given(st.sampled_from(CORPUS), st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1,
                                         max_size=3), st.randoms(use_true_random=False))
def test_mutated_task_files_end_in_a_report(seed, steps, rng):
    data = seed[1]
    for step in steps:
        data = MUTATIONS[step](rng, data)[: 2 * 1024 * 1024]
    _reads_cleanly(without_power(data))


@SETTINGS
@given(st.integers(min_value=0, max_value=2**32))
def test_generated_files_end_in_a_report(number):
    made, data = generate(random.Random(number), CORPUS)
    _reads_cleanly(data)
