"""What the API reads in and writes out. Input serializers only parse; output serializers
only format. Engine-private run columns (cursor, lease, version, signal) are never shown."""

from __future__ import annotations

import math

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from engine.errors import Severity
from engine.runs import FINISHED, in_order
from taskapp import models
from taskapp.conf import conf

# ---------------------------------------------------------------------------- inputs


class TextField(serializers.CharField):
    """A JSON string. DRF's ``CharField`` also takes a number and reads it as its digits;
    the schema says string, and a client sending ``"source": 0`` has a bug worth a 400.
    Its ``max_length`` is the schema's ``maxLength``, so it counts the string as sent: DRF
    would count it after trimming whitespace (``\x1e`` and other separators included)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class NumberField(serializers.FloatField):
    """A finite JSON number. DRF's ``FloatField`` also takes ``false`` (0.0) and strings,
    ``"nan"`` and ``"inf"`` among them, which pass its min and max checks (NaN compares
    false with everything)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float) or \
                not math.isfinite(data):
            self.fail("invalid")
        return super().to_internal_value(data)


# ---------------------------------------------------------------------------- errors


class ErrorSerializer(serializers.Serializer):
    """Every error response (taskapp/api/errors.py)."""

    code = serializers.CharField(help_text="Stable, for programs: e.g. run_conflict.")
    message = serializers.CharField(help_text="For people.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field errors: field name to messages; empty when none.")


# ---------------------------------------------------------------------------- runs


class RunStartSerializer(serializers.Serializer):
    task = TextField(max_length=200, help_text="The task's name.")
    version = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, allow_null=True,
        help_text="The task version; the latest when absent.")
    input = serializers.DictField(
        required=False, default=dict, help_text="Checked against the task's input_schema.")
    idempotency_key = TextField(
        max_length=200, required=False, allow_null=True, allow_blank=False,
        help_text="The same key for the same task returns the run it started (200).")
    start_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Start later, at this time.")


class RunSerializer(serializers.ModelSerializer):
    task = serializers.CharField(source="task_name")
    version = serializers.IntegerField(source="task_version")
    time_in_state = serializers.SerializerMethodField(
        help_text="Seconds in the current state so far (until it ended, for a finished run).")
    outcome = serializers.SerializerMethodField(
        help_text="How the run ended; null while it is unfinished.")
    next_wake_at = serializers.SerializerMethodField(
        help_text="When the engine looks at the run next (a timer, a poll, a backstop).")

    class Meta:
        model = models.Run
        fields = [
            "id", "task", "version", "status", "state", "state_entered_at", "time_in_state",
            "entry", "input", "data", "error", "outcome", "metrics", "idempotency_key",
            "cancel_requested", "created_at", "start_at", "updated_at", "finished_at",
            "deadline_at", "next_wake_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_time_in_state(self, run: models.Run) -> float | None:
        if run.state_entered_at is None:
            return None
        until = run.finished_at or conf.clock.now()
        return round(max(0.0, (until - run.state_entered_at).total_seconds()), 3)

    @extend_schema_field(serializers.ChoiceField(
        choices=[str(s) for s in in_order(FINISHED)], allow_null=True))
    def get_outcome(self, run: models.Run) -> str | None:
        return run.status if run.is_finished else None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_wake_at(self, run: models.Run) -> str | None:
        if run.is_finished or run.wake_at is None:
            return None
        return serializers.DateTimeField().to_representation(run.wake_at)


class RedriveSerializer(serializers.Serializer):
    state = TextField(
        max_length=200, required=False, allow_null=True,
        help_text="The state to start again from; the one where the run stopped when absent.")


class TransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.Transition
        fields = ["seq", "from_state", "to_state", "trigger", "condition_kind",
                  "transition_index", "entry", "at", "time_in_state", "detail"]
        read_only_fields = fields


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.InstructionAttempt
        fields = ["state", "entry", "instruction", "kind", "attempt", "ok", "started_at",
                  "duration", "error", "error_class"]
        read_only_fields = fields


# ---------------------------------------------------------------------------- events


class EventInSerializer(serializers.Serializer):
    name = TextField(max_length=200)
    id = TextField(
        max_length=200, required=False, allow_null=True,
        help_text="A dedupe id: an event whose id was seen before is ignored (200).")
    data = serializers.JSONField(required=False, default=dict, allow_null=True,
                                 help_text="The payload (null: none).")
    ttl = NumberField(
        min_value=0, max_value=366 * 86400, required=False, allow_null=True,
        help_text="Seconds the event is kept for runs that subscribe later (default 1 day).")


class EventBroadcastSerializer(EventInSerializer):
    correlation = TextField(
        max_length=500, required=False, allow_null=True,
        help_text="Delivered to every run that subscribes to this name and correlation value.")
    run = serializers.UUIDField(
        required=False, allow_null=True,
        help_text="Or buffered for this run only, until it subscribes.")

    def validate(self, attrs):
        if attrs.get("run") and attrs.get("correlation") is not None:
            raise serializers.ValidationError(
                {"run": ["name a run or give a correlation value, not both"]})
        return attrs


class EventSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="key", allow_null=True, help_text="The dedupe id, if any.")
    data = serializers.JSONField(source="payload")
    run = serializers.UUIDField(source="run_id", allow_null=True)
    duplicate = serializers.SerializerMethodField(
        help_text="True when an event with this id had been received before (nothing sent).")

    class Meta:
        model = models.Event
        fields = ["id", "name", "run", "correlation", "data", "received_at", "expires_at",
                  "duplicate"]
        read_only_fields = fields

    def get_duplicate(self, event: models.Event) -> bool:
        return bool(self.context.get("duplicate"))


# ---------------------------------------------------------------------------- tasks


class TaskSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    latest_version = serializers.IntegerField()
    versions = serializers.IntegerField(help_text="How many versions are loaded.")
    description = serializers.CharField()
    updated_at = serializers.DateTimeField(help_text="When the latest version was loaded.")


class TaskVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.TaskDefinition
        fields = ["version", "description", "checksum", "source_path", "created_at"]
        read_only_fields = fields


class InstructionNodeSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()


class StateNodeSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    final = serializers.BooleanField()
    outcome = serializers.CharField(allow_null=True)
    instructions = InstructionNodeSerializer(many=True)
    timeout = serializers.FloatField(allow_null=True, help_text="Seconds.")
    on_timeout = serializers.CharField(allow_null=True)


class TransitionEdgeSerializer(serializers.Serializer):
    source = serializers.CharField()
    target = serializers.CharField()
    index = serializers.IntegerField(help_text="Its position among the state's transitions.")
    name = serializers.CharField(allow_null=True)
    condition_kind = serializers.CharField(help_text="always, wait, when, poll or subscribe.")


class TaskGraphSerializer(serializers.Serializer):
    start_state = serializers.CharField()
    states = StateNodeSerializer(many=True)
    transitions = TransitionEdgeSerializer(many=True)


class TaskDetailSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField(help_text="The version the graph shows.")
    description = serializers.CharField()
    versions = TaskVersionSerializer(many=True)
    graph = TaskGraphSerializer()
    runs_by_status = serializers.DictField(child=serializers.IntegerField())
    runs_in_state = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text="Unfinished runs now: state to status to count.")


class ValidateInSerializer(serializers.Serializer):
    text = TextField(
        allow_blank=True, max_length=1_000_000, trim_whitespace=False,
        help_text="The YAML of one task.")
    source = TextField(
        required=False, default="<api>", max_length=500, help_text="A file name for messages.")


class ProblemSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    column = serializers.IntegerField()
    path = serializers.CharField()
    message = serializers.CharField()
    severity = serializers.ChoiceField(choices=[str(s) for s in Severity])


class ValidateOutSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="No errors (warnings may remain).")
    task = serializers.CharField(allow_null=True)
    version = serializers.IntegerField(allow_null=True)
    problems = ProblemSerializer(many=True)


# ---------------------------------------------------------------------------- simulate


class ScriptField(serializers.JSONField):
    """A script as a JSON object, or its YAML (or JSON) text."""

    def to_internal_value(self, data):
        if not isinstance(data, dict | str):
            raise serializers.ValidationError(
                "a script is a JSON object or its YAML text (docs/simulate.md)")
        return data


class SimulateInSerializer(serializers.Serializer):
    task = TextField(max_length=200, required=False, help_text="A loaded task's name.")
    version = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, allow_null=True,
        help_text="A loaded version of ``task`` (default: the latest).")
    text = TextField(
        max_length=1_000_000, required=False, trim_whitespace=False,
        help_text="The YAML of a task not loaded (instead of ``task``).")
    input = serializers.DictField(required=False, allow_null=True, default=None,
                                  help_text="The run's input (default: the script's).")
    script = ScriptField(help_text="What the world does (docs/simulate.md).")

    def validate(self, attrs):
        if ("task" in attrs) == ("text" in attrs):
            raise serializers.ValidationError({"task": [
                "give either task (a loaded task's name) or text (a task's YAML)"]})
        return attrs


class SimTransitionSerializer(serializers.Serializer):
    from_state = serializers.CharField(allow_null=True)
    to_state = serializers.CharField(allow_null=True)
    trigger = serializers.CharField()
    at = serializers.DateTimeField()
    elapsed = serializers.FloatField(help_text="Virtual seconds since the start.")
    condition_kind = serializers.CharField(allow_blank=True)
    transition_index = serializers.IntegerField(allow_null=True)
    time_in_state = serializers.FloatField()
    entry = serializers.IntegerField()
    detail = serializers.JSONField()


class SimAttemptSerializer(serializers.Serializer):
    state = serializers.CharField()
    entry = serializers.IntegerField()
    instruction = serializers.CharField()
    kind = serializers.CharField()
    attempt = serializers.IntegerField()
    ok = serializers.BooleanField()
    at = serializers.DateTimeField()
    elapsed = serializers.FloatField()
    error = serializers.CharField(allow_blank=True)
    error_class = serializers.CharField(allow_blank=True)


class SimPollSerializer(serializers.Serializer):
    state = serializers.CharField()
    entry = serializers.IntegerField()
    transition_index = serializers.IntegerField()
    target = serializers.CharField()
    attempts = serializers.IntegerField()
    outcome = serializers.CharField()
    first_at = serializers.DateTimeField(allow_null=True)
    last_at = serializers.DateTimeField(allow_null=True)
    last_result = serializers.JSONField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)


class SimulationSerializer(serializers.Serializer):
    task = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.CharField(help_text="As the run would be stored: waiting when it "
                                   "did not finish.")
    state = serializers.CharField(allow_null=True)
    data = serializers.JSONField()
    error = serializers.JSONField(allow_null=True)
    end = serializers.ChoiceField(choices=["finished", "stuck", "until", "bound"])
    bound = serializers.ChoiceField(
        choices=["steps", "transitions", "virtual_time", "wall_time"], allow_null=True,
        help_text="The bound hit, when end is bound.")
    message = serializers.CharField()
    start = serializers.DateTimeField()
    now = serializers.DateTimeField(help_text="The virtual time it stopped at.")
    elapsed = serializers.FloatField()
    steps = serializers.IntegerField()
    transitions = SimTransitionSerializer(many=True)
    attempts = SimAttemptSerializer(many=True)
    polls = SimPollSerializer(many=True)
    consumed_events = serializers.ListField(child=serializers.CharField())


# ---------------------------------------------------------------------------- health


class CheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    checks = serializers.DictField(child=CheckSerializer())
