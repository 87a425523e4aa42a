"""A hand-made corpus of bad requests against every endpoint of taskapp/api/urls.py: each
gets a 4xx (or a 503 when a service is down) in the one JSON error shape, never a 500 nor
Django's HTML page. Run on PostgreSQL too (``-m postgres``): NUL and lone surrogates only
fail there (jsonb and text refuse them).

Django's test client raises what a view raises, so a 500 fails the test with its traceback.
"""

from __future__ import annotations

import json

import pytest
from django.urls import get_resolver, resolve
from rest_framework.test import APIClient

from taskapp import models

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

BIG = 10 * 1024 * 1024


def assert_error(response, *statuses: int) -> dict:
    """The response is one of ``statuses`` (any 4xx when none) in the error shape."""
    if statuses:
        assert response.status_code in statuses, (response.status_code, response.content[:300])
    else:
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert set(body) == {"code", "message", "errors"}, body
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["message"], str) and body["message"]
    assert all(isinstance(v, list) and all(isinstance(m, str) for m in v)
               for v in body["errors"].values()), body
    return body


@pytest.fixture
def run(waiting):
    return waiting("A-1")


@pytest.fixture
def endpoints(run):
    """Every endpoint, with the path of a thing that exists."""
    pk = run.pk
    return {
        "runs": ("/api/runs/", ["get", "post"]),
        "run": (f"/api/runs/{pk}/", ["get"]),
        "transitions": (f"/api/runs/{pk}/transitions/", ["get"]),
        "attempts": (f"/api/runs/{pk}/attempts/", ["get"]),
        "cancel": (f"/api/runs/{pk}/cancel/", ["post"]),
        "redrive": (f"/api/runs/{pk}/redrive/", ["post"]),
        "run_events": (f"/api/runs/{pk}/events/", ["post"]),
        "events": ("/api/events/", ["post"]),
        "tasks": ("/api/tasks/", ["get"]),
        "validate": ("/api/tasks/validate/", ["post"]),
        "simulate": ("/api/tasks/simulate/", ["post"]),
        "task": ("/api/tasks/shop_order/", ["get"]),
        "task_diagram": ("/api/tasks/shop_order/diagram/", ["get"]),
        "task_events": ("/api/tasks/shop_order/events/", ["post"]),
        "health": ("/api/health/", ["get"]),
        "schema": ("/api/schema/", ["get"]),
        "docs": ("/api/docs/", ["get"]),
        "index": ("/api/", ["get"]),
    }


def test_the_corpus_names_every_endpoint(endpoints):
    names = {p.name for p in get_resolver("taskapp.api.urls").url_patterns if p.name}
    assert {resolve(path).url_name for path, _ in endpoints.values()} == names


# ---------------------------------------------------------------------------- JSON bodies

DEEP_ARRAYS = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECTS = b'{"a":' * 10_000 + b"1" + b"}" * 10_000


def _body(**fields) -> bytes:
    return json.dumps({"task": "shop_order", "name": "payment.succeeded",
                       "text": "name: x", **fields}).encode()


# (name, raw body, content type, expected status)
HOSTILE_BODIES = [
    ("10 MB", b'{"text": "' + b"x" * BIG + b'"}', "application/json", 413),
    ("deep arrays", DEEP_ARRAYS, "application/json", 400),
    ("deep objects", DEEP_OBJECTS, "application/json", 400),
    ("65 deep", b'{"input": ' + b"[" * 65 + b"]" * 65 + b"}", "application/json", 400),
    ("NUL in a value", _body(input={"order_id": "a\x00b"}, data={"x": "\x00"},
                             text="\x00", state="\x00", id="\x00", correlation="\x00"),
     "application/json", 400),
    ("NUL in a key", b'{"task": "shop_order", "input": {"a\\u0000": 1}, "data": '
                     b'{"a\\u0000": 1}, "name": "n", "text": "x"}', "application/json", 400),
    ("lone surrogate", b'{"task": "shop_order", "input": {"order_id": "\\ud800"}, "data": '
                       b'"\\udfff", "name": "n", "text": "\\ud800", "state": "\\ud800"}',
     "application/json", 400),
    ("5,000 digits", b'{"input": {"n": ' + b"9" * 5000 + b'}, "data": ' + b"9" * 5000
     + b', "version": ' + b"9" * 5000 + b', "text": 1, "name": "n"}', "application/json", 400),
    ("20 digits", b'{"input": {"n": -99999999999999999999}, "data": 99999999999999999999, '
                  b'"version": 99999999999999999999, "name": "n", "text": "x"}',
     "application/json", 400),
    ("1e999", b'{"input": {"n": 1e999}, "data": -1e999, "ttl": 1e999, "name": "n", '
              b'"text": "x"}', "application/json", 400),
    ("NaN", b'{"input": {"n": NaN}, "data": NaN, "ttl": NaN, "name": "n", "text": "x"}',
     "application/json", 400),
    ("Infinity", b'{"input": {"n": Infinity}, "data": -Infinity, "ttl": Infinity, '
                 b'"name": "n", "text": "x"}', "application/json", 400),
    ("duplicated keys", b'{"task": "shop_order", "task": "x", "name": "n", "name": "m", '
                        b'"text": "a", "text": "b"}', "application/json", 400),
    ("bad UTF-8", b'{"task": "\xff\xfe\xc3"}', "application/json", 400),
    ("truncated", b'{"task": "shop_order", "input": {', "application/json", 400),
    ("a string", b'"shop_order"', "application/json", 400),
    ("an array", b'[{"task": "shop_order"}]', "application/json", 400),
    ("a number", b"42", "application/json", 400),
    ("null", b"null", "application/json", 400),
    ("whitespace", b"  \n ", "application/json", 400),
    ("wrong types", b'{"task": {}, "input": [], "version": "two", "name": [], "text": [], '
                    b'"ttl": "soon", "state": 1.5, "run": "x", "data": 1, "id": []}',
     "application/json", 400),
    ("ttl as text", b'{"name": "n", "ttl": "nan", "task": "shop_order", "text": 5, '
                    b'"state": 1, "input": {"order_id": "a"}, "version": "1e999"}',
     "application/json", 400),
    ("booleans", b'{"name": "n", "ttl": false, "task": "shop_order", "text": true, '
                 b'"state": false, "input": {"order_id": "a"}, "version": true}',
     "application/json", 400),
    ("form", b"task=shop_order", "application/x-www-form-urlencoded", 415),
    ("multipart", b"--b\r\n\r\n--b--", "multipart/form-data; boundary=b", 415),
    ("html", b"<p>hi</p>", "text/html", 415),
    ("bad media type", b"{}", "application/", 415),
]
POSTS_WITH_BODIES = ["runs", "redrive", "run_events", "events", "validate", "task_events",
                     "simulate"]


@pytest.mark.parametrize("name, body, content_type, expected", HOSTILE_BODIES,
                         ids=[c[0] for c in HOSTILE_BODIES])
def test_hostile_bodies_are_4xx_in_the_error_shape(api, endpoints, webhook_env, name, body,
                                                   content_type, expected):
    for endpoint in POSTS_WITH_BODIES:
        path = endpoints[endpoint][0]
        response = api.generic("POST", path, body, content_type=content_type)
        assert_error(response, expected)
    assert models.Run.objects.count() == 1  # the fixture's run: nothing was started


def test_an_unstorable_value_is_named_by_its_path(api, shop):
    response = api.post("/api/runs/", {"task": "shop_order",
                                       "input": {"order_id": "A", "items": [{"n": "x\x00"}]}},
                        format="json")
    body = assert_error(response, 400)
    assert list(body["errors"]) == ["input.items[0].n"]
    assert "NUL" in body["errors"]["input.items[0].n"][0]


def test_the_depth_limit_is_named(api, shop):
    body = assert_error(api.generic("POST", "/api/runs/", DEEP_ARRAYS,
                                    content_type="application/json"), 400)
    assert "10000 deep" in body["message"] and "API_MAX_JSON_DEPTH" in body["message"]


def test_a_duplicated_key_is_named(api, shop):
    body = assert_error(api.generic("POST", "/api/runs/", b'{"task": "a", "task": "b"}',
                                    content_type="application/json"), 400)
    assert '"task" appears twice' in body["message"]


def test_the_size_limit_is_named(api, shop):
    body = assert_error(api.generic("POST", "/api/tasks/validate/", b"x" * BIG,
                                    content_type="text/plain"), 413)
    assert body["code"] == "request_too_large" and "API_MAX_BODY_BYTES" in body["message"]


def test_the_largest_integer_is_accepted_and_one_more_is_not(api, shop):
    top = 2**63 - 1
    ok = api.post("/api/runs/", {"task": "shop_order", "input": {"order_id": "A", "n": -top}},
                  format="json")
    assert ok.status_code == 201, ok.content
    assert ok.json()["input"]["n"] == -top
    body = assert_error(api.post("/api/runs/", {"task": "shop_order", "input": {
        "order_id": "A", "n": top + 1}}, format="json"), 400)
    assert list(body["errors"]) == ["input.n"]


def test_a_byte_order_mark_is_ignored(api, shop):
    response = api.generic("POST", "/api/runs/", b"\xef\xbb\xbf" + _body(
        input={"order_id": "B"}), content_type="application/json")
    assert response.status_code == 201, response.content


def test_64_deep_is_accepted(api, shop):
    payload = b'{"task": "shop_order", "input": {"order_id": "A", "n": ' + b"[" * 62 \
        + b"]" * 62 + b"}}"
    assert api.generic("POST", "/api/runs/", payload,
                       content_type="application/json").status_code == 201


@pytest.mark.parametrize("endpoint", ["cancel"])
def test_a_body_nobody_reads_changes_nothing(api, endpoints, endpoint):
    """Cancel takes no body: whatever is sent is not read, and the run is cancelled."""
    response = api.generic("POST", endpoints[endpoint][0], DEEP_ARRAYS,
                           content_type="application/json")
    assert response.status_code == 200


def test_an_empty_body_is_a_field_error(api, endpoints, webhook_env):
    for endpoint in ["runs", "run_events", "events", "validate", "task_events"]:
        body = assert_error(api.generic("POST", endpoints[endpoint][0], b"",
                                        content_type="application/json"), 400)
        assert body["errors"], endpoint


def test_no_content_type_is_415_or_a_field_error(api, endpoints, webhook_env):
    for endpoint in POSTS_WITH_BODIES:
        response = api.generic("POST", endpoints[endpoint][0], b'{"task": "x"}',
                               content_type="")
        assert_error(response, 400, 415)


# ---------------------------------------------------------------------------- /tasks/validate/

HOSTILE_TEXTS = [
    "a: &a [*a]\nname: x\n",  # a recursive alias
    "&a [*a]",
    "x: &x {y: *x}\n",
    "name: t\nversion: 99999999999999999999\nstart_state: s\nstates: {s: {final: succeeded}}\n",
    "name: t\nstart_state: s\nstates:\n  s:\n    timeout: 99999999999999999999\n"
    "    on_timeout: s\n",
    "[" * 10_000,
    "[" * 10_000 + "]" * 10_000,
    "{a: " * 5_000 + "1" + "}" * 5_000,
    "- " * 5_000 + "x",
    "\x00\x01\x02",
    "name: \ud800\n",
    "\ufeffname: x\n",
    "%YAML 9.9\n---\nx: 1\n",
    "!!python/object/apply:os.system ['true']\n",
    "x: !!binary 'not base64 ***'\n",
    "x: !!timestamp 99999-99-99\n",
    "x: !!float 1e99999\n",
    "x: !!int 0x" + "f" * 5000 + "\n",
    "x: " + "9" * 5000 + "\n",
    "a: &a x\nb: *a\n" * 3,
    "&anchor",
    "*undefined",
    "? [a, b]\n: c\n",
    "- !!set {a, b}\n- !!omap [a: 1]\n- !!pairs [a: 1]\n",
]
BILLION_LAUGHS = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
    for p, c in zip("abc", "bcd", strict=True))


@pytest.mark.parametrize("text", [*HOSTILE_TEXTS, BILLION_LAUGHS],
                         ids=[f"text{i}" for i in range(len(HOSTILE_TEXTS) + 1)])
def test_validate_answers_every_text_with_a_report_or_a_400(api, text):
    as_json = json.dumps({"text": text}).encode()  # a lone surrogate as its \u escape
    for response in (api.generic("POST", "/api/tasks/validate/", as_json,
                                 content_type="application/json"),
                     api.generic("POST", "/api/tasks/validate/",
                                 text.encode("utf-8", "surrogatepass"),
                                 content_type="application/yaml")):
        if response.status_code == 200:
            assert response.json()["ok"] in (True, False)
        else:
            assert_error(response, 400)


def test_validate_names_the_text_when_the_reader_fails(api, monkeypatch):
    def broken(text, source, limits=None):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("taskapp.api.tasks.validate_text", broken)
    body = assert_error(api.post("/api/tasks/validate/", {"text": "x: 1"}, format="json"), 400)
    assert list(body["errors"]) == ["text"] and "RecursionError" in body["errors"]["text"][0]


# ---------------------------------------------------------------------------- query parameters

NUMBERS = ["²", "١٢", "0", "-1", "+5", " 5", "5 ", "1_0", "1e3", "5.0", "0x10", "",
           "9" * 20, "9" * 5000, "\u00a0", "五"]


@pytest.mark.parametrize("value", NUMBERS)
def test_page_size_is_ascii_digits_in_range(api, endpoints, value):
    for endpoint in ["runs", "transitions", "attempts"]:
        response = api.get(endpoints[endpoint][0], {"page_size": value})
        body = assert_error(response, 400)
        assert "page_size" in body["errors"]


@pytest.mark.parametrize("value", NUMBERS)
def test_version_is_ascii_digits_in_range(api, endpoints, value):
    for endpoint in ["runs", "task"]:
        response = api.get(endpoints[endpoint][0], {"version": value})
        body = assert_error(response, 400)
        assert "version" in body["errors"]


@pytest.mark.parametrize("params", [
    {"cursor": "garbage"}, {"cursor": "cD0yMDI2LTEzLTQ1"},  # "p=2026-13-45"
    {"cursor": "cD0AAA=="}, {"cursor": "\u00e9" * 500}, {"ordering": "-id"}, {"ordering": ""},
    {"status": "nope"}, {"created_after": "yesterday"}, {"created_before": "2026-02-30T00:00"},
    {"finished_after": "9999-12-31T23:59:59-23:59"}, {"in_state_longer_than": "nan"},
    {"in_state_longer_than": "inf"}, {"in_state_longer_than": "1e400"},
    {"in_state_longer_than": "9" * 5000}, {"in_state_longer_than": "-5"},
    {"in_state_shorter_than": "P99999999999D"}, {"in_state_shorter_than": "99999999999999d"},
    {"in_state_longer_than": "%s%d%(x)s%"}, {"in_state_longer_than": "P%s"},
    {"created_after": "%s"}, {"version": "%d"}, {"page_size": "%"},
    {"task": "x" * 100_000},
])
def test_bad_filters_are_400(api, endpoints, params):
    response = api.get(endpoints["runs"][0], params)
    if "task" in params:
        assert response.status_code == 200 and response.json()["results"] == []
        return
    assert_error(response, 400)


def test_unknown_query_parameters_are_ignored(api, endpoints):
    for name, (path, methods) in endpoints.items():
        if "get" in methods:
            response = api.get(path, {"nope": "1", "page": "2", "limit": "x"})
            assert response.status_code in (200, 503), (name, response.status_code)


# ---------------------------------------------------------------------------- paths and headers


def test_nul_anywhere_in_a_path_is_404(api, endpoints):
    for name, (path, methods) in endpoints.items():
        for cut in (len("/api/"), len(path) - 1):
            bad = path[:cut] + "%00" + path[cut:]
            for method in methods:
                body = assert_error(api.generic(method.upper(), bad), 404)
                assert "NUL" in body["message"], (name, bad)


@pytest.mark.parametrize("run_id", [
    "x" * 10_000, "%ff%fe", "00000000-0000-0000-0000-00000000000g", "{" + "0" * 32 + "}",
    "urn:uuid:" + "0" * 32, "١" * 32, "%F0%9F%98%80",
])
def test_bad_run_ids_are_404(api, run_id):
    for suffix, method in [("", "get"), ("transitions/", "get"), ("attempts/", "get"),
                           ("cancel/", "post"), ("redrive/", "post"), ("events/", "post")]:
        response = api.generic(method.upper(), f"/api/runs/{run_id}/{suffix}", b'{"name": "n"}',
                               content_type="application/json")
        assert_error(response, 404)


@pytest.mark.parametrize("name", ["x" * 10_000, "%ff", "..", "%F0%9F%98%80", "shop_order%20"])
def test_bad_task_names_are_404(api, webhook_env, name):
    assert_error(api.get(f"/api/tasks/{name}/"), 404)
    assert_error(api.get(f"/api/tasks/{name}/diagram/?format=dot"), 404)
    assert_error(api.post(f"/api/tasks/{name}/events/", {"name": "n"}, format="json"), 404)


def test_nul_in_a_query_parameter_or_header_is_400(api, endpoints):
    for name, (path, methods) in endpoints.items():
        if "get" not in methods:
            continue
        body = assert_error(api.get(path, {"task": "a\x00"}), 400)
        assert "task" in body["errors"], name
        assert_error(api.get(path, {"a\x00": "1"}), 400)
        assert_error(api.get(path, HTTP_X_TRACE="a\x00b"), 400)


def test_huge_headers_are_answered(api, endpoints):
    junk = {f"HTTP_X_JUNK_{i}": "j" * 8_000 for i in range(100)}
    for name, (path, methods) in endpoints.items():
        response = getattr(api, methods[0])(path, **junk)
        assert response.status_code < 500 or (name, response.status_code) == ("health", 503)


# ---------------------------------------------------------------------------- who may call

TOKENS = ["Token ", "Token nope", "Token " + "x" * 100_000, "Bearer abc", "Token a b",
          "Token \u00e9\u00e9", "Basic Zm9vOmJhcg==", "Token\x00abc"]


@pytest.mark.parametrize("header", TOKENS)
def test_bad_tokens_are_401_everywhere_but_health(endpoints, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    for name, (path, methods) in endpoints.items():
        for method in methods:
            response = client.generic(method.upper(), path, b"{}",
                                      content_type="application/json")
            if "\x00" in header:
                assert_error(response, 400)
            elif name == "health":
                assert response.status_code in (200, 503)
            elif name == "index" and not header.startswith("Token"):  # open, holds no data;
                assert response.status_code == 200  # a scheme we do not read is no token
            else:
                assert_error(response, 401)


def test_no_token_is_401_everywhere_but_health(anonymous, endpoints):
    for name, (path, methods) in endpoints.items():
        for method in methods:
            response = anonymous.generic(method.upper(), path, b'{"name": "n"}',
                                         content_type="application/json")
            if name == "health":
                assert response.status_code in (200, 503)
            elif name == "index":  # open: it lists links and where to sign in
                assert response.status_code == 200
            else:
                assert_error(response, 401)


def test_a_user_without_permissions_is_403_on_every_change(read_only_api, endpoints):
    for name in ["runs", "cancel", "redrive", "run_events", "events", "task_events", "simulate"]:
        path, methods = endpoints[name]
        response = read_only_api.post(path, {"task": "shop_order", "name": "payment.succeeded",
                                             "input": {"order_id": "Z"}}, format="json")
        body = assert_error(response, 403)
        assert "permission" in body["message"], name
    assert models.Run.objects.count() == 1


def test_a_user_without_permissions_cannot_freeze_validate(read_only_api):
    """Any signed-in user may validate, so the reader's bounds are what protects the server;
    the body bound holds here whatever the user."""
    assert_error(read_only_api.generic("POST", "/api/tasks/validate/", b"x" * BIG,
                                       content_type="text/plain"), 413)


@pytest.mark.parametrize("endpoint, field, limit", [
    ("validate", "source", 500), ("runs", "task", 200), ("events", "name", 200)])
def test_a_string_one_past_its_max_length_is_refused_even_if_whitespace_ends_it(
        api, endpoints, field, limit, endpoint):
    """The schema's maxLength counts the string as sent; DRF would trim separators such as
    \\x1e before counting, and so accept what the schema says is too long."""
    body = {"text": "name: x", "task": "shop_order", "name": "paid", "correlation": "A-1",
            field: "\x1e" + "a" * limit}
    response = api.post(endpoints[endpoint][0], body, format="json")
    assert field in assert_error(response, 400)["errors"]
