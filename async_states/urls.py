"""Top-level URLs: the admin, the REST API and the dashboard."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("taskapp.api.urls")),
    path("", include("dashboard.urls")),
]
