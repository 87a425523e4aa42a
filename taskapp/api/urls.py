"""``/api/``: runs, events, tasks, health, and the OpenAPI schema with its UI."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from taskapp.api import diagrams, events, health, runs, simulate, tasks
from taskapp.api.errors import not_found

urlpatterns = [
    path("runs/", runs.RunListView.as_view(), name="api-runs"),
    path("runs/<str:pk>/", runs.RunDetailView.as_view(), name="api-run"),
    path("runs/<str:pk>/transitions/", runs.RunTransitionsView.as_view(),
         name="api-run-transitions"),
    path("runs/<str:pk>/attempts/", runs.RunAttemptsView.as_view(), name="api-run-attempts"),
    path("runs/<str:pk>/cancel/", runs.RunCancelView.as_view(), name="api-run-cancel"),
    path("runs/<str:pk>/redrive/", runs.RunRedriveView.as_view(), name="api-run-redrive"),
    path("runs/<str:pk>/events/", runs.RunEventsView.as_view(), name="api-run-events"),
    path("events/", events.EventSendView.as_view(), name="api-events"),
    path("tasks/", tasks.TaskListView.as_view(), name="api-tasks"),
    path("tasks/validate/", tasks.TaskValidateView.as_view(), name="api-tasks-validate"),
    path("tasks/simulate/", simulate.TaskSimulateView.as_view(), name="api-tasks-simulate"),
    path("tasks/<str:name>/", tasks.TaskDetailView.as_view(), name="api-task"),
    path("tasks/<str:name>/diagram/", diagrams.TaskDiagramView.as_view(),
         name="api-task-diagram"),
    path("tasks/<str:name>/events/", events.TaskEventSendView.as_view(),
         name="api-task-events"),
    path("health/", health.HealthView.as_view(), name="api-health"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Anything else under /api/ is a 404 in the API's JSON shape, not Django's HTML page.
    re_path(r"^.*$", not_found),
]
