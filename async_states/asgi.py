"""ASGI entry point (daphne): HTTP through Django, websockets through the dashboard.

Daphne serves no static files, so the embedded mode (``make run``) has Django's
staticfiles handler serve ``/static/`` straight from the app and project folders
(the handler ``runserver`` uses): no ``collectstatic``, no extra dependency, and the admin
and dashboard are a few dozen small files. A deployment behind a web server or CDN sets
``SERVE_STATIC = False``, runs ``collectstatic`` and serves ``STATIC_ROOT`` there.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "async_states.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from dashboard.routing import websocket_urlpatterns  # noqa: E402

http_app = django_asgi_app
if getattr(settings, "SERVE_STATIC", True):
    http_app = ASGIStaticFilesHandler(django_asgi_app)

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
