"""Websocket routes of the dashboard, imported by ``async_states.asgi``.

Empty for now: live pushes (run changes sent to browsers through the channel layer) come
with the dashboard issue. The page is server-rendered and reloads to show news.
"""

websocket_urlpatterns: list = []
