"""``manage.py ensure_admin [--port N]``: make sure someone can sign in to the admin.

No fixed password ever ships: the first admin gets a random one, shown once, unless
DJANGO_SUPERUSER_USERNAME / DJANGO_SUPERUSER_PASSWORD name them.
"""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create an admin login (user 'admin', random password) unless a superuser exists."

    def add_arguments(self, parser):
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"),
                            help="The port printed in the sign-in URL (default: $PORT or 8000).")

    def handle(self, *args, port, **options):
        users = get_user_model()
        existing = users.objects.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            self.stdout.write(f"Admin login exists (user {existing.get_username()}).")
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        given = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        password = given or secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        shown = "from DJANGO_SUPERUSER_PASSWORD" if given else (
            f"{password} (shown once; change it in the admin)")
        self.stdout.write(
            f"Admin login: http://127.0.0.1:{port}/admin/ user {username} password {shown}"
        )
