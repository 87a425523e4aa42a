"""The quick fault campaign (``make faults QUICK=1``) inside ``make test``: the project's
processes on a private PostgreSQL and Redis, one fault of each kind under load through the
REST API, every hostile input of ``bench/faults/hostile.py``; then nothing may be lost,
duplicated, stuck or leaked, and no hostile input may get a 5xx, no answer, or a non-JSON
error (docs/reliability.md).

It brings its own PostgreSQL and Redis, so it runs once, in the SQLite pass of ``make test``;
without their binaries it is skipped (a failure under ``REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.conf import settings

from bench.faults.report import failures, table
from bench.faults.services import require_binaries
from tests.e2e.conftest import ROOT
from tests.services import require_service

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(600)
def test_quick_fault_campaign_loses_nothing_and_has_no_findings(tmp_path):
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.skip("the campaign brings its own PostgreSQL: it runs in the SQLite pass")
    require_service("PostgreSQL server binaries and redis-server", require_binaries)
    out = tmp_path / "faults.json"
    finished = subprocess.run(
        [sys.executable, "-m", "bench.faults", "--quick", "--json", str(out)], cwd=ROOT,
        capture_output=True, text=True, timeout=540)
    assert out.exists(), finished.stdout[-3000:] + finished.stderr[-3000:]
    result = json.loads(out.read_text())
    assert sum(f["kind"] in {"cluster_kill", "worker_kill"} for f in result["faults"]) >= 2
    assert result["runs"]["runs"] == result["load"]["accepted"] > 0
    bad = failures(result)
    assert not bad, table(result)
    assert finished.returncode == 0, finished.stderr[-3000:]
