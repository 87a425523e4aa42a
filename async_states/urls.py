"""Top-level URLs: sign-in, the admin, the REST API (docs/api.md), metrics and the dashboard."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from taskapp.api.metrics import MetricsView

admin.site.site_header = "Async States administration"
admin.site.site_title = "Async States admin"
admin.site.index_title = "Tasks, runs and settings"

urlpatterns = [
    # One sign-in page for the dashboard, the API docs and the admin's users alike (the
    # admin's own login admits staff only; an operator with run permissions may not be).
    path("login/", auth_views.LoginView.as_view(template_name="dashboard/login.html",
                                                redirect_authenticated_user=True),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("favicon.ico", RedirectView.as_view(url=static("dashboard/favicon.svg"),
                                             permanent=True)),
    path("admin/", admin.site.urls),
    # Sign in and out for the browsable API (DRF's login link); before the API's catch-all.
    path("api/auth/", include("rest_framework.urls")),
    path("api/", include("taskapp.api.urls")),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("", include("dashboard.urls")),
]

# The API's JSON error shape for what fails outside its views (taskapp/api/errors.py).
handler400 = "taskapp.api.errors.handler400"
handler404 = "taskapp.api.errors.handler404"
handler500 = "taskapp.api.errors.handler500"
