from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        from dashboard.receivers import on_run_changed
        from taskapp.signals import run_changed

        run_changed.connect(on_run_changed, dispatch_uid="dashboard.run_changed")
