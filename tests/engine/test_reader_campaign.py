"""The quick task-file campaign of ``make test``: a few hundred generated and mutated files,
each read in a child process, none raising, hanging, or taking over 1 s of CPU or 200 MB.
(The long campaign is ``python -m tests.hostile.taskfiles --count 10000``.)"""

from __future__ import annotations

from tests.hostile.taskfiles import campaign, make_file, read, seeds


def test_quick_campaign_finds_nothing():
    report = campaign(200, seed=7, hang_seconds=60)
    assert len(report.outcomes) == 200
    assert report.ok, report.summary()
    assert report.of_kind("problems")


def test_the_campaigns_valid_seeds_still_load():
    """Mutations rarely leave a file valid (about 1 in 150), so the campaign alone could not
    tell a reader that refuses everything: the unmutated valid seeds must load."""
    valid = [(name, data) for name, data in seeds()
             if name.startswith(("taskdefs/", "tests/taskdefs/valid/"))]
    assert len(valid) >= 3
    assert {name: read(data, name) for name, data in valid} == {
        name: "task" for name, _ in valid}


def test_a_series_is_reproducible():
    corpus = seeds()
    assert make_file(3, 41, corpus) == make_file(3, 41, corpus)
    assert make_file(3, 41, corpus) != make_file(3, 42, corpus)
