"""The fault campaign's choices replay from its seed, and its hostile corpus is well formed
(the campaign itself runs in tests/e2e/test_faults.py)."""

from __future__ import annotations

import random

from bench.faults.campaign import LONG, QUICK, timeline
from bench.faults.fleet import FAULTS, KILLS
from bench.faults.hostile import CASES
from bench.faults.load import KINDS, expected_path
from bench.faults.report import failures


def test_a_seed_replays_the_same_timeline():
    first = timeline(LONG, random.Random(7))
    assert first == timeline(LONG, random.Random(7))
    assert first != timeline(LONG, random.Random(8))
    moments = [at for at, _, _ in first]
    assert moments == sorted(moments) and moments[-1] <= 0.9 * LONG.load_seconds


def test_the_long_campaign_has_twenty_kill_rounds_and_every_fault():
    assert sum(n for kind, n in LONG.faults.items() if kind in KILLS) >= 20
    assert set(LONG.faults) == set(FAULTS) == set(QUICK.faults)


def test_hostile_cases_are_named_once_and_build_their_bodies():
    assert len({case.name for case in CASES}) == len(CASES)
    for case in CASES:
        assert case.auth in {"user", "nobody", "anonymous"}
        assert case.path.startswith("/api/")
        assert case.body is None or isinstance(case.body(), bytes)


def test_every_kind_has_a_path_to_done():
    for kind in KINDS:
        path = expected_path(kind)
        assert path[0][0] == "" and path[-1][1] == "done"


def test_a_lost_run_or_a_finding_fails_the_campaign():
    clean = {"runs": {"lost": [], "applied_twice": []}, "calls": {}, "load": {},
             "findings": [], "processes_left": []}
    assert failures(clean) == {}
    assert failures({**clean, "runs": {"lost": ["k1"]}}) == {
        "runs lost (accepted, never created)": 1}
    assert failures({**clean, "load": {"server_errors": {"500": 2}}}) == {
        "500 answers to the load's requests": 2}
