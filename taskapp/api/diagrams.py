"""``GET /api/tasks/{name}/diagram/``: a task's state diagram as SVG, Graphviz DOT or Mermaid.

The format is chosen like any DRF format: ``?format=svg|dot|mermaid`` or the ``Accept``
header (``image/svg+xml``, ``text/vnd.graphviz``, ``text/vnd.mermaid``); SVG by default.
Errors keep the API's JSON shape whatever was asked for. Reading needs a signed-in user, as
for every task endpoint.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from engine.diagram import render
from taskapp import selectors
from taskapp.api.runs import _errors
from taskapp.api.tasks import _version


class _TextRenderer(BaseRenderer):
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return data.encode(self.charset) if isinstance(data, str) else b""


class SvgRenderer(_TextRenderer):
    media_type, format = "image/svg+xml", "svg"


class DotRenderer(_TextRenderer):
    media_type, format = "text/vnd.graphviz", "dot"


class MermaidRenderer(_TextRenderer):
    media_type, format = "text/vnd.mermaid", "mermaid"


class TaskDiagramView(APIView):
    renderer_classes = [SvgRenderer, DotRenderer, MermaidRenderer]

    @extend_schema(
        summary="A task's state diagram (SVG, Graphviz DOT or Mermaid)",
        parameters=[
            OpenApiParameter("format", str, enum=["svg", "dot", "mermaid"],
                             description="The drawing's format (default svg); the Accept "
                                         "header may choose it instead."),
            OpenApiParameter("version", {"type": "integer", "minimum": 1,
                                         "maximum": 2**31 - 1},
                             description="The diagram of this version (default: the latest)."),
        ],
        responses={
            (200, "image/svg+xml"): OpenApiResponse(OpenApiTypes.STR, description="SVG"),
            (200, "text/vnd.graphviz"): OpenApiResponse(OpenApiTypes.STR, description="DOT"),
            (200, "text/vnd.mermaid"): OpenApiResponse(OpenApiTypes.STR,
                                                       description="Mermaid flowchart"),
            # Errors are JSON, not one of the drawing formats this view renders.
            **{(code, "application/json"): response
               for code, response in _errors(400, 401, 404).items()},
        },
    )
    def get(self, request, name):
        version = _version(request.query_params.get("version"))
        definition = selectors.task_definition(name=name, version=version)
        if definition is None:
            which = f"version {version} of task '{name}'" if version else f"task '{name}'"
            raise NotFound(f"{which} is not loaded", code="task_not_found")
        task = selectors.definition_of(definition.pk)
        return Response(render(task, request.accepted_renderer.format))

    def finalize_response(self, request, response, *args, **kwargs):
        """Errors are JSON, in the API's one shape, whichever drawing was asked for."""
        if response.status_code >= 400 or not hasattr(request, "accepted_renderer"):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
