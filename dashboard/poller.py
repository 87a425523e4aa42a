"""``poll`` mode's source of news: the runs whose row changed since the last look.

``read()`` is synchronous (the hub runs it through ``database_sync_to_async``) and costs one
indexed query (``run_updated``) when nothing changed, two when something did.

``updated_at`` is stamped in Python just before the row is written, so on PostgreSQL a
transaction can commit a stamp older than one already seen (two workers committing at once).
Each look therefore reaches back ``LOOKBACK`` before the newest stamp seen, and a run is sent
again only when its stamp moved. On SQLite (IMMEDIATE transactions) writers are serialised and
stamps commit in order; the look-back only costs re-reading a few rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dashboard import messages, selectors

LOOKBACK = timedelta(seconds=2)
# Runs read per look. When a look is full the next one starts after its last row (no
# look-back), so a burst is read page by page rather than re-read.
LIMIT = 500


class RunPoller:
    def __init__(self, since: datetime):
        self.start = since  # older news is the page's to catch up on (``since`` message)
        self.since = since  # the newest stamp seen
        self.floor = since  # the next look reads rows stamped after this
        self.seen: dict[str, tuple[datetime, int]] = {}  # run id -> (stamp sent, last seq)

    def read(self) -> list[dict[str, Any]]:
        """``run`` messages for the runs changed since the last look, oldest first."""
        rows = selectors.runs_changed_after(self.floor, LIMIT)
        floor = self.floor
        fresh = [row for row in rows if self._moved(row)]
        if rows:
            self.since = max(self.since, rows[-1]["updated_at"])
        self.floor = rows[-1]["updated_at"] if len(rows) == LIMIT else self.since - LOOKBACK
        if not fresh:
            return []
        history = selectors.transitions_of([row["id"] for row in fresh], floor - LOOKBACK)
        return [self._message(row, history.get(str(row["id"]), [])) for row in fresh]

    def _moved(self, row: dict[str, Any]) -> bool:
        known = self.seen.get(str(row["id"]))
        if known is None:
            return row["updated_at"] > self.start
        return known[0] < row["updated_at"]

    def _message(self, row: dict[str, Any], history: list[dict]) -> dict[str, Any]:
        key = str(row["id"])
        last_seq = self.seen.get(key, (None, 0))[1]
        new = [t for t in history if t["seq"] > last_seq]
        self.seen[key] = (row["updated_at"], new[-1]["seq"] if new else last_seq)
        return messages.run(row, new)

    def forget_old(self) -> None:
        """Drop what the look-back can no longer re-read (keeps ``seen`` small)."""
        horizon = self.floor - LOOKBACK
        self.seen = {k: v for k, v in self.seen.items() if v[0] > horizon}
