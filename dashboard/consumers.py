"""``ws/runs/``: pushes run changes to a signed-in browser. Read-only.

Anonymous connections are accepted and closed at once with code 4401, so the page can tell
"signed out" (stop retrying, offer the login) from a network failure (retry).

Client to server (JSON):
    {"type": "since", "at": ISO}             catch up: every run changed after ``at``
    {"type": "watch", "run": ID, "after": N} follow one run only, with its transitions
                                             after seq N (the run detail page)
    {"type": "counts"}                       the counts now, at once (the task page, on
                                             every (re)connection; at most one answer per
                                             ``COUNTS_EVERY`` seconds per connection)
Server to client: ``hello`` ({"push": "layer" | "poll"}), ``run`` and ``counts`` messages
(``dashboard.messages``), and ``reload`` when a catch-up would reach ``CATCH_UP_LIMIT``
runs. A watched run's ``run`` messages carry every transition after the last one sent, read
from the database when the news itself did not carry them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils.dateparse import parse_datetime

from dashboard import messages, push, selectors
from dashboard.hub import COUNTS_EVERY, count, hub
from dashboard.poller import LOOKBACK

UNAUTHENTICATED = 4401
CATCH_UP_LIMIT = 200


class RunsConsumer(AsyncJsonWebsocketConsumer):
    wants_counts = True
    watching: str | None = None
    last_seq = 0
    joined = False
    counted_at = float("-inf")

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        if push.mode() == push.LAYER:
            await self.channel_layer.group_add(push.GROUP, self.channel_name)
        self.joined = True
        hub.join(self)
        await self.send_json({"type": "hello", "push": push.mode()})

    async def disconnect(self, code: int) -> None:
        if not self.joined:
            return
        hub.leave(self)
        if push.mode() == push.LAYER:
            await self.channel_layer.group_discard(push.GROUP, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not self.joined or not isinstance(content, dict):
            return
        if content.get("type") == "since":
            await self._catch_up(content.get("at"))
        elif content.get("type") == "watch":
            await self._watch(content.get("run"), content.get("after"))
        elif content.get("type") == "counts":
            await self._counts()

    async def run_changed(self, event: dict[str, Any]) -> None:
        """A ``run.changed`` message from the channel layer (``layer`` mode)."""
        hub.touched()
        await self.push(event["run"])

    async def push(self, message: dict[str, Any]) -> None:
        """Called by the hub (and ``run_changed``) with a ``run`` or ``counts`` message."""
        if message["type"] == "run" and self.watching is not None:
            if message["id"] != self.watching:
                return
            message = await self._with_history(message)
        await self.send_json(message)

    async def _catch_up(self, at: object) -> None:
        since = parse_datetime(at) if isinstance(at, str) else None
        if since is None:
            return
        # Reach back as the poller does: on PostgreSQL a change stamped before ``at`` may
        # commit after it. The page drops what it already has (it compares ``updated_at``).
        rows = await database_sync_to_async(selectors.runs_changed_after)(
            since - LOOKBACK, CATCH_UP_LIMIT)
        if len(rows) == CATCH_UP_LIMIT:  # away too long: a fresh page is cheaper and exact
            await self.send_json({"type": "reload"})
            return
        for row in rows:
            await self.send_json(messages.run(row))

    async def _counts(self) -> None:
        """Two GROUP BY queries: bounded per connection, so a client cannot loop on them."""
        if time.monotonic() - self.counted_at < COUNTS_EVERY:
            return
        self.counted_at = time.monotonic()
        await self.send_json(await database_sync_to_async(count)())

    async def _watch(self, run_id: object, after: object) -> None:
        try:
            self.watching = str(uuid.UUID(str(run_id)))
        except ValueError:
            return
        self.wants_counts = False
        self.last_seq = after if isinstance(after, int) and after >= 0 else 0
        row = await database_sync_to_async(selectors.run_row)(self.watching)
        if row is not None:
            await self.push(messages.run(row))

    async def _with_history(self, message: dict[str, Any]) -> dict[str, Any]:
        """The watched run's message with exactly the transitions after ``last_seq``."""
        carried = [t for t in message["transitions"] if t["seq"] > self.last_seq]
        if not carried or carried[0]["seq"] != self.last_seq + 1:
            rows = await database_sync_to_async(selectors.transitions_after)(
                self.watching, self.last_seq)
            carried = [messages.transition(t) for t in rows]
        if carried:
            self.last_seq = carried[-1]["seq"]
        return {**message, "transitions": carried}
