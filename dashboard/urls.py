from django.urls import path

from dashboard import actions, dry_run, views

app_name = "dashboard"

urlpatterns = [
    path("", views.index, name="index"),
    path("overview/panels/", views.overview_panels, name="overview-panels"),
    path("runs/", views.runs, name="runs"),
    path("runs/<uuid:run_id>/", views.run_detail, name="run"),
    path("runs/<uuid:run_id>/panels/", views.run_panels, name="run-panels"),
    path("runs/<uuid:run_id>/cancel/", actions.cancel, name="run-cancel"),
    path("runs/<uuid:run_id>/redrive/", actions.redrive, name="run-redrive"),
    path("runs/<uuid:run_id>/events/", actions.send_event, name="run-event"),
    path("tasks/<str:name>/", views.task_detail, name="task"),
    path("tasks/<str:name>/simulate/", dry_run.simulate, name="task-simulate"),
]
