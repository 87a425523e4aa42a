"""The run listing reads a page off an index for every filter docs/api.md calls fast, so its
latency does not grow with history (bench/scenarios/growth.py measures that). PostgreSQL is
told to avoid sorts and full scans; a plan that still sorts means no index serves the filter
in the listing's order (as with the DISTINCT django-filter once added, or an index missing)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

FAST = [
    "",
    "status=failed",
    "status=failed&state=expired",
    "status=waiting&state=awaiting_payment&in_state_longer_than=1h",
    "task=shop_order&status=failed",
    "ordering=-updated_at",
]


def _nodes(plan: dict) -> list[str]:
    return [plan["Node Type"], *(n for child in plan.get("Plans", []) for n in _nodes(child))]


def _listing_plan(api, query: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert api.get(f"/api/runs/?{query}").status_code == 200
    sql = next(q["sql"] for q in queries.captured_queries if 'FROM "taskapp_run"' in q["sql"])
    with connection.cursor() as cur:
        for knob in ("enable_sort", "enable_seqscan", "enable_bitmapscan"):
            cur.execute(f"SET LOCAL {knob} = off")
        cur.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        return _nodes(cur.fetchone()[0][0]["Plan"])  # psycopg2 decodes the JSON


@pytest.mark.parametrize("query", FAST)
def test_fast_filters_read_the_page_off_an_index(api, failed, query):
    if connection.vendor != "postgresql":
        pytest.skip("query plans are checked on PostgreSQL (make test's second pass)")
    nodes = _listing_plan(api, query)
    assert not {"Sort", "Incremental Sort", "Unique", "Seq Scan"} & set(nodes), nodes
