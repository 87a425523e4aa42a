"""``manage.py qcluster``: django-q2's cluster plus the engine's timer thread.

This replaces django-q2's own command (taskapp comes first in INSTALLED_APPS): the cluster
is django-q2's, unchanged; the main process, which otherwise only waits for the Sentinel,
also fires the engine's due wake-ups.
"""

import os
import time

from django.conf import settings
from django.core.management.base import CommandError
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQCommand

from taskapp.timer import TimerThread


class Command(DjangoQCommand):
    help = "Starts a django-q2 cluster with the Async States timer thread."

    def handle(self, *args, **options):
        if not settings.SECRET_KEY:  # django-q2 signs payloads with it: fail early
            raise CommandError("SECRET_KEY is empty; the cluster cannot sign its tasks")
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        cluster = Cluster()
        cluster.start()
        timer = TimerThread()
        timer.start()  # after the Sentinel's fork: see taskapp.timer
        self.stdout.write(f"Async States cluster ready (pid {os.getpid()}): workers and timer "
                          "running", ending="\n")
        self.stdout.flush()
        try:
            if options.get("run_once", False):
                cluster.stop()
            while cluster.sentinel.is_alive():
                time.sleep(0.2)  # SIGTERM/SIGINT: django-q2's handler stops the Sentinel
        finally:
            timer.stop()
            timer.join(timeout=5)
