"""The quick task-file campaign of ``make test``: a few hundred generated and mutated files,
each read in a child process, none raising, hanging, or taking over 1 s of CPU or 200 MB.
(The long campaign is ``python -m tests.hostile.taskfiles --count 10000``.)"""

from __future__ import annotations

from tests.hostile.taskfiles import campaign, make_file, seeds


def test_quick_campaign_finds_nothing():
    report = campaign(200, seed=7, hang_seconds=60)
    assert len(report.outcomes) == 200
    assert report.ok, report.summary()
    assert report.of_kind("task") and report.of_kind("problems")


def test_a_series_is_reproducible():
    corpus = seeds()
    assert make_file(3, 41, corpus) == make_file(3, 41, corpus)
    assert make_file(3, 41, corpus) != make_file(3, 42, corpus)
