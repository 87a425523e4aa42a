"""Secrets: read from the environment, sent where a task sends them, never stored in any form.

This module owns the whole concept: reading ``secrets.NAME`` (the environment variable
``<prefix>NAME``), knowing which templates read secrets (so that the loader can refuse them
where their value would be stored), and redacting every stored form of a secret. Where secrets
may be used, and the problem for a template that reads them elsewhere, are decided here; the
loader reports the problem, the runner calls ``redact`` on everything it stores.

Two rules keep a secret out of the database, the logs, the API and the dashboard:

1. Refused at load time: a template or predicate that reads ``secrets`` where its value (or a
   value derived from it: ``|upper``, a slice, a comparison) would be stored — ``set``,
   ``wait.until``, ``subscribe.correlate`` and every predicate (``when``, ``poll.until``,
   ``subscribe.match``). Secrets are allowed only in what an instruction sends: ``url``,
   ``headers``, ``query``, ``json``, ``form``, ``auth``, ``params``, ``body``, a message's
   ``to``. Messages about an instruction show its URL as written in the task (the template),
   never as rendered.
2. Redacted at store time: every string the runner stores (data written by ``save_as``, attempt
   errors, transition details, poll records, the run's error and cursor) has each stored form
   of every configured secret, and of each value the step derived from one and sent
   (``note_rendered``), replaced by ``***``: the value itself in any letter case, URL-encoded
   (``quote``, ``quote_plus``, as ``requests`` quotes a URL), base64 (standard and URL-safe,
   padded or not, at each of the three byte alignments a value can have inside a longer text,
   such as a basic-auth header; of its UTF-8 and its Latin-1 bytes), hex, and escaped as JSON
   or Python write strings. That covers what a far end echoes back of a request (its own
   error text, an echo of the headers). The same ``redact`` serves the log filter.

A secret shorter than ``MIN_SECRET_LENGTH`` characters cannot be read: redacting every
occurrence of a short value, in any case, would blank out unrelated text, and a value that
short is no secret.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

import jinja2
from jinja2 import nodes

from engine import connections
from engine.errors import ExpressionError

SECRET_PREFIX = "ASYNC_STATES_SECRET_"
REDACTED = "***"
MIN_SECRET_LENGTH = 8
# A longer piece derived from a secret (a whole body rendered by a template with {% if %}) is
# not redacted as a whole: its forms would cost more than the text they guard, and the secret
# inside it is redacted anyway.
MAX_DERIVED_LENGTH = 4096
SENT_OPTIONS = "url, headers, query, json, form, auth, params, body or to"

# What ``requests`` leaves unquoted in a URL (``requests.utils.requote_uri``).
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"


class Secrets(Mapping[str, str]):
    """Read-only access to secrets held in environment variables ``<prefix><NAME>``.

    ``{{ secrets.SHOP_TOKEN }}`` reads ``ASYNC_STATES_SECRET_SHOP_TOKEN``. Every value handed out
    is remembered in ``used_values``; ``to_redact`` is what a caller redacts from anything it
    stores: the values used plus every other configured secret, since a far end may echo one
    sent in an earlier step.
    """

    def __init__(self, prefix: str = SECRET_PREFIX, environ: Mapping[str, str] | None = None):
        self._prefix = prefix
        self._environ = os.environ if environ is None else environ
        self.used_values: set[str] = set()
        self.derived_values: set[str] = set()
        self._configured: frozenset[str] | None = None

    def __getitem__(self, name: str) -> str:
        try:
            value = self._environ[f"{self._prefix}{name}"]
        except KeyError:
            raise ExpressionError(
                f"secrets.{name}",
                f"secret {name} is not set (environment variable {self._prefix}{name})",
            ) from None
        if len(value) < MIN_SECRET_LENGTH:
            raise ExpressionError(
                f"secrets.{name}",
                f"secret {name} has {len(value)} characters, fewer than the "
                f"{MIN_SECRET_LENGTH} a secret needs so that its redaction cannot blank out "
                f"unrelated text; set a longer value in {self._prefix}{name}, or write a value "
                "that is not secret in the task file",
            )
        self.used_values.add(value)
        return value

    def __iter__(self) -> Iterator[str]:
        return (key[len(self._prefix) :] for key in self._environ if key.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"<Secrets {self._prefix}*>"

    def to_redact(self) -> frozenset[str]:
        """The values to redact: those used, those derived from them (``note_rendered``), and
        every configured secret long enough to read, and the password of every named
        connection (``engine.connections``) as long: a driver's error may quote it.

        The configured values are read from the environment once per instance (a runner step).
        """
        if self._configured is None:
            self._configured = frozenset(
                value for key, value in self._environ.items()
                if key.startswith(self._prefix) and len(value) >= MIN_SECRET_LENGTH
            ) | frozenset(
                password for password in connections.passwords(self._environ)
                if len(password) >= MIN_SECRET_LENGTH
            )
        return self._configured | self.used_values | self.derived_values

    def note_rendered(self, template: Any, rendered: Any) -> None:
        """Remember what the parts of ``template`` that read secrets rendered to.

        A task may send a value derived from a secret (``{{ secrets.KEY | reverse }}``,
        ``{{ secrets.KEY[:12] }}``); a far end that echoes it back would otherwise have it
        stored. Each piece of ``MIN_SECRET_LENGTH`` to ``MAX_DERIVED_LENGTH`` characters is
        then redacted like a secret, in every form, until the step ends.
        """
        for piece in derived_pieces(template, rendered):
            if MIN_SECRET_LENGTH <= len(piece) <= MAX_DERIVED_LENGTH:
                self.derived_values.add(piece)


def forms(secret: str) -> frozenset[str]:
    """Every text form of ``secret`` that redaction looks for (matched in any letter case).

    The forms of its upper- and lower-case variants are included: matching ignores case, but
    some letters change length (``İ`` lowers to two code points) or encoding (``ö``/``Ö`` in
    UTF-8) with their case. Base64 depends on where the value starts within a longer text (a
    basic-auth header encodes ``user:password``): for each of the three byte alignments, the
    characters that encode the secret's bytes alone are a form.
    """
    variants = {secret, secret.upper(), secret.lower(), secret.casefold()}
    return frozenset(form for variant in variants for form in _forms_of(variant))


def _forms_of(secret: str) -> set[str]:
    found = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote(secret, safe=_URL_SAFE),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],  # a far end's message may quote a Python value: {'token': '...'}
        ascii(secret)[1:-1],
    }
    for raw in _encodings(secret):
        found.add(raw.hex())
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            whole = encode(raw).decode("ascii")
            found.update({whole, whole.rstrip("=")})
            found.update(_aligned_base64(raw, encode))
    return {form for form in found if form}


def _encodings(secret: str) -> set[bytes]:
    """UTF-8, and Latin-1 when it differs: ``requests`` encodes basic-auth credentials in
    Latin-1, so that header's base64 is of those bytes."""
    found = {secret.encode("utf-8")}
    try:
        found.add(secret.encode("latin-1"))
    except UnicodeEncodeError:
        pass
    return found


def _aligned_base64(raw: bytes, encode: Any) -> list[str]:
    cores = []
    for offset in range(3):
        text = encode(b"\0" * offset + raw).decode("ascii")
        first = (8 * offset + 5) // 6  # the first character made of the secret's bits only
        last = 8 * (offset + len(raw)) // 6  # past the last such character
        cores.append(text[first:last])
    return cores


class _Matcher:
    """All forms of a set of secrets, as one case-insensitive pattern.

    One regular expression of ~100 alternatives per five secrets scans about 1 MB/s here, too
    slow for a 1 MB response body; folding the case of the text and looking for each folded
    form with ``in`` takes ~25-55 ms/MB, so the pattern runs only on a text that holds a form.
    """

    def __init__(self, every: set[str]):
        ordered = sorted(every, key=len, reverse=True)  # the longest form wins where they overlap
        self.pattern = re.compile("|".join(re.escape(form) for form in ordered), re.IGNORECASE)
        self.lowered = tuple({form.lower() for form in every if form.isascii()})
        self.folded = tuple({_fold(form) for form in every})

    def sub(self, text: str) -> str:
        if text.isascii():  # ASCII text can only match ASCII forms, and lower() is exact
            lowered = text.lower()
            if not any(form in lowered for form in self.lowered):
                return text
        else:
            folded = _fold(text)
            if not any(form in folded for form in self.folded):
                return text
        return self.pattern.sub(REDACTED, text)


def _fold(text: str) -> str:
    """Case folded so that whatever the pattern matches ignoring case also matches here:
    ``casefold`` turns ``İ`` into ``i`` plus a combining dot, which the pattern treats as
    ``i``, so the dot goes."""
    return text.casefold().replace("\u0307", "")


@lru_cache(maxsize=64)
def _matcher(values: frozenset[str]) -> _Matcher | None:
    every = {form for value in values if value for form in forms(value)}
    return _Matcher(every) if every else None


def redact(obj: Any, values: Iterable[str]) -> Any:
    """A copy of ``obj`` in which every form (see ``forms``) of a secret value is ``***``.

    Dict keys and values, lists and tuples are walked; a number whose digits hold a secret
    becomes ``***`` too; other values pass through unchanged.
    """
    matcher = _matcher(frozenset(values))
    return obj if matcher is None else _redact(obj, matcher)


def _redact(obj: Any, matcher: _Matcher) -> Any:
    if isinstance(obj, str):
        return matcher.sub(obj)
    if isinstance(obj, Mapping):
        return {_redact(key, matcher): _redact(item, matcher) for key, item in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_redact(item, matcher) for item in obj)
    if isinstance(obj, int | float) and not isinstance(obj, bool):
        return REDACTED if matcher.sub(str(obj)) != str(obj) else obj
    return obj


# Parsing only (never compiling or rendering): the loader has already checked the text with the
# task sandbox, and a parse evaluates nothing.
_PARSER = jinja2.Environment()


@lru_cache(maxsize=4096)
def reads_secrets(text: str, *, predicate: bool = False) -> bool:
    """Whether a template (or a bare-expression predicate) reads ``secrets``.

    ``secrets`` is only reachable by its name in a task's context, so a ``Name`` node is the
    one way in (``{% set s = secrets %}`` names it too).
    """
    if "secrets" not in text:
        return False
    source = f"{{{{ ({text}) }}}}" if predicate else text
    try:
        tree = _PARSER.parse(source)
    except jinja2.TemplateSyntaxError:
        return False  # reported as a syntax problem by the template check
    return any(node.name == "secrets" for node in tree.find_all(nodes.Name))


def derived_pieces(template: Any, rendered: Any) -> list[str]:
    """The text that the expressions reading ``secrets`` in ``template`` produced in
    ``rendered`` (walked in parallel through mappings and lists).

    ``a/{{ secrets.K | upper }}/b`` rendered to ``a/XYZ/b`` gives ``["XYZ"]``. When the
    rendered text cannot be split along the template (control structures, or literal text that
    the values repeat), the whole rendered text counts as derived.
    """
    if isinstance(template, str):
        return _pieces_of(template, rendered) if reads_secrets(template) else []
    if isinstance(template, Mapping) and isinstance(rendered, Mapping):
        return [piece for key, item in template.items()
                for piece in derived_pieces(item, rendered.get(key))]
    if isinstance(template, list | tuple) and isinstance(rendered, list | tuple):
        return [piece for item, out in zip(template, rendered, strict=False)
                for piece in derived_pieces(item, out)]
    return []


def _pieces_of(template: str, rendered: Any) -> list[str]:
    if not isinstance(rendered, str):
        return _leaves(rendered)
    layout = _layout(template)
    match = layout[0].fullmatch(rendered) if layout else None
    if match is None:
        return [rendered]
    return [match[group] for group in layout[1]]


def _leaves(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [leaf for key, item in value.items() for leaf in (*_leaves(key), *_leaves(item))]
    if isinstance(value, list | tuple):
        return [leaf for item in value for leaf in _leaves(item)]
    return [] if value is None or isinstance(value, bool) else [str(value)]


@lru_cache(maxsize=1024)
def _layout(template: str) -> tuple[re.Pattern[str], tuple[int, ...]] | None:
    """A pattern matching what ``template`` renders to, with one group per expression, and the
    groups of the expressions that read secrets; ``None`` for anything but text and ``{{ }}``."""
    try:
        body = _PARSER.parse(template).body
    except jinja2.TemplateSyntaxError:
        return None
    if not all(isinstance(node, nodes.Output) for node in body):
        return None
    regex, secret_groups, group = [], [], 0
    for node in (child for output in body for child in output.nodes):
        if isinstance(node, nodes.TemplateData):
            regex.append(re.escape(node.data))
            continue
        group += 1
        regex.append("(.*?)")
        if any(name.name == "secrets" for name in node.find_all(nodes.Name)):
            secret_groups.append(group)
    return re.compile("".join(regex), re.DOTALL), tuple(secret_groups)


def stored_use_problem(what: str) -> str:
    """The loader's message for a template that reads secrets where its value is stored."""
    return (
        f"{what} reads secrets, but what it computes would be stored in the run's history (a "
        "value, or the path the run takes); "
        f"secrets may be used only in what an instruction sends ({SENT_OPTIONS}), "
        "so that no form of them is ever stored"
    )
