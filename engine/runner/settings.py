"""The knobs of the run loop that a deployment sets (``ASYNC_STATES`` in Django settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineSettings:
    step_max_transitions: int = 200
    step_max_seconds: float = 30.0
    inline_retry_max_seconds: float = 1.0
    secrets_prefix: str = "ASYNC_STATES_SECRET_"
    # Budgets of one template or predicate evaluation (see engine.budgets).
    template_max_seconds: float = 1.0
    template_max_operations: int = 50_000
    template_max_output: int = 1_000_000
    # Sizes as JSON bytes (engine.limits); 0 turns a limit off. Defaults: taskapp.conf.
    max_data_bytes: int = 0
    max_result_bytes: int = 0
    # Where rpc descriptor_set files are read from (DESCRIPTOR_DIR); "": the working directory.
    descriptor_dir: str = ""
