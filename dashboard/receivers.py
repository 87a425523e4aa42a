"""The dashboard hears ``taskapp.signals.run_changed`` (after commit). In ``layer`` mode it
sends the change to the ``runs`` group of the channel layer, which crosses processes
(channels-redis): from a cluster worker to the websocket consumers in daphne. It goes through
``dashboard.sender``, so the worker that committed never waits for Redis. In ``poll`` mode it
does nothing: daphne's poller reads the change from the database (``dashboard.push``).
"""

from __future__ import annotations

from typing import Any

from dashboard import messages, push
from dashboard.sender import sender as layer_sender


def on_run_changed(sender: object, **payload: Any) -> None:
    if push.mode() != push.LAYER:
        return
    layer_sender.send(push.GROUP,
                      {"type": "run.changed", "run": messages.run_from_signal(payload)})
