"""Instruction executors as plugins: the interface, the registry and the one dispatch function.

An executor runs one attempt of one instruction kind (``http``, ``rpc``, ``message``, ``db``,
``set``) and returns the JSON-serialisable result that the runner saves into the run's data.
This package owns the contract that every failure comes out as an ``InstructionError`` carrying
an ``error_class`` that retry policies select on. It leaves to the runner: retries and their
delays, ``save_as``, idempotency-key derivation, redaction of secrets in messages, and history.

The built-in executors register themselves when this package is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from engine.errors import ExpressionError, InstructionError, UnsupportedInstruction
from engine.language.model import Instruction
from engine.registry import Registry


def idempotency_key(run_id: object, entry: int, instruction: str) -> str:
    """The key every attempt of ``instruction`` in one state entry sends (an HTTP
    ``Idempotency-Key``, a JSON-RPC ``id``): the same across retries, new on each entry.
    Derived, never stored: the dashboard derives it again to show it beside an attempt."""
    return f"{run_id}:{entry}:{instruction}"


@dataclass(frozen=True, slots=True)
class ExecContext:
    """What an executor is given besides its spec.

    Attributes:
        render: renders the templates in a spec value, deeply, against the run's context;
            raises ``ExpressionError``.
        timeout: per-attempt timeout in seconds.
        idempotency_key: stable across the attempts of this instruction in this state entry.
        attempt: 1-based attempt number.
        max_result_bytes: the largest result the runner will keep (0: no limit); an
            executor that reads a body reads no more than this, so a huge answer costs
            no more memory than a refused one.
        descriptor_dir: the directory that gRPC ``descriptor_set`` files are read from
            (``DESCRIPTOR_DIR``); "": the working directory. A task names files inside it
            only.
    """

    render: Callable[[Any], Any]
    timeout: float
    idempotency_key: str
    attempt: int = 1
    max_result_bytes: int = 0
    descriptor_dir: str = ""


class Executor(Protocol):
    """Runs one instruction kind. ``execute`` raises ``InstructionError`` on failure.

    What the runner needs to know about a kind, the executor declares:

    - ``side_effects``: an attempt reaches the outside world, so the run's progress is
      committed before it (the far end never hears of a step the database forgot) and the
      attempt may be retried. Absent means True, the safe answer.
    - ``assigns``: the result is ``{dotted path: value}`` to write into the run's data
      (``set``), rather than one value stored at the instruction's ``save_as``. Absent: False.
    - ``spec_type``: the spec class it accepts; ``execute`` below refuses any other with
      ``TypeError`` (a loader bug).
    """

    kind: str

    def execute(self, spec: Any, ctx: ExecContext) -> Any: ...


def has_side_effects(kind: str) -> bool:
    """Whether attempts of ``kind`` reach the outside world (``Executor.side_effects``)."""
    return bool(getattr(executor_for(kind), "side_effects", True))


def assigns_paths(kind: str) -> bool:
    """Whether results of ``kind`` are paths to assign (``Executor.assigns``)."""
    return bool(getattr(executor_for(kind), "assigns", False))


def gives_result(kind: str) -> bool:
    """Whether an attempt of ``kind`` answers one value that a predicate can test (what a
    ``poll`` needs): every kind but those whose result is paths to assign."""
    return not assigns_paths(kind)


# The error classes a remote failure is worth retrying for, by default: the far end may answer
# differently next time. RetryPolicy's default retry_on selects the same ones.
TRANSIENT_ERROR_CLASSES = frozenset({"connection", "timeout", "conflict", "5xx", "429"})


def instruction_error(
    message: str, error_class: str = "error", *, result: object = None
) -> InstructionError:
    """An ``InstructionError`` whose ``retryable`` follows from its ``error_class``."""
    return InstructionError(
        message,
        error_class=error_class,
        retryable=error_class in TRANSIENT_ERROR_CLASSES,
        result=result,
    )


def certificate_error(where: str, reason: str) -> InstructionError:
    """The final ``error`` for a far end whose TLS certificate failed verification (an
    untrusted issuer, another host's name, expired): unlike a refused or lost connection it
    will fail the same way on the next attempt, so the default retry policy leaves it alone.
    ``http`` and gRPC ``rpc`` both say it this way."""
    return instruction_error(
        f"{where}: the server's TLS certificate failed verification: {reason}", "error"
    )


REGISTRY: Registry[Executor] = Registry("instruction", UnsupportedInstruction)


def register(executor: Executor, *, replace: bool = False) -> None:
    """Make ``executor`` the one that runs instructions of ``executor.kind``.

    Raises:
        ValueError: another executor is registered for the kind and ``replace`` is false.
    """
    REGISTRY.register(executor, replace=replace)


def unregister(kind: str) -> None:
    """Remove the executor for ``kind``, if any (for tests that register fakes)."""
    REGISTRY.unregister(kind)


def executor_for(kind: str) -> Executor:
    """The executor registered for ``kind``.

    Raises:
        UnsupportedInstruction: nothing is registered for ``kind``.
    """
    return REGISTRY.get(kind)


def registered_kinds() -> tuple[str, ...]:
    """The kinds that have an executor, sorted."""
    return REGISTRY.kinds()


def execute(instruction: Instruction, ctx: ExecContext) -> Any:
    """Run one attempt of ``instruction`` with the executor registered for its kind.

    Returns:
        The executor's JSON-serialisable result.

    Raises:
        InstructionError: the attempt failed. A template that fails to render becomes
            ``error_class="error"`` (not retryable: rendering again gives the same answer);
            any other exception the executor did not classify becomes ``error_class="error"``
            naming the exception. The original is kept as ``__cause__``.
        UnsupportedInstruction: no executor for the kind (an ``InstructionError`` too).
        TypeError: the spec is not the executor's ``spec_type``. This is let through on
            purpose: it means the loader paired a kind with the wrong spec, a bug in the engine
            that routing to ``on_error`` or retrying would only hide.

    ``BaseException``s that are not ``Exception`` (``SystemExit`` is how django-q2 signals a
    task timeout, ``KeyboardInterrupt``) are never caught.
    """
    executor = executor_for(instruction.kind)
    spec_type = getattr(executor, "spec_type", None)
    if spec_type is not None and not isinstance(instruction.spec, spec_type):
        raise TypeError(
            f"instruction {instruction.name!r} of kind {instruction.kind!r} carries a "
            f"{type(instruction.spec).__name__}, expected {spec_type.__name__}"
        )
    try:
        return executor.execute(instruction.spec, ctx)
    except InstructionError:
        raise
    except ExpressionError as exc:
        raise InstructionError(
            f"{instruction.kind} instruction {instruction.name!r}: template error: {exc}"
        ) from exc
    except Exception as exc:  # the contract: nothing unclassified escapes as a crash
        raise InstructionError(
            f"{instruction.kind} instruction {instruction.name!r} failed unexpectedly: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _register_builtins() -> None:
    from engine.instructions import db, http, message, rpc
    from engine.instructions import set as set_

    for module in (http, rpc, set_, db, message):
        register(module.EXECUTOR)


_register_builtins()
