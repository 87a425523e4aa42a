"""README.md as data: its fenced blocks, the commands of its console sessions, and a matcher
that compares a command's real output with the output the README shows.

The README shows real output with the parts that change from run to run left as they came
out once. The matcher treats those parts as wildcards:

- a UUID or a 40-digit hex token matches any such value, and is *captured*: a later command
  that repeats the README's value (``RUN=cbfae458-…``, ``TOKEN=8bce…``) gets the real one;
- times (``08:17:12.836``, ``2026-11-29 14:32:46``, ``2026-11-27T08:55:53.956482Z``),
  decimal numbers (``1.868357``) and milliseconds (``3 ms``), all measured, match any;
- ``…`` matches any text, together with the letters, digits, ``-`` and ``_`` touching it
  (``cbfae458-…`` is an abbreviated id, ``Xq3…Tw`` a password);
- ``...`` inside a line matches any text (JSON keys left out); a line that is only ``...``
  matches any number of lines;
- an output line that starts with exactly one space continues the line before it (a long
  JSON line folded for reading).

Everything else must be exactly as shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"

_FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.DOTALL | re.MULTILINE)
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TOKEN = r"[0-9a-f]{40}"
_CAPTURED = re.compile(rf"(?<![0-9a-f-])(?:{UUID}|{TOKEN})(?![0-9a-f-])")
_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"
_LOCAL = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
_CLOCK = r"\d\d:\d\d:\d\d\.\d{3}"
# (what the README shows, what it matches), in the order they are looked for.
_WILD = [
    (r"[\w-]*…[\w-]*", r"[^\n]*?"),                      # an abbreviated id or password
    (r"\.\.\.", r"[^\n]*?"),                              # left out
    (_ISO, _ISO),
    (_LOCAL, _LOCAL),
    (_CLOCK, _CLOCK),
    (r"(?<![\d.])\d+\.\d+(?![\d.])", r"\d+(?:\.\d+)?"),    # a measured number
    (r"(?<![\d.])\d+ ms\b", r"\d+ ms"),                    # a measured duration
]
_TOKENS = re.compile("|".join(f"({p})" for p in [_CAPTURED.pattern, *(w for w, _ in _WILD)]))


@dataclass
class Block:
    """A fenced block of README.md: its language, first line number and text."""

    lang: str
    line: int
    body: str


@dataclass
class Command:
    """One ``$ ...`` of a console block (continuation lines included) and the output the
    README shows under it."""

    text: str
    expected: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The command without its trailing comment and folding: ``make bench QUICK=1``."""
        return re.sub(r"\s+#[^'\"]*$", "", " ".join(self.text.split()))


def blocks(text: str | None = None) -> list[Block]:
    text = README.read_text(encoding="utf-8") if text is None else text
    return [Block(m["lang"], text.count("\n", 0, m.start()) + 1, m["body"])
            for m in _FENCE.finditer(text)]


def commands(block: Block) -> list[Command]:
    """The commands of a console block, in order."""
    found: list[Command] = []
    folding = False
    for line in block.body.splitlines():
        if line.startswith("$ "):
            found.append(Command(line[2:]))
        elif folding:
            found[-1].text += "\n" + line
        elif found:
            found[-1].expected.append(line)
        else:
            raise ValueError(f"README.md:{block.line}: output before any command: {line!r}")
        folding = line.rstrip().endswith("\\") and not found[-1].expected
    return found


def unfold(lines: list[str]) -> list[str]:
    """Join each line that starts with exactly one space onto the line before it."""
    joined: list[str] = []
    for line in lines:
        if joined and re.match(r" \S", line):
            joined[-1] += line[1:]
        else:
            joined.append(line)
    return joined


def pattern(expected: list[str]) -> tuple[re.Pattern[str], dict[str, str]]:
    """A regex for the whole output, and the README value each capture group stands for."""
    groups: dict[str, str] = {}     # README value -> group name
    parts = []
    for line in unfold(expected):
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        out, at = [], 0
        for match in _TOKENS.finditer(line):
            out.append(re.escape(line[at:match.start()]))
            out.append(_wildcard(match, groups))
            at = match.end()
        out.append(re.escape(line[at:]))
        parts.append("".join(out) + r"\n")
    return re.compile("".join(parts)), {name: value for value, name in groups.items()}


def _wildcard(match: re.Match[str], groups: dict[str, str]) -> str:
    value = match.group(0)
    if match.group(1):  # a UUID or token: captured once, the same value after that
        if value in groups:
            return f"(?P={groups[value]})"
        groups[value] = f"v{len(groups)}"
        shape = UUID if "-" in value else TOKEN
        return f"(?P<{groups[value]}>{shape})"
    index = next(i for i in range(len(_WILD)) if match.group(i + 2))
    return _WILD[index][1]


def match(expected: list[str], actual: str) -> dict[str, str] | None:
    """``None`` when ``actual`` does not have the shape of ``expected``; otherwise each
    UUID or token of the README mapped to the value in its place in ``actual``."""
    regex, names = pattern(expected)
    text = actual if actual.endswith("\n") or not actual else actual + "\n"
    found = regex.fullmatch(text)
    if found is None:
        return None
    return {names[name]: value for name, value in found.groupdict().items()}
