"""The durable state of Async States: definitions, runs and their append-only history.

Only ``taskapp.services`` writes these rows (``services.store`` on behalf of the engine);
``taskapp.selectors`` reads them. Indexes follow what the API and the engine query:
runs by task/status/state/time, due wake-ups, and events by correlation.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from engine.ids import time_ordered_uuid
from engine.runs import RunStatus


class TaskDefinition(models.Model):
    """One immutable version of a task, as loaded from YAML."""

    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField()
    description = models.TextField(blank=True)
    source = models.TextField(help_text="The YAML exactly as loaded.")
    source_path = models.CharField(max_length=500, blank=True)
    checksum = models.CharField(max_length=64, help_text="sha256 of the source text.")
    definition = models.JSONField(help_text="The parsed definition (engine's task_to_dict).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="taskdef_name_version")
        ]
        ordering = ["name", "-version"]
        # Dry runs (POST /api/tasks/simulate/) execute definitions a user sends.
        permissions = [("simulate_task", "Can simulate task")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Run(models.Model):
    """One execution of a task definition, pinned to the version it started with."""

    Status = models.TextChoices("Status", [(s.value, s.value) for s in RunStatus])

    id = models.UUIDField(primary_key=True, default=time_ordered_uuid, editable=False)
    definition = models.ForeignKey(TaskDefinition, on_delete=models.PROTECT, related_name="runs")
    task_name = models.CharField(max_length=200)
    task_version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices,
                              default=RunStatus.PENDING.value)
    state = models.CharField(max_length=200, blank=True, default="")
    state_entered_at = models.DateTimeField(null=True, blank=True)
    entry = models.PositiveIntegerField(default=0, help_text="How many states the run entered.")
    input = models.JSONField(default=dict, blank=True)
    data = models.JSONField(default=dict, blank=True)
    cursor = models.JSONField(default=dict, blank=True, help_text="Engine progress in state.")
    error = models.JSONField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    start_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    # Scheduling and exclusion: the next time anyone should look at the run; the worker
    # holding it and until when; a version bumped by every committed change (compare and
    # swap); a counter bumped by every event or control request, checked on release.
    wake_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveBigIntegerField(default=0)
    signal = models.PositiveBigIntegerField(default=0)
    # Poison runs and stuck workers: steps begun since the last one that ended cleanly
    # (bumped by the claim, so a worker killed mid-step is counted too; cleared when a step
    # gives the run back), the type of the last unexpected error, and when the current
    # holder claimed the run (empty while nobody holds it).
    crashes = models.PositiveSmallIntegerField(default=0)
    crash_error = models.CharField(max_length=200, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["task_name", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="run_idempotency_key",
            )
        ]
        indexes = [
            # The listing's filters, each in the listing's order (newest first, id as the
            # tiebreak), so a page is read off the index however much history matches or
            # does not: docs/api.md "Which filters are fast".
            models.Index(fields=["-created_at", "-id"], name="run_created"),
            models.Index(fields=["status", "-created_at", "-id"], name="run_status"),
            models.Index(fields=["status", "state", "-created_at", "-id"],
                         name="run_status_state"),
            models.Index(fields=["task_name", "status", "-created_at", "-id"],
                         name="run_task_status"),
            models.Index(fields=["-updated_at", "-id"], name="run_updated"),
            # Retention: only finished runs are ever in it, so unfinished ones cost nothing.
            models.Index(fields=["finished_at"], name="run_finished",
                         condition=Q(finished_at__isnull=False)),
            models.Index(
                fields=["wake_at"], name="run_wake", condition=Q(wake_at__isnull=False)
            ),
            # The health check's look for steps held far too long: only held runs are in it.
            models.Index(fields=["claimed_at"], name="run_claimed",
                         condition=Q(claimed_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} v{self.task_version} · {self.id}"

    @property
    def is_finished(self) -> bool:
        return RunStatus(self.status).finished


class Transition(models.Model):
    """One append-only history row: the run moved (or ended). Never updated."""

    # No index of its own: the unique (run, seq) constraint's index serves every lookup
    # by run, and a second one would cost every transition an index insert.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="transitions",
                            db_index=False)
    seq = models.PositiveIntegerField(help_text="Order within the run, from 1.")
    from_state = models.CharField(max_length=200, blank=True, default="")
    to_state = models.CharField(max_length=200, blank=True, default="")
    trigger = models.CharField(max_length=16)
    condition_kind = models.CharField(max_length=16, blank=True, default="")
    transition_index = models.IntegerField(null=True, blank=True)
    entry = models.PositiveIntegerField(default=0)
    at = models.DateTimeField()
    time_in_state = models.FloatField(default=0.0, help_text="Seconds spent in from_state.")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="transition_run_seq")]
        indexes = [models.Index(fields=["-at"], name="transition_at")]

    def __str__(self) -> str:
        return f"{self.from_state or '∅'} → {self.to_state or '∅'}"


class InstructionAttempt(models.Model):
    """One attempt of one instruction of one state entry."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="attempts")
    state = models.CharField(max_length=200)
    entry = models.PositiveIntegerField()
    instruction = models.CharField(max_length=200)
    kind = models.CharField(max_length=16)
    attempt = models.PositiveIntegerField()
    ok = models.BooleanField()
    started_at = models.DateTimeField()
    duration = models.FloatField(help_text="Seconds.")
    error = models.TextField(blank=True, default="")
    error_class = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        ordering = ["run", "started_at", "id"]


class PollRecord(models.Model):
    """All attempts of one poll condition in one state entry, aggregated into one row."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="polls")
    state = models.CharField(max_length=200)
    entry = models.PositiveIntegerField()
    transition_index = models.PositiveIntegerField()
    target = models.CharField(max_length=200)
    attempts = models.PositiveIntegerField()
    first_at = models.DateTimeField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16)
    last_result = models.JSONField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["run", "entry", "transition_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "entry", "transition_index"], name="poll_run_entry_transition"
            )
        ]


class Event(models.Model):
    """An event sent to the engine: addressed to one run, or carrying a correlation value.

    Kept until it expires (and, for an addressed event, until its run ends), so a run that
    reaches its subscribing state later still gets it. ``key`` deduplicates: an event whose
    key was already seen is ignored.
    """

    name = models.CharField(max_length=200)
    key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    correlation = models.CharField(max_length=500, null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # When its subscribers were signalled. Null between the event's commit and the wake-up's:
    # if the second never commits (the database went away), the timer finishes the job
    # (services.events.events_rewake), so no waiting run misses a stored event.
    woken_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["received_at", "id"]
        indexes = [
            models.Index(fields=["name", "correlation", "received_at"], name="event_corr"),
            models.Index(fields=["expires_at"], name="event_expires"),
            models.Index(fields=["received_at"], name="event_not_woken",
                         condition=Q(woken_at__isnull=True)),
        ]


class LifecycleEvent(models.Model):
    """The outbox: one lifecycle event (a CloudEvent, ``engine.lifecycle``) waiting to be
    published to one destination. Written in the transaction that commits its transition,
    deleted once the destination has it; deleted with its run by the retention purge.

    ``available_at`` is when a publisher may take it: a publisher that claims it moves it a
    lease ahead (another cluster takes it again only if that one died), a failed publish
    moves it past the destination's back-off.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="lifecycle_events")
    destination = models.CharField(max_length=500, help_text="engine.lifecycle.destination_key")
    event = models.JSONField()
    created_at = models.DateTimeField()
    available_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["available_at", "id"], name="lifecycle_available")]


class EventConsumption(models.Model):
    """Which run took which event (each run takes an event at most once)."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="consumptions")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="consumed_events")
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "run"], name="event_consumed_once")
        ]


class Subscription(models.Model):
    """A run, in its current state, waits for events of this name (and correlation)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="subscriptions")
    name = models.CharField(max_length=200)
    correlation = models.CharField(max_length=500, null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["name", "correlation"], name="subscription_lookup")]


class RetentionPolicy(models.Model):
    """How long finished runs are kept: one row, edited in the admin (``load()`` makes it).

    A task's YAML ``retention:`` overrides the days and the count for that task.
    ``manage.py purge_runs`` applies it, and so does a django-q2 schedule every
    ``purge_interval_minutes`` (0 turns the schedule off).
    """

    succeeded_days = models.PositiveIntegerField(
        default=30, help_text="Days to keep succeeded runs after they finish.")
    failed_days = models.PositiveIntegerField(
        default=90, help_text="Days to keep failed, timed-out and cancelled runs.")
    max_finished_runs_per_task = models.PositiveIntegerField(
        null=True, blank=True, help_text="Keep at most this many finished runs per task "
        "(the newest); empty: no limit.")
    purge_interval_minutes = models.PositiveIntegerField(
        default=60, help_text="How often the cluster purges on its own; 0: never.")
    batch_size = models.PositiveIntegerField(
        default=500, help_text="Runs deleted per transaction.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "retention policy"

    def __str__(self) -> str:
        return "Retention policy"

    @classmethod
    def load(cls) -> RetentionPolicy:
        """The policy row, or the defaults (unsaved) while nobody has saved one. A read:
        ``services.retention_policy_ensure`` is what creates the row."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class ClusterHeartbeat(models.Model):
    """The timer thread of each running cluster process beats here every few seconds, so
    the health check can tell a live cluster without a shared cache."""

    owner = models.CharField(max_length=200, unique=True, help_text="host:pid")
    beat_at = models.DateTimeField()
    started_at = models.DateTimeField()
    # The state of the cluster's broker listeners (engine.sources.listener), refreshed every
    # LISTENER_POLL_SECONDS: the health check and /metrics read it here, as they run in
    # another process.
    listeners = models.JSONField(default=list, blank=True)


class WorkerIncident(models.Model):
    """A worker process that is in trouble: a step it runs is stuck far past its budget,
    or it is being recycled for its memory. Rows exist only while something is wrong (and
    recycles for a day), so a healthy cluster writes none; ``GET /api/health/`` reads them.
    """

    Kind = models.TextChoices("Kind", [("stuck", "stuck"), ("recycled", "recycled")])

    owner = models.CharField(max_length=200, help_text="host:pid of the worker process")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    run_id = models.CharField(max_length=64, blank=True, default="")
    since = models.DateTimeField(help_text="When the step began, or when the recycle was due.")
    rss_mib = models.FloatField(null=True, blank=True, help_text="Peak resident size.")
    noted_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "kind"],
                                               name="worker_incident_owner_kind")]
