"""Top-level URLs: the admin, the REST API (docs/api.md), metrics and the dashboard."""

from django.contrib import admin
from django.urls import include, path

from taskapp.api.metrics import MetricsView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("taskapp.api.urls")),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("", include("dashboard.urls")),
]
