"""The scripted world of a dry run: what instructions and poll attempts get back, and the
secrets' stand-in values.

It plugs into the runner through ``engine.runner.outside.Outside``. An instruction without
side effects (``set``) runs its real executor: it is data, not the world. Any other is
answered from the script: its templates are rendered first exactly as the real executor
would (so a template error, or a secret that is not set, fails the attempt as it would in a
real run), then the reply is looked up by ``state/name``, by ``name``, then by the first
``calls`` rule whose kind, URL pattern and method match. An HTTP reply goes through the
same status check as a real response (``expect``, else any 2xx). Nothing reaches the
network, a broker or a database.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any

from engine import instructions
from engine.errors import ExpressionError
from engine.instructions import ExecContext, instruction_error
from engine.instructions.http import check_status, shown_url
from engine.language.model import Instruction
from engine.runner.outside import Outside
from engine.secrets import SECRET_PREFIX
from engine.simulation.errors import Unscripted
from engine.simulation.script import CallRule, Reply, Script

# Spec fields that are never templates (the SQL text is bound, not rendered).
_NOT_RENDERED = frozenset({"query", "expect", "max_response_bytes", "fetch", "protocol",
                           "broker", "qos", "retain", "jetstream", "stream", "connection"})


class StandInSecrets(Mapping[str, str]):
    """An environment where every secret is set: to the script's stand-in, else to
    ``simulated-<NAME>``. Only the stand-ins are listed (and so redacted even when unused);
    the generated ones are redacted once used, as real secrets are."""

    def __init__(self, given: Mapping[str, str], prefix: str = SECRET_PREFIX):
        self._prefix = prefix
        self._given = {f"{prefix}{name}": value for name, value in given.items()}

    def __getitem__(self, key: str) -> str:
        if key in self._given:
            return self._given[key]
        if key.startswith(self._prefix):
            return f"simulated-{key[len(self._prefix):]}"
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._given)

    def __len__(self) -> int:
        return len(self._given)


class ScriptedWorld:
    """Answers the run's instructions from ``script``. ``state`` is read from the run the
    driver hands over (``watch``): a reply may be keyed by the state it is called in."""

    def __init__(self, script: Script, secrets_prefix: str = SECRET_PREFIX):
        self.script = script
        self.by_name = dict(script.instructions)
        self.calls: Counter[str] = Counter()  # replies handed out, by the key that matched
        self._lock = threading.Lock()  # poll attempts run in pool threads
        self._run: Any = None
        self.outside = Outside(execute=self.execute, log_runs=False,
                               environ=StandInSecrets(dict(script.secrets), secrets_prefix))

    def watch(self, run: Any) -> None:
        self._run = run

    def execute(self, instruction: Instruction, ctx: ExecContext) -> Any:
        """One attempt of ``instruction``: the real executor for a pure kind, else the
        script's reply.

        Raises:
            InstructionError: the reply is an error, or an HTTP status not expected.
            Unscripted: the script has no reply for this instruction.
        """
        if not instructions.has_side_effects(instruction.kind):
            return instructions.execute(instruction, ctx)
        rendered = self._render(instruction, ctx)
        target = str(rendered.get("url") or rendered.get("to") or "")
        reply = self._reply(instruction, target, str(rendered.get("method") or "").upper())
        return self._answer(instruction, reply)

    def _render(self, instruction: Instruction, ctx: ExecContext) -> dict[str, Any]:
        """The spec's sent fields rendered, as the real executor renders them."""
        try:
            return {f.name: _rendered(getattr(instruction.spec, f.name), ctx)
                    for f in dataclasses.fields(instruction.spec)
                    if f.name not in _NOT_RENDERED}
        except ExpressionError as exc:
            raise instruction_error(f"{instruction.kind} instruction {instruction.name!r}: "
                                    f"template error: {exc}") from exc

    def _reply(self, instruction: Instruction, target: str, method: str) -> Reply:
        state = getattr(self._run, "state", None) or ""
        for key in (f"{state}/{instruction.name}", instruction.name):
            if key in self.by_name:
                return self._nth(key, self.by_name[key])
        for index, rule in enumerate(self.script.calls):
            if _matches(rule, instruction.kind, target, method):
                return self._nth(f"calls[{index}]", rule.replies)
        spec = instruction.spec  # named as written: a rendered URL may carry a secret
        raise Unscripted(state=state, instruction=instruction.name, kind=instruction.kind,
                         target=str(getattr(spec, "url", None) or getattr(spec, "to", "-")))

    def _nth(self, key: str, replies: tuple[Reply, ...]) -> Reply:
        with self._lock:
            n = self.calls[key]
            self.calls[key] += 1
        return replies[min(n, len(replies) - 1)]

    @staticmethod
    def _answer(instruction: Instruction, reply: Reply) -> Any:
        if reply.error is not None:
            # Stored as written, as a real executor's error is: the attempt's record and
            # the run's error already name the instruction and its state.
            raise instruction_error(reply.error, reply.error_class)
        if reply.status is None:
            return reply.result
        # The shape of a real response (engine.instructions.http.send); no time passes.
        result = {"status": reply.status, "headers": dict(reply.headers), "body": reply.body,
                  "elapsed_ms": 0.0}
        spec = instruction.spec
        check_status(str(getattr(spec, "method", "GET")),
                     shown_url(str(getattr(spec, "url", "")), getattr(spec, "query", ())),
                     result, getattr(spec, "expect", ()))
        return result


def _rendered(value: Any, ctx: ExecContext) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _rendered(getattr(value, f.name), ctx)
                for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return ctx.render(dict(value))
    return ctx.render(value)


def _matches(rule: CallRule, kind: str, target: str, method: str) -> bool:
    return (rule.kind == kind and fnmatchcase(target, rule.url)
            and (rule.method is None or rule.method == method))
