"""Every key and enumerated value the task language accepts, one frozenset per object.

The parser checks keys against these sets, and ``tests/engine/test_schema_sync.py`` checks that
``docs/taskdef.schema.json`` lists exactly the same properties, so the parser, the schema and
the docs cannot drift apart.
"""

from __future__ import annotations

TASK_KEYS = frozenset(
    {
        "name",
        "version",
        "description",
        "start_state",
        "max_global_transition_timeout",
        "deadline",
        "input_schema",
        "retention",
        "lifecycle",
        "webhook_secret",
        "final_states",
        "states",
    }
)
STATE_KEYS = frozenset(
    {"description", "instructions", "timeout", "on_timeout", "transitions", "final"}
)
RETENTION_KEYS = frozenset({"succeeded_days", "failed_days", "max_finished_runs"})
# Where a run's lifecycle events go (engine.lifecycle): a named connection, and for a broker
# the destination and that broker's options (BROKER_ONLY_KEYS); a webhook takes none.
LIFECYCLE_KEYS = frozenset(
    {"connection", "to", "exchange", "qos", "retain", "jetstream", "stream"}
)
OUTCOMES = frozenset({"succeeded", "failed"})

# Instructions: exactly one kind key, plus options.
INSTRUCTION_KINDS = frozenset({"http", "rpc", "message", "db", "set"})
INSTRUCTION_OPTIONS = frozenset({"name", "save_as", "timeout", "retry", "on_error"})
INSTRUCTION_KEYS = INSTRUCTION_KINDS | INSTRUCTION_OPTIONS
SET_FORBIDDEN_OPTIONS = frozenset({"save_as", "timeout", "retry", "on_error"})

HTTP_KEYS = frozenset(
    {"method", "url", "headers", "query", "json", "form", "auth", "expect", "max_response_bytes"}
)
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
AUTH_KEYS = frozenset({"basic", "bearer"})
BASIC_AUTH_KEYS = frozenset({"username", "password"})
RPC_KEYS = frozenset(
    {
        "url",
        "method",
        "params",
        "protocol",
        "headers",
        "auth",
        "connection",
        "request",
        "metadata",
        "descriptor_set",
    }
)
RPC_PROTOCOLS = frozenset({"jsonrpc", "grpc"})
# The rpc keys that only one protocol understands (the others are shared: method, protocol).
PROTOCOL_ONLY_KEYS = {
    "url": "jsonrpc",
    "params": "jsonrpc",
    "headers": "jsonrpc",
    "auth": "jsonrpc",
    "connection": "grpc",
    "request": "grpc",
    "metadata": "grpc",
    "descriptor_set": "grpc",
}
MESSAGE_KEYS = frozenset(
    {
        "broker",
        "connection",
        "url",
        "to",
        "exchange",
        "body",
        "headers",
        "qos",
        "retain",
        "jetstream",
        "stream",
    }
)
BROKERS = frozenset({"redis", "amqp", "mqtt", "nats"})
# The message keys that only one broker understands.
BROKER_ONLY_KEYS = {
    "exchange": "amqp",
    "qos": "mqtt",
    "retain": "mqtt",
    "jetstream": "nats",
    "stream": "redis",
}
DB_KEYS = frozenset({"connection", "url", "query", "params", "fetch"})
FETCH_MODES = frozenset({"none", "one", "all"})

RETRY_KEYS = frozenset(
    {"max_attempts", "initial_delay", "factor", "max_delay", "jitter", "retry_on"}
)
RETRY_ON = frozenset(
    {"connection", "timeout", "conflict", "5xx", "429", "4xx", "status", "error"}
)

# Transitions: `to`, an optional name, and at most one condition key.
CONDITION_KINDS = frozenset({"subscribe", "wait", "poll", "when"})
TRANSITION_KEYS = frozenset({"to", "name"}) | CONDITION_KINDS
WAIT_KEYS = frozenset({"duration", "until"})
# A poll runs one instruction of any kind; which kinds give a result to test is the kind's
# executor's to say (``engine.instructions.gives_result``), not this list's.
POLL_KEYS = INSTRUCTION_KINDS | frozenset(
    {
        "name",
        "every",
        "until",
        "backoff",
        "max_attempts",
        "max_duration",
        "timeout",
        "save_as",
        "on_error",
    }
)
BACKOFF_KEYS = frozenset({"factor", "max_interval", "jitter"})
SUBSCRIBE_KEYS = frozenset({"event", "correlate", "match", "save_as", "source"})
SOURCE_KEYS = frozenset(
    {
        "broker",
        "connection",
        "queue",
        "exchange",
        "binding",
        "channel",
        "stream",
        "topic",
        "subject",
        "group",
        "event",
        "correlation",
        "id",
    }
)
# Where each broker's messages come from: the keys it accepts, beyond the shared ones.
SOURCE_DESTINATIONS = {
    "amqp": frozenset({"queue", "exchange", "binding"}),
    "redis": frozenset({"channel", "stream", "group"}),
    "mqtt": frozenset({"topic", "group"}),
    "nats": frozenset({"subject", "stream", "group"}),
}
