"""Secrets: reading, refusing them where they would be stored, and redacting every stored form."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ExpressionError
from engine.expressions import build_context, render
from engine.language import validate_text
from engine.secrets import (
    MIN_SECRET_LENGTH,
    REDACTED,
    SENT_OPTIONS,
    Secrets,
    forms,
    reads_secrets,
    redact,
)
from tests.leaks import found as _found

SECRET = "pA55/wörd+Key&=?"


def _context(environ: dict[str, str]):
    return build_context(input={}, data={}, run={}, secrets=Secrets(environ=environ))


# ---------------------------------------------------------------------------- reading


def test_secrets_are_read_recorded_and_redacted():
    ctx = _context({"ASYNC_STATES_SECRET_TOKEN": "s3cr3t-value"})
    headers = render({"Authorization": "Bearer {{ secrets.TOKEN }}"}, ctx)
    assert headers == {"Authorization": "Bearer s3cr3t-value"}
    assert ctx["secrets"].used_values == {"s3cr3t-value"}
    stored = redact({"request": [headers, ("s3cr3t-value",)], "n": 1}, ctx["secrets"].to_redact())
    assert stored == {"request": [{"Authorization": "Bearer ***"}, ("***",)], "n": 1}


def test_missing_secret_names_the_environment_variable():
    with pytest.raises(ExpressionError) as caught:
        render("{{ secrets.NOPE }}", _context({}))
    assert caught.value.reason == (
        "secret NOPE is not set (environment variable ASYNC_STATES_SECRET_NOPE)"
    )


def test_a_secret_too_short_to_redact_safely_is_refused_with_the_minimum():
    with pytest.raises(ExpressionError) as caught:
        render("{{ secrets.PIN }}", _context({"ASYNC_STATES_SECRET_PIN": "1234"}))
    assert caught.value.reason.startswith(
        f"secret PIN has 4 characters, fewer than the {MIN_SECRET_LENGTH} a secret needs")
    assert "ASYNC_STATES_SECRET_PIN" in caught.value.reason


def test_secrets_read_the_process_environment_with_a_prefix(monkeypatch):
    monkeypatch.setenv("MY_PREFIX_KEY", "value-long-enough")
    secrets = Secrets(prefix="MY_PREFIX_")
    assert secrets["KEY"] == "value-long-enough" and "KEY" in list(secrets)


def test_every_configured_secret_is_redacted_even_unused_but_short_ones_are_not():
    secrets = Secrets(environ={"ASYNC_STATES_SECRET_A": "first-secret",
                               "ASYNC_STATES_SECRET_B": "short", "OTHER": "not-a-secret"})
    assert secrets.to_redact() == {"first-secret"}
    assert redact("echo FIRST-SECRET short not-a-secret", secrets.to_redact()) == (
        "echo *** short not-a-secret")


def test_redact_ignores_empty_values():
    assert redact("abc", {""}) == "abc"


# ---------------------------------------------------------------------------- redaction


def _b64(raw: bytes, urlsafe: bool = False) -> str:
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()


@pytest.mark.parametrize("text", [
    SECRET, SECRET.upper(), SECRET.lower(), SECRET.swapcase(),
    quote(SECRET), quote(SECRET, safe=""), quote_plus(SECRET), quote(SECRET).lower(),
    SECRET.encode().hex(), SECRET.encode().hex().upper(),
    _b64(SECRET.encode()), _b64(SECRET.encode()).rstrip("="), _b64(SECRET.encode(), True),
    json.dumps({"k": SECRET}), json.dumps({"k": SECRET}, ensure_ascii=False),
])
def test_each_stored_form_is_redacted(text):
    stored = redact({"error": f"GET /x?{text}&y failed"}, {SECRET})
    assert stored["error"].startswith("GET /x?") and REDACTED in stored["error"]
    assert not _found(SECRET, stored["error"])


@pytest.mark.parametrize("user", ["", "u", "us", "use", "user", "userna"])
@pytest.mark.parametrize("urlsafe", [False, True])
def test_a_basic_auth_header_is_redacted_at_every_alignment(user, urlsafe):
    for raw in (f"{user}:{SECRET}".encode(), f"{user}:{SECRET}".encode("latin-1")):
        header = f"Basic {_b64(raw, urlsafe)}"
        stored = redact({"authorization": header}, {SECRET})["authorization"]
        assert not _found(SECRET, stored), stored


def test_numbers_holding_a_secret_are_redacted():
    assert redact({"n": 1234567890123, "m": 7, "ok": True}, {"4567890123"}) == {
        "n": REDACTED, "m": 7, "ok": True}


def test_keys_lists_and_tuples_are_walked():
    assert redact({SECRET: [SECRET, (1, SECRET.upper())]}, {SECRET}) == {
        REDACTED: [REDACTED, (1, REDACTED)]}


_SECRETS = st.text(st.characters(min_codepoint=32, max_codepoint=0x17F), min_size=8, max_size=40)


@settings(max_examples=300, deadline=None)
@given(secret=_SECRETS, before=st.text(max_size=6), after=st.text(max_size=6),
       wrap=st.sampled_from(["raw", "upper", "lower", "quote", "quote_plus", "b64", "b64url",
                             "hex", "json"]))
def test_no_form_survives_redaction_at_any_position(secret, before, after, wrap):
    raw = (before + secret + after).encode()
    text = {
        "raw": before + secret + after, "upper": (before + secret + after).upper(),
        "lower": (before + secret + after).lower(), "quote": quote(before + secret + after),
        "quote_plus": quote_plus(before + secret + after), "b64": _b64(raw),
        "b64url": _b64(raw, True), "hex": raw.hex(), "json": json.dumps(before + secret + after),
    }[wrap]
    stored = redact([text], {secret})[0]
    assert not _found(secret, stored), (text, stored)


def test_every_form_is_at_least_as_long_as_a_few_characters():
    assert all(len(form) >= 6 for form in forms("12345678"))


# ---------------------------------------------------------------------------- refusal at load


def test_reads_secrets_sees_every_way_in():
    assert reads_secrets("{{ secrets.TOKEN }}")
    assert reads_secrets("{{ secrets['TOKEN'] | upper }}")
    assert reads_secrets("{% set s = secrets %}{{ s.TOKEN[:4] }}")
    assert reads_secrets("secrets.TOKEN == 'x'", predicate=True)
    assert not reads_secrets("{{ input.secrets_count }}")
    assert not reads_secrets("no template here")


def _task(states: str) -> str:
    return f"name: t\nversion: 1\nstart_state: a\nstates:\n{states}  done: {{final: succeeded}}\n"


STORED = {
    "set": "  a:\n    instructions:\n      - set: {token: '{{ secrets.TOKEN | upper }}'}\n"
           "    transitions: [{to: done}]\n",
    "set nested": "  a:\n    instructions:\n      - set: {x: {y: ['{{ secrets.TOKEN[:4] }}']}}\n"
                  "    transitions: [{to: done}]\n",
    "wait.until": "  a:\n    transitions: [{to: done, wait: {until: '{{ secrets.WHEN }}'}}]\n",
    "correlate": "  a:\n    transitions: [{to: done, subscribe: {event: e, "
                 "correlate: '{{ secrets.TOKEN }}'}}]\n",
    "match": "  a:\n    transitions: [{to: done, subscribe: {event: e, "
             "match: 'event.token == secrets.TOKEN'}}]\n",
    "when": "  a:\n    transitions: [{to: done, when: 'secrets.TOKEN | length > 3'}]\n",
    "poll.until": "  a:\n    transitions: [{to: done, poll: {http: {url: 'http://x'}, every: 1s,"
                  " until: 'result.body == secrets.TOKEN'}}]\n",
}


@pytest.mark.parametrize("where", STORED)
def test_secrets_where_their_value_would_be_stored_are_refused(where):
    problems = [p for p in validate_text(_task(STORED[where])).problems if p.severity == "error"]
    assert len(problems) == 1, [str(p) for p in problems]
    assert "reads secrets, but what it computes would be stored in the run's history (a value, " \
        "or the path the run takes); secrets may be used only in what an instruction sends " \
        f"({SENT_OPTIONS})" in problems[0].message


SENT = """\
  a:
    instructions:
      - http:
          url: "{{ secrets.URL }}/p/{{ secrets.TOKEN | urlencode }}"
          method: POST
          headers: {X-Key: "{{ secrets.TOKEN | upper }}"}
          query: {key: "{{ secrets.TOKEN }}"}
          json: {token: "{{ secrets.TOKEN[:4] }}"}
          auth: {basic: {username: "{{ secrets.USER }}", password: "{{ secrets.TOKEN }}"}}
        save_as: answer
      - http:
          url: "{{ secrets.URL }}"
          form: {token: "{{ secrets.TOKEN }}"}
          auth: {bearer: "{{ secrets.TOKEN }}"}
      - rpc: {url: "{{ secrets.URL }}", method: m, params: {t: "{{ secrets.TOKEN }}"},
              headers: {X-Key: "{{ secrets.TOKEN }}"}}
      - message: {broker: redis, url: "{{ secrets.REDIS }}", to: c, body: "{{ secrets.TOKEN }}"}
      - db: {url: "{{ secrets.DB }}", query: "select %(t)s", params: {t: "{{ secrets.TOKEN }}"}}
    transitions:
      - to: done
        poll: {http: {url: "{{ secrets.URL }}", headers: {K: "{{ secrets.TOKEN }}"}},
               every: 1s, until: "result.status == 200"}
"""


def test_secrets_in_what_instructions_send_are_allowed():
    assert [str(p) for p in validate_text(_task(SENT)).problems] == []


# ---------------------------------------------------------------------------- derived values


def test_derived_pieces_are_the_outputs_of_expressions_reading_secrets():
    from engine.secrets import derived_pieces

    assert derived_pieces("a/{{ secrets.K | upper }}/b?x={{ input.x }}",
                          "a/XYZ123456/b?x=1") == ["XYZ123456"]
    assert derived_pieces({"h": ["Bearer {{ secrets.K[:10] }}"], "n": "{{ input.n }}"},
                          {"h": ["Bearer 0123456789"], "n": 3}) == ["0123456789"]
    assert derived_pieces("{% if secrets.K %}on{% endif %}", "on") == ["on"]  # whole text
    assert derived_pieces("{{ {'a': secrets.K} }}", {"a": "vvvvvvvvv"}) == ["a", "vvvvvvvvv"]
    assert derived_pieces("{{ input.x }}", "plain") == []


def test_noted_pieces_are_redacted_when_long_enough_and_bounded():
    from engine.secrets import MAX_DERIVED_LENGTH

    secrets = Secrets(environ={"ASYNC_STATES_SECRET_K": "k3y-value-long"})
    ctx = build_context(input={}, data={}, run={}, secrets=secrets)
    for template in ("{{ secrets.K | reverse }}", "{{ secrets.K[:3] }}",
                     "{{ secrets.K * 400 }}"):
        secrets.note_rendered(template, render(template, ctx))
    assert secrets.derived_values == {"gnol-eulav-y3k"}
    assert len("k3y-value-long" * 400) > MAX_DERIVED_LENGTH
    assert redact("echo GNOL-EULAV-Y3K", secrets.to_redact()) == "echo ***"


def test_connection_passwords_are_redacted_like_secrets():
    from engine.secrets import Secrets, redact

    environ = {
        "ASYNC_STATES_CONNECTION_SHOP": "amqp://app:r4bbit-pass-word@mq:5672/%2F",
        "ASYNC_STATES_CONNECTION_DEV": "amqp://guest:guest@mq:5672/%2F",  # too short to redact
    }
    to_redact = Secrets(environ=environ).to_redact()
    stored = redact("login r4bbit-pass-word refused; guest ok", to_redact)
    assert stored == "login *** refused; guest ok"
