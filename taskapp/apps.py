from django.apps import AppConfig


class TaskappConfig(AppConfig):
    name = "taskapp"
    verbose_name = "Async States"
    default_auto_field = "django.db.models.BigAutoField"
