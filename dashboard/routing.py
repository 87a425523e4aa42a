"""Websocket routes of the dashboard, imported by ``async_states.asgi`` (behind the
allowed-hosts origin check and session authentication)."""

from django.urls import path

from dashboard.consumers import RunsConsumer

websocket_urlpatterns = [
    path("ws/runs/", RunsConsumer.as_asgi()),
]
