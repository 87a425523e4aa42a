"""``GET /api/health/``: is the database, the broker and a cluster alive? Open to anyone (a
load balancer has no user); says what is wrong, never anything secret."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from taskapp import dispatch, selectors
from taskapp.api import serializers as s
from taskapp.conf import conf
from taskapp.timer import HEARTBEAT_SECONDS


def _database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, f"{connection.vendor} answers"
    except Exception as exc:  # any failure means "down"; report it
        return False, f"{connection.vendor}: {type(exc).__name__}: {exc}"


def _broker() -> tuple[bool, str]:
    ok, info, depth = dispatch.broker_status()
    return ok, f"{info}; {depth} tasks queued" if ok else info


def _cluster() -> tuple[bool, str]:
    window = selectors.heartbeat_window(HEARTBEAT_SECONDS)
    try:
        beats = selectors.cluster_heartbeats(since=conf.clock.now() - window)
    except Exception as exc:  # the database is down: the cluster cannot be seen either
        return False, f"cannot read heartbeats: {type(exc).__name__}"
    if not beats:
        return False, (f"no cluster beat in the last {window.total_seconds():.0f}s: "
                       "start one with `manage.py qcluster`")
    ago = (conf.clock.now() - beats[0].beat_at) / timedelta(seconds=1)
    return True, f"{len(beats)} cluster process(es); last beat {ago:.1f}s ago"


CHECKS = {"database": _database, "broker": _broker, "cluster": _cluster}


class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(summary="Health of the database, the broker and the cluster",
                   auth=[], responses={200: s.HealthSerializer,
                                       503: OpenApiResponse(s.HealthSerializer)})
    def get(self, request):
        checks = {}
        for name, check in CHECKS.items():
            ok, detail = check()
            checks[name] = {"ok": ok, "detail": detail}
        healthy = all(c["ok"] for c in checks.values())
        body = {"status": "ok" if healthy else "unavailable", "checks": checks}
        return Response(body, status=200 if healthy else 503)
