"""How news of a run reaches the browsers: the one decision, made per configuration.

``layer``  The channel layer crosses processes (channels-redis, with ``REDIS_URL``): the
           ``run_changed`` receiver in whichever process committed (a cluster worker, mostly)
           does ``group_send("runs", ...)``, and each websocket consumer is in that group.
           Measured: docs/dashboard.md.
``poll``   The channel layer is the in-memory one, which never leaves its process, so a
           worker's ``group_send`` could not reach daphne. Instead each daphne process runs
           one poller (``dashboard.poller``) while a client is connected: every 0.5 s it reads
           the runs whose ``updated_at`` moved and hands them to its consumers. The receiver
           does nothing.

``settings.DASHBOARD_PUSH`` may force either; by default (``"auto"``) the in-memory layer
means ``poll`` and any other layer means ``layer``. Never both: each change is pushed once.
"""

from __future__ import annotations

from django.conf import settings

GROUP = "runs"
LAYER, POLL = "layer", "poll"


def mode() -> str:
    configured = getattr(settings, "DASHBOARD_PUSH", "auto")
    if configured in (LAYER, POLL):
        return configured
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return POLL if backend.endswith(".InMemoryChannelLayer") or not backend else LAYER
