"""The parsed task definition: frozen data, built once by the loader, read by everyone else.

Nothing after ``engine.language.loader`` touches raw YAML dicts. Durations are ``timedelta``,
lists are tuples, templates and predicates are kept as their source text (they are compiled and
cached by ``engine.expressions``). Every node carries the ``Mark`` of where it was written so
that runtime errors can point back at the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """How a run ends when it reaches a final state."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a node was written: 1-based line and column in ``source``."""

    source: str = "<string>"
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}"


# --------------------------------------------------------------------------- instructions


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How an instruction is retried.

    ``retry_on`` names error classes: ``connection``, ``timeout``, ``conflict`` (a deadlock,
    gRPC ABORTED: the same call may succeed next time), ``5xx``, ``429``, ``4xx``, ``status``
    (any unexpected status) and ``error`` (any failure). The default retries transient
    failures only.
    """

    max_attempts: int = 3
    initial_delay: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    max_delay: timedelta = timedelta(seconds=60)
    jitter: bool = True
    retry_on: tuple[str, ...] = ("connection", "timeout", "conflict", "5xx", "429")


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True, slots=True)
class HttpAuth:
    """Basic auth (username/password) or a bearer token; values are templates."""

    kind: str  # "basic" | "bearer"
    username: str | None = None
    password: str | None = None
    token: str | None = None


@dataclass(frozen=True, slots=True)
class HttpSpec:
    """An HTTP request. String leaves of url/headers/query/json/form are templates."""

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, Any], ...] = ()
    query: tuple[tuple[str, Any], ...] = ()
    json: Any = None
    form: tuple[tuple[str, Any], ...] | None = None
    auth: HttpAuth | None = None
    expect: tuple[int, ...] = ()  # empty: any 2xx
    max_response_bytes: int = 1_048_576


@dataclass(frozen=True, slots=True)
class RpcSpec:
    """A remote procedure call: JSON-RPC 2.0 over HTTP (``url``, ``params``, ``headers``,
    ``auth``) or a gRPC unary call (``connection``, ``request``, ``metadata``,
    ``descriptor_set``); the parser keeps each protocol's fields to it."""

    method: str  # jsonrpc: the method (a template); grpc: package.Service/Method
    url: str | None = None
    params: Any = None
    protocol: str = "jsonrpc"  # "jsonrpc" | "grpc"
    headers: tuple[tuple[str, Any], ...] = ()
    auth: HttpAuth | None = None
    connection: str | None = None  # grpc: ASYNC_STATES_CONNECTION_<NAME>=grpc[s]://host:port
    request: Any = None  # grpc: the request message as JSON; string leaves are templates
    metadata: tuple[tuple[str, Any], ...] = ()  # grpc: values are templates
    descriptor_set: str | None = None  # grpc: a FileDescriptorSet file; None: reflection


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """Publish one message to a broker (``redis``, ``amqp``, ``mqtt``, ``nats``).

    The broker is reached through a named ``connection`` (configured in the environment) or,
    for tasks written before connections existed, a ``url`` template; exactly one is set.
    """

    broker: str
    to: str  # channel or stream, routing key, topic or subject (a template)
    connection: str | None = None  # a name: ASYNC_STATES_CONNECTION_<NAME> holds the URL
    url: str | None = None  # template; usually "{{ secrets.X }}"
    body: Any = None
    headers: tuple[tuple[str, Any], ...] = ()
    exchange: str | None = None  # amqp only; None: the default exchange
    qos: int = 1  # mqtt only
    retain: bool = False  # mqtt only
    jetstream: bool = False  # nats only: publish to JetStream and wait for its ack
    stream: bool = False  # redis only: XADD to the stream ``to`` instead of PUBLISH


@dataclass(frozen=True, slots=True)
class DbSpec:
    """One SQL statement with bound parameters against a database: a named ``connection``
    (configured in the environment) or a ``url`` template; exactly one is set."""

    query: str  # SQL text with %(name)s placeholders; never templated
    url: str | None = None  # template; usually "{{ secrets.X }}"
    connection: str | None = None  # a name: ASYNC_STATES_CONNECTION_<NAME> holds the URL
    params: tuple[tuple[str, Any], ...] = ()
    fetch: str = "all"  # "none" | "one" | "all"


@dataclass(frozen=True, slots=True)
class SetSpec:
    """Pure: write values (templates) at dotted paths into the run's data."""

    values: tuple[tuple[str, Any], ...]


InstructionSpec = HttpSpec | RpcSpec | MessageSpec | DbSpec | SetSpec


@dataclass(frozen=True, slots=True)
class Instruction:
    """One step of a state's ordered instruction list.

    Attributes:
        kind: ``http`` | ``rpc`` | ``message`` | ``db`` | ``set``.
        name: stable id within the state (defaults to ``<kind>_<index>``); used in history
            and in idempotency keys.
        spec: the kind's own fields.
        save_as: dotted path in the run's data where the result is written, if any.
        retry: retry policy (``set`` never retries).
        timeout: per-attempt timeout.
        on_error: state to go to when the instruction finally fails; ``None`` fails the run.
    """

    kind: str
    name: str
    spec: InstructionSpec
    save_as: str | None = None
    retry: RetryPolicy = NO_RETRY
    timeout: timedelta = timedelta(seconds=30)
    on_error: str | None = None
    mark: Mark = field(default=Mark(), compare=False)


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True, slots=True)
class WaitCondition:
    """Fulfilled after ``duration`` in the state, or at the time ``until`` renders to."""

    duration: timedelta | None = None
    until: str | None = None  # template rendering an ISO 8601 timestamp or epoch seconds


@dataclass(frozen=True, slots=True)
class Backoff:
    factor: float = 2.0
    max_interval: timedelta | None = None
    jitter: bool = True


@dataclass(frozen=True, slots=True)
class PollCondition:
    """Run ``instruction`` every ``every`` until the ``until`` predicate holds.

    Exhaustion (``max_attempts`` or ``max_duration``) goes to ``on_error`` or fails the run.
    An attempt that errors counts as an attempt and does not stop the poll.
    """

    instruction: Instruction
    every: timedelta
    until: str  # predicate over ``result`` (and input, data, run)
    backoff: Backoff | None = None
    max_attempts: int | None = None
    max_duration: timedelta | None = None
    on_error: str | None = None


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A broker that feeds a ``subscribe``: each message it delivers becomes an event.

    The destination is plain text (a listener has no run to render it against): an AMQP
    ``queue``, or an ``exchange`` and ``binding`` key (the queue is then declared for it); a
    Redis ``channel`` (pub/sub) or ``stream`` (read through the consumer ``group``); an MQTT
    ``topic`` (shared among the ``group``); a NATS ``subject`` (a queue ``group``), or with
    ``stream`` a JetStream durable consumer named ``group``. ``event``, ``correlation`` and
    ``id`` are templates over ``message`` that name, address and identify the event.
    """

    broker: str
    connection: str
    queue: str | None = None
    exchange: str | None = None
    binding: str | None = None
    channel: str | None = None
    stream: str | None = None
    topic: str | None = None
    subject: str | None = None
    group: str = "async_states"
    event: str | None = None  # template; None: the subscription's own event name
    correlation: str | None = None  # template; None: no correlation value
    id: str | None = None  # template; None: the message's own id, else a digest of it

    @property
    def key(self) -> tuple[str | None, ...]:
        """What makes two sources the same one: one listener serves every subscription
        that names it (the templates are per subscription)."""
        return (self.broker, self.connection, self.queue, self.exchange, self.binding,
                self.channel, self.stream, self.topic, self.subject, self.group)


@dataclass(frozen=True, slots=True)
class SubscribeCondition:
    """Fulfilled by an event named ``event`` addressed to the run, or carrying the
    correlation value ``correlate`` renders to at state entry, and for which ``match``
    (a predicate over ``event``, input, data) holds."""

    event: str
    correlate: str | None = None
    match: str | None = None
    save_as: str | None = None  # where the event's payload is written in data
    source: SourceSpec | None = None  # a broker whose messages become these events


@dataclass(frozen=True, slots=True)
class WhenCondition:
    """Fulfilled while ``predicate`` over the run's data holds."""

    predicate: str


Condition = WaitCondition | PollCondition | SubscribeCondition | WhenCondition


@dataclass(frozen=True, slots=True)
class Transition:
    """A legal transition out of a state. ``condition`` ``None``: taken at once."""

    target: str
    condition: Condition | None = None
    name: str | None = None
    mark: Mark = field(default=Mark(), compare=False)

    @property
    def condition_kind(self) -> str:
        return CONDITION_KIND_OF.get(type(self.condition), "always")


CONDITION_KIND_OF: dict[type, str] = {
    WaitCondition: "wait",
    PollCondition: "poll",
    SubscribeCondition: "subscribe",
    WhenCondition: "when",
}


# --------------------------------------------------------------------------- states and tasks


@dataclass(frozen=True, slots=True)
class State:
    """A state. Final states have an ``outcome`` and no instructions or transitions.

    ``timeout`` overrides the task's ``max_global_transition_timeout``; ``None`` on both
    means the state may wait forever. ``on_timeout`` routes the timeout instead of failing.
    """

    name: str
    instructions: tuple[Instruction, ...] = ()
    transitions: tuple[Transition, ...] = ()
    outcome: Outcome | None = None
    timeout: timedelta | None = None
    on_timeout: str | None = None
    description: str = ""
    mark: Mark = field(default=Mark(), compare=False)

    @property
    def is_final(self) -> bool:
        return self.outcome is not None


@dataclass(frozen=True, slots=True)
class Retention:
    """Per-task overrides of the admin's retention policy (days, counts)."""

    succeeded_days: int | None = None
    failed_days: int | None = None
    max_finished_runs: int | None = None


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Where a run's lifecycle events are published (``engine.lifecycle``).

    ``connection`` names a connection (``ASYNC_STATES_CONNECTION_<NAME>``): a broker's URL
    (amqp, mqtt, nats, redis), whose ``to`` is the routing key, topic, subject or channel
    and whose options are those of the ``message`` instruction; or an http(s) URL, a webhook,
    which takes neither.
    """

    connection: str
    to: str = ""
    exchange: str | None = None  # amqp only
    qos: int = 1  # mqtt only
    retain: bool = False  # mqtt only
    jetstream: bool = False  # nats only
    stream: bool = False  # redis only


@dataclass(frozen=True, slots=True)
class TaskDef:
    """A whole task definition, as loaded from one YAML document."""

    name: str
    version: int
    start_state: str
    states: tuple[State, ...]
    description: str = ""
    max_global_transition_timeout: timedelta | None = None
    deadline: timedelta | None = None
    input_schema: dict[str, Any] | None = None
    retention: Retention | None = None
    lifecycle: Lifecycle | None = None
    # The *name* of the secret (an environment variable, like ``secrets.NAME``) that third
    # parties present to send this task events without a user token; never its value.
    webhook_secret: str | None = None
    source: str = "<string>"

    def state(self, name: str) -> State:
        """The state called ``name``; ``KeyError`` when there is none."""
        for state in self.states:
            if state.name == name:
                return state
        raise KeyError(name)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    def timeout_for(self, state: State) -> timedelta | None:
        """The state's own timeout, else the task's global default."""
        return state.timeout if state.timeout is not None else self.max_global_transition_timeout
