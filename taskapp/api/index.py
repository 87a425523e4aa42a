"""``GET /api/``: what the API offers, as links, and where to sign in. Open to anyone (it
holds no data), so a browser that lands on ``/api/`` learns where to go instead of a 404."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

# Name shown, URL name: the endpoints a client starts from (the rest hang off these).
ENTRIES = [
    ("runs", "api-runs"), ("events", "api-events"), ("tasks", "api-tasks"),
    ("tasks_validate", "api-tasks-validate"), ("tasks_simulate", "api-tasks-simulate"),
    ("health", "api-health"),
    ("schema", "api-schema"), ("docs", "api-docs"),
]


class ApiIndexView(APIView):
    """The API's entry points; the rest is in the schema (``/api/schema/``) and its UI."""

    permission_classes = [AllowAny]
    name = "Async States API"

    @extend_schema(exclude=True)
    def get(self, request):
        links = {key: reverse(name, request=request) for key, name in ENTRIES}
        signed_in = bool(request.user and request.user.is_authenticated)
        return Response({
            **links,
            "signed_in_as": request.user.get_username() if signed_in else None,
            "sign_in": reverse("rest_framework:login", request=request),
            "authentication": "a token (Authorization: Token …) or a signed-in session; "
                              "docs/api.md",
        })


class DocsView(SpectacularSwaggerView):
    """The Swagger UI. A browser without a session is sent to sign in and brought back here
    (a bare 401 page offered no way forward); a client with a token is served as before."""

    def handle_exception(self, exc):
        if isinstance(exc, NotAuthenticated) and \
                "text/html" in self.request.headers.get("Accept", ""):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)
