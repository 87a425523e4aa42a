"""ASGI entry point (daphne): HTTP through Django, websockets through the dashboard.

HTTP runs Django's WSGI handler on a fixed pool of long-lived threads
(``async_states/pooled_http.py``), so database connections persist and stay bounded; Django's
own ASGI handler would open one per request.

Daphne serves no static files, so the embedded mode (``make run``) has Django's
staticfiles handler serve ``/static/`` straight from the app and project folders
(the handler ``runserver`` uses): no ``collectstatic``, no extra dependency, and the admin
and dashboard are a few dozen small files. A deployment behind a web server or CDN sets
``SERVE_STATIC = False``, runs ``collectstatic`` and serves ``STATIC_ROOT`` there.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "async_states.settings")
django_wsgi_app = get_wsgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402

from async_states.pooled_http import PooledWSGI  # noqa: E402
from dashboard.origins import OriginValidator  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402
from taskapp.conf import conf  # noqa: E402

wsgi_app = django_wsgi_app
if getattr(settings, "SERVE_STATIC", True):
    wsgi_app = StaticFilesHandler(django_wsgi_app)

application = ProtocolTypeRouter(
    {
        "http": PooledWSGI(wsgi_app, threads=settings.WEB_THREADS,
                           max_body=int(conf.WEB_MAX_BODY_BYTES)),
        "websocket": OriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
