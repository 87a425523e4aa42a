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

# The API's JSON error shape for what fails outside its views (taskapp/api/errors.py).
handler400 = "taskapp.api.errors.handler400"
handler404 = "taskapp.api.errors.handler404"
handler500 = "taskapp.api.errors.handler500"
