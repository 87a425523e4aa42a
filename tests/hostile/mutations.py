"""Ways to damage a task file: the generator of the task-file campaign.

Each mutation takes a random generator and the bytes of a file and returns new bytes; the
campaign applies one to three of them to a seed file (a shipped task, a test fixture, a hostile
corpus file) or makes a file from nothing (random bytes, YAML-looking token soup). The
mutations aim at what broke readers before: byte flips, duplication, truncation, nesting far
past any limit, alias bombs and cycles, numbers past every range, giant strings, tags,
byte-order marks, bytes that are not UTF-8, and templates nested deep, long or many.

``**`` is taken out of every generated file: the power operator in a template is constant
folded by Jinja at load time, which the template sandbox (not the reader) bounds.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

# A generated file never grows past this: the reader refuses it at once (the size limit),
# and the campaign measures the reader, not the copying of huge byte strings.
MAX_OUTPUT = 2 * 1024 * 1024

SPECIAL_BYTES = b"\x00\x85\xff\xfe\t\r\n:[]{},&*!-\"'#|>?%@`\\ "
TOKENS = [
    "[", "]", "{", "}", ", ", ": ", "- ", "\n", "  ", "\n  - ", "&a ", "*a", "&b ", "*b",
    "!!int ", "!!binary ", "!!timestamp ", "!!python/object:os.system ", "!foo ", "!!set ",
    "'", '"', "# c", "---\n", "...\n", "on", "off", "yes", "~", "null", "true", "0x1f", "0o17",
    "1_000", "1:30:00", "99999999999999999999", "1.0e+999", ".nan", "-.inf", "1h30m", "\t",
    "|\n", ">-\n", "? ", "%YAML 1.1\n", "\ufeff", "\x00", "\x1b", "\u2028", "<<: ", "{{ x }}",
    "name: t", "version: 1", "start_state: a", "states:", "transitions:", "to: b", "final: ",
    "succeeded", "timeout: ", "instructions:", "set: ", "retry: ", "deadline: ", "poll: ",
]
HUGE_NUMBERS = [
    "99999999999999999999", "9" * 5000, "-" + "9" * 30, "1.0e+999", "-.inf", ".nan",
    "1e999", "0x" + "f" * 40, "0b" + "1" * 200, "99999999999999999999d", "9999999999",
    "1:" * 500 + "0", "36525d1ms", "999999999999999999999ms", "1.0e+300", "-1", "0",
    "2147483648", "9223372036854775808",
]
TAGS = ["!!binary ", "!!timestamp ", "!!python/object/apply:os.system ", "!!int ", "!!float ",
        "!!bool ", "!!set ", "!!omap ", "!!pairs ", "!foo ", "!!str ", "!!null ", "!!map ",
        "!!seq ", "! "]


def _at(rng: random.Random, data: bytes) -> int:
    return rng.randrange(len(data) + 1)


def _insert(rng: random.Random, data: bytes, piece: bytes) -> bytes:
    at = _at(rng, data)
    return data[:at] + piece + data[at:]


def _value_position(rng: random.Random, data: bytes) -> int:
    """Just after a random ': ' or '- ' (where a value starts), else anywhere."""
    marks = [match.end() for match in re.finditer(rb": |- ", data)]
    return rng.choice(marks) if marks else _at(rng, data)


def flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not out:
            break
        pick = rng.choice([rng.randrange(256), rng.choice(SPECIAL_BYTES)])
        out[rng.randrange(len(out))] = pick
    return bytes(out)


def token(rng: random.Random, data: bytes) -> bytes:
    return _insert(rng, data, rng.choice(TOKENS).encode())


def duplicate(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    start = rng.randrange(len(data))
    end = min(len(data), start + rng.randint(1, 400))
    return data[:end] + data[start:end] * rng.choice([1, 2, 10, 200, 5000]) + data[end:]


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: _at(rng, data)]


def delete(rng: random.Random, data: bytes) -> bytes:
    start = _at(rng, data)
    return data[:start] + data[start + rng.randint(1, 80) :]


def swap_lines(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def reindent(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    lines[i] = b" " * rng.choice([0, 1, 3, 7, 200]) + lines[i].lstrip(b" ")
    return b"\n".join(lines)


def deep_nesting(rng: random.Random, data: bytes) -> bytes:
    depth = rng.choice([50, 63, 64, 65, 100, 1000, 10_000, 100_000])
    style = rng.randrange(4)
    if style == 0:
        piece = b"[" * depth + b"]" * depth
    elif style == 1:
        piece = b"{a: " * depth + b"b" + b"}" * depth
    elif style == 2:
        piece = b"\n" + b"- " * depth + b"x\n"
    else:
        piece = b"[" * depth  # never closed
    at = _value_position(rng, data)
    return data[:at] + piece + data[at:]


def laughs(levels: int, width: int) -> bytes:
    lines = ["l0: &l0 [" + ",".join(["lol"] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * width) + "]")
    return ("\n".join(lines) + "\n").encode()


def alias_bomb(rng: random.Random, data: bytes) -> bytes:
    bomb = laughs(rng.randint(2, 12), rng.randint(2, 20))
    if rng.random() < 0.5:
        return bomb + data
    width = rng.randint(2, 9)
    inline = b"&z0 [" + b",".join([b"lol"] * width) + b"]"
    for i in range(1, rng.randint(2, 10)):
        inline = f"&z{i} [".encode() + inline + b"," + b",".join([f"*z{i - 1}".encode()] * width)
        inline += b"]"
    at = _value_position(rng, data)
    return data[:at] + inline + data[at:]


def recursive_alias(rng: random.Random, data: bytes) -> bytes:
    piece = rng.choice([b"&r [*r]", b"&r {x: *r}", b"&r [1, [2, *r]]", b"&r\n  - *r\n",
                        b"*r", b"&r x"])
    at = _value_position(rng, data)
    return data[:at] + piece + data[at:]


def huge_number(rng: random.Random, data: bytes) -> bytes:
    number = rng.choice(HUGE_NUMBERS).encode()
    runs = [match.span() for match in re.finditer(rb"[0-9]+", data)]
    if not runs or rng.random() < 0.3:
        at = _value_position(rng, data)
        return data[:at] + number + data[at:]
    start, end = rng.choice(runs)
    return data[:start] + number + data[end:]


def long_string(rng: random.Random, data: bytes) -> bytes:
    size = rng.choice([300, 1000, 100_001, 1_100_000])
    piece = rng.choice([b"x", b"\xc3\xa9", b"'", b"ab "]) * size
    if rng.random() < 0.3:
        piece += b": 1"  # a giant key
    at = _value_position(rng, data)
    return data[:at] + piece + data[at:]


def tag(rng: random.Random, data: bytes) -> bytes:
    at = _value_position(rng, data)
    return data[:at] + rng.choice(TAGS).encode() + data[at:]


def anchors(rng: random.Random, data: bytes) -> bytes:
    first = _value_position(rng, data)
    data = data[:first] + b"&k " + data[first:]
    second = _value_position(rng, data)
    return data[:second] + b"*k " + data[second:]


def template(rng: random.Random, data: bytes) -> bytes:
    """Templates the sandbox parses at load time: nested deep, long, or many of them (never a
    constant the template compiler could fold into a huge value)."""
    depth = rng.choice([30, 300, 3000])
    choice = rng.randrange(5)
    if choice == 0:
        piece = "'{{ " + "(" * depth + "data.x" + ")" * depth + " }}'"
    elif choice == 1:
        piece = "'{{ " + "-" * depth * 5 + "data.x }}'"
    elif choice == 2:
        piece = "'" + "{{ data.x }}" * depth * 3 + "'"
    elif choice == 3:
        piece = "'{% if data.x %}" * depth + "x" + "{% endif %}" * depth + "'"
    else:
        piece = "{" + ", ".join(f"t{i}: '{{{{ data.x + {i} }}}}'" for i in range(depth)) + "}"
    at = _value_position(rng, data)
    return data[:at] + piece.encode() + data[at:]


def encoding(rng: random.Random, data: bytes) -> bytes:
    choice = rng.randrange(5)
    if choice == 0:
        return b"\xef\xbb\xbf" + data
    if choice == 1:
        return data.decode("utf-8", "replace").encode("utf-16")
    if choice == 2:
        return _insert(rng, data, rng.choice([b"\xff", b"\xed\xa0\x80", b"\xc3", b"\xf4\x90"]))
    if choice == 3:
        return _insert(rng, data, "\ufeff".encode())
    return _insert(rng, data, bytes([rng.randrange(32)]))


MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "flip": flip, "token": token, "duplicate": duplicate, "truncate": truncate,
    "delete": delete, "swap_lines": swap_lines, "reindent": reindent,
    "deep_nesting": deep_nesting, "alias_bomb": alias_bomb, "recursive_alias": recursive_alias,
    "huge_number": huge_number, "long_string": long_string, "tag": tag, "anchors": anchors,
    "encoding": encoding, "template": template,
}


_LIGHT = ("token", "huge_number", "tag", "anchors", "duplicate", "long_string", "recursive_alias",
          "alias_bomb", "deep_nesting", "template")


def random_bytes(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))


def token_soup(rng: random.Random) -> bytes:
    return "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 200))).encode()


def generate(rng: random.Random, seeds: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    """One generated file and a description of how it was made."""
    roll = rng.random()
    if roll < 0.05:
        return "random_bytes", random_bytes(rng)
    if roll < 0.12:
        name, data = "token_soup", token_soup(rng)
    else:
        name, data = rng.choice(seeds)
    if roll < 0.35 and name != "token_soup":  # one light touch: most of the file still parses
        steps = [rng.choice(_LIGHT)]
    else:
        steps = [rng.choice(sorted(MUTATIONS)) for _ in range(rng.randint(1, 3))]
    for step in steps:
        data = MUTATIONS[step](rng, data)[:MAX_OUTPUT]
    return f"{name} + {' + '.join(steps)}", without_power(data)


def without_power(data: bytes) -> bytes:
    """``data`` with no ``**`` left (see the module's docstring)."""
    while b"**" in data:
        data = data.replace(b"**", b"*")
    return data
