from django.apps import AppConfig


class TaskappConfig(AppConfig):
    name = "taskapp"
    verbose_name = "Async States"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from taskapp import (
            admin_retention,  # noqa: F401 - registers the retention policy
            checks,  # noqa: F401 - registers the system checks
        )
        from taskapp.retention_schedule import ensure_purge_schedule

        post_migrate.connect(ensure_purge_schedule, sender=self)
