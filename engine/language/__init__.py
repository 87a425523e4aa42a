"""The task language: YAML task definitions to the frozen ``TaskDef`` model.

Public entry points are re-exported here; ``engine.language.model`` holds the model itself.
"""

from engine.language.durations import format_duration, parse_duration
from engine.language.limits import ReaderLimits
from engine.language.loader import (
    Report,
    decode_source,
    load_file,
    load_text,
    read_source,
    validate_file,
    validate_text,
)
from engine.language.serialise import task_from_dict, task_to_dict

__all__ = [
    "ReaderLimits",
    "Report",
    "decode_source",
    "format_duration",
    "load_file",
    "load_text",
    "parse_duration",
    "read_source",
    "task_from_dict",
    "task_to_dict",
    "validate_file",
    "validate_text",
]
