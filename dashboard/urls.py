from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.index, name="index"),
    path("runs/<uuid:run_id>/", views.run_detail, name="run"),
    path("tasks/<str:name>/", views.task_detail, name="task"),
]
