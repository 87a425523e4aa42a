"""``GET /metrics``: Prometheus text, for a signed-in user (Prometheus sends a token:
``authorization: {type: Token, credentials: ...}`` in its scrape config)."""

from __future__ import annotations

import json

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework.renderers import BaseRenderer
from rest_framework.views import APIView

from taskapp import metrics
from taskapp.api.runs import _errors


class PrometheusRenderer(BaseRenderer):
    """Text for the metrics; an error (a dict) as JSON text."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes | str):
            return data
        return json.dumps(data).encode()


class MetricsView(APIView):
    renderer_classes = [PrometheusRenderer]

    @extend_schema(summary="Prometheus metrics", responses={
        (200, "text/plain"): OpenApiResponse(str, description="Prometheus text format"),
        **_errors(401)})
    def get(self, request):
        return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
