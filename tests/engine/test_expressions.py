from datetime import UTC, datetime

import pytest

from engine.errors import ExpressionError
from engine.expressions import (
    build_context,
    check_predicate,
    check_template,
    evaluate,
    render,
)
from engine.secrets import Secrets


def _context(**extra):
    return build_context(
        input={"name": "Ada", "items": [1, 2], "order": {"total": 120}},
        data={"count": 3},
        run={"id": 7, "task": "t", "version": 1, "state": "a", "entry": 1},
        secrets=Secrets(environ={"ASYNC_STATES_SECRET_TOKEN": "s3cr3t"}),
        **extra,
    )


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ cycler.__init__ }}",
        "{{ input.__class__.__mro__ }}",
        "{{ input['__class__'] }}",
        "{% import 'os' as os %}",
        "{% include '/etc/passwd' %}",
        "{{ _private }}",
    ],
)
def test_sandbox_refuses_private_access_and_imports(template):
    with pytest.raises(ExpressionError):
        check_template(template)
    with pytest.raises(ExpressionError):
        render(template, _context())


def test_sandbox_refuses_unsafe_attributes_at_run_time():
    with pytest.raises(ExpressionError, match="unsafe"):
        render("{{ input.name | attr('__class__') }}", _context())
    with pytest.raises(ExpressionError, match="unsafe"):
        render("{{ input.items.append(3) }}", _context())


def test_one_expression_renders_to_its_native_value():
    ctx = _context()
    assert render("{{ input.items }}", ctx) == [1, 2]
    assert render("  {{ data.count + 1 }} ", ctx) == 4
    assert render("{{ input.order }}", ctx) == {"total": 120}
    assert render("{{ none }}", ctx) is None
    assert render("{{ input.order.total > 100 }}", ctx) is True


def test_native_values_are_copies():
    ctx = _context()
    render("{{ input.items }}", ctx).append(3)
    assert ctx["input"]["items"] == [1, 2]


def test_mixed_strings_render_to_strings_and_plain_strings_pass_through():
    ctx = _context()
    assert render("Hello {{ input.name }}!", ctx) == "Hello Ada!"
    assert render("{{ input.name }} and {{ data.count }}", ctx) == "Ada and 3"
    assert render("no template here", ctx) == "no template here"


def test_render_is_deep():
    rendered = render({"a": ["{{ data.count }}", ("x", "{{ input.name }}")], "b": 5}, _context())
    assert rendered == {"a": [3, ["x", "Ada"]], "b": 5}


def test_undefined_names_fail_loudly():
    with pytest.raises(ExpressionError) as caught:
        render("Hi {{ input.nmae }}", _context())
    assert caught.value.expression == "Hi {{ input.nmae }}"
    assert "nmae" in caught.value.reason
    with pytest.raises(ExpressionError):
        evaluate("data.missing > 1", _context())


def test_type_errors_name_the_expression():
    with pytest.raises(ExpressionError, match="input.name - 1"):
        render("{{ input.name - 1 }}", _context())


def test_mapping_keys_win_over_dict_methods():
    assert render("{{ input.items | length }}", _context()) == 2


def test_predicates():
    ctx = _context(result={"status": 200, "body": {"state": "shipped"}})
    assert evaluate("result.status == 200 and result.body.state == 'shipped'", ctx) is True
    assert evaluate("input.order.total > 500", ctx) is False


@pytest.mark.parametrize("predicate", ["a ==", "{{ a }}", "a b", "x.__class__"])
def test_bad_predicates_do_not_parse(predicate):
    with pytest.raises(ExpressionError):
        check_predicate(predicate)


def test_bad_template_reports_reason_and_line():
    with pytest.raises(ExpressionError) as caught:
        check_template("a\n{{ input. }}")
    assert caught.value.line == 2


def test_filters_and_now():
    now = datetime(2026, 1, 2, tzinfo=UTC)
    ctx = _context(now=now)
    assert render("{{ input.order | tojson }}", ctx) == '{"total":120}'
    assert render("{{ '1h30m' | seconds }}", ctx) == 5400.0
    assert render("{{ now.year }}", ctx) == 2026
