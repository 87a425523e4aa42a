"""Templates and predicates within budgets: every hostile class fails with ``BudgetExceeded``
(or, for a macro calling itself, a recursion ``ExpressionError``) in bounded time and memory,
and nothing is evaluated when a template is loaded."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.budgets import MAX_INT_DIGITS, TemplateLimits, value_size
from engine.errors import BudgetExceeded, ExpressionError
from engine.expressions import MAX_NESTING, check_predicate, check_template, evaluate, render

# Generous bounds, far above what a budget lets an evaluation spend (1 s, 1 M characters):
# they only catch a hook that is missing, where the same text took minutes and gigabytes.
SECONDS = 10.0
PEAK_BYTES = 64 * 1024 * 1024
# Loading parses in about a millisecond; the bound leaves room for a loaded, shared machine.
LOAD_SECONDS = 5.0

DOUBLE_LOOP = ("{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}"
               "{% endfor %}{% endfor %}")
SHARED = ("{% set a = ['x' * 1000] %}{% set a = [a,a,a,a,a,a,a,a,a,a] %}"
          "{% set a = [a,a,a,a,a,a,a,a,a,a] %}{% set a = [a,a,a,a,a,a,a,a,a,a] %}")

HOSTILE = {
    "power tower": "{{ 10 ** (10 ** 8) }}",
    "power of a literal": "{{ 2 ** 99999999 }}",
    "repeated string": "{{ 'x' * 10 ** 9 }}",
    "repeated list": "{{ [1, 2] * 10 ** 9 }}",
    "center filter": "{{ 'x' | center(10 ** 9) }}",
    "center literal width": "{{ 'x' | center(1000000000) }}",
    "ljust method": "{{ 'x'.ljust(10 ** 9) }}",
    "rjust method": "{{ 'x'.rjust(999999999) }}",
    "zfill method": "{{ '1'.zfill(999999999) }}",
    "indent filter": "{{ 'a\nb' | indent(999999999) }}",
    "expandtabs": "{{ 'a\tb'.expandtabs(999999999) }}",
    "format filter width": "{{ '%0999999999d' | format(1) }}",
    "percent operator width": "{{ '%0999999999d' % 1 }}",
    "percent star width": "{{ '%*d' % (999999999, 1) }}",
    "percent precision": "{{ '%.999999999f' % 1.5 }}",
    "str.format width": "{{ '{:>999999999}'.format(1) }}",
    "str.format nested width": "{{ '{:>{w}}'.format(1, w=999999999) }}",
    "str.format_map": "{{ '{x:>999999999}'.format_map({'x': 1}) }}",
    "nested range loops": DOUBLE_LOOP,
    "nested loops in a set block": "{% set s %}" + DOUBLE_LOOP + "{% endset %}{{ s }}",
    "loop over data": "{% for a in input.many %}{% for b in input.many %}{% for c in "
                      "input.many %}.{% endfor %}{% endfor %}{% endfor %}",
    "exponential macro": "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}"
                         "{% endif %}{% endmacro %}{{ f(60) }}",
    "replace blow-up method": "{{ ('x' * 100000).replace('x', 'y' * 100000) }}",
    "replace blow-up filter": "{{ ('x' * 100000) | replace('x', 'y' * 1000) }}",
    "replace of empty": "{{ ('x' * 900000).replace('', 'yy') }}",
    "join of shared strings": "{{ (['x' * 100000] * 1000) | join }}",
    "join method": "{{ ''.join(['x' * 100000] * 1000) }}",
    "join of a string's characters": "{{ ('x' * 99999) | join('y' * 99999) }}",
    "join method of a string's characters": "{{ ('y' * 99999).join('x' * 99999) }}",
    "join of a generator": "{{ (['ab'] * 1000) | map('upper') | join('y' * 99999) }}",
    "join method of a mapping's keys": "{{ ('y' * 99999).join(dict.fromkeys(range(1000))"
                                       " | map('string')) }}",
    "join of a set": "{{ (range(1000) | map('string') | unique | list) | join('y' * 99999) }}",
    "dict with a huge key": "{{ {'x' * 10 ** 9: 1} }}",
    "dict.fromkeys of a huge key": "{{ dict.fromkeys(['x' * 10 ** 9]) }}",
    "to_bytes": "{{ (1).to_bytes(10 ** 9, 'big') }}",
    "translate": "{{ ('x' * 100000).translate({120: 'y' * 100000}) }}",
    "tojson of shared lists": SHARED + "{{ a | tojson }}",
    "output of shared lists": SHARED + "{{ a }}",
    "string of shared lists": SHARED + "{{ a | string | length }}",
    "concat of shared lists": SHARED + "{{ (a ~ '') | length }}",
    "percent of shared lists": SHARED + "{{ ('%s' % [a]) | length }}",
    "pprint of shared lists": SHARED + "{{ a | pprint | length }}",
    "doubling concatenations": "{% set s = 'x' * 1000 %}" + "".join(
        "{% set s = s ~ s %}" for _ in range(20)) + "{{ s | length }}",
    "wordwrap": "{{ ('x' * 100000) | wordwrap(1, wrapstring='y' * 1000) }}",
    "batch padding": "{{ [1] | batch(999999999, 0) | list }}",
    "slice count": "{{ [1] | slice(99999999) | list }}",
    "loop of big outputs": "{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}",
    "loop of template text": "{% for i in range(100000) %}" + "x" * 1000 + "{% endfor %}",
    "map of padding": "{{ range(1000) | map('center', 999999) | list | length }}",
    "range too long": "{{ range(10 ** 9) | list }}",
    "filter chain in a loop": "{% for i in range(100000) %}{{ 'ab' | upper | lower | "
                              "title | trim | reverse }}{% endfor %}",
}

RECURSIVE = {
    "macro calling itself": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "recursive loop": "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
}

PREDICATES = {
    "power": "10 ** (10 ** 8) > 0",
    "repeat": "('x' * 10 ** 9) | length > 0",
    "center": "('x' | center(10 ** 9)) | length > 0",
    "ranges": "range(100000) | map('string') | join | length > (range(100000) | map("
              "'string') | join | length)" + " and 'x' * 10 ** 9" ,
    "format": "('%0999999999d' | format(1)) != ''",
}


def _context() -> dict[str, Any]:
    return {"input": {"many": list(range(1000)), "name": "Ada"}, "data": {}}


def _bounded(call: Callable[[], Any]) -> tuple[Any, float, int]:
    """Run ``call``; return what it raised (or returned), the seconds and the peak bytes."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        outcome: Any = call()
    except Exception as exc:  # noqa: BLE001 - the test inspects what came out
        outcome = exc
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return outcome, elapsed, peak


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_template_fails_with_the_budget_error_in_bounded_time_and_memory(text):
    started = time.perf_counter()
    check_template(text)  # loading parses; nothing is evaluated
    assert time.perf_counter() - started < LOAD_SECONDS
    outcome, elapsed, peak = _bounded(lambda: render(text, _context()))
    assert isinstance(outcome, BudgetExceeded), outcome
    assert elapsed < SECONDS and peak < PEAK_BYTES, (elapsed, peak)


@pytest.mark.parametrize("text", RECURSIVE.values(), ids=RECURSIVE.keys())
def test_recursion_fails_as_an_expression_error(text):
    outcome, elapsed, peak = _bounded(lambda: render(text, _context()))
    assert isinstance(outcome, ExpressionError) and "recursion" in str(outcome)
    assert elapsed < SECONDS and peak < PEAK_BYTES


@pytest.mark.parametrize("text", PREDICATES.values(), ids=PREDICATES.keys())
def test_hostile_predicate_fails_with_the_budget_error(text):
    check_predicate(text)
    outcome, elapsed, peak = _bounded(lambda: evaluate(text, _context()))
    assert isinstance(outcome, BudgetExceeded), outcome
    assert elapsed < SECONDS and peak < PEAK_BYTES


@pytest.mark.parametrize("text", [
    "{{ 10 ** (10 ** 8) }}", "{{ 'x' | center(1000000000) }}", "{{ 'x' * 1000000000 }}",
    "{{ ('x' | center(1000000000)) ~ 'y' }}", "{{ [1] * 1000000000 }}", DOUBLE_LOOP,
    "{{ '%0999999999d' | format(1) }}", "{% if 'x' | center(1000000000) %}{% endif %}",
])
def test_loading_never_evaluates(text):
    outcome, elapsed, peak = _bounded(lambda: check_template(text))
    assert outcome is None and elapsed < LOAD_SECONDS and peak < 8 * 1024 * 1024


def test_budget_error_names_the_expression_the_budget_its_value_and_setting():
    with pytest.raises(BudgetExceeded) as caught:
        render("{{ 'x' * 10 ** 9 }}", {})
    error = caught.value
    assert (error.setting, error.limit, error.code) == ("TEMPLATE_MAX_OUTPUT", 1_000_000,
                                                        "budget_exceeded")
    assert str(error) == ("template budget exceeded: size of a repetition over "
                          "TEMPLATE_MAX_OUTPUT=1000000 in \"{{ 'x' * 10 ** 9 }}\"")
    with pytest.raises(BudgetExceeded, match="TEMPLATE_MAX_OPERATIONS=50000"):
        render(DOUBLE_LOOP, {})


def test_budget_error_truncates_a_long_expression():
    text = "{{ 'x' * 10 ** 9 }}" + "y" * 5000
    with pytest.raises(BudgetExceeded) as caught:
        render(text, {})
    assert len(str(caught.value)) < 300 and "(5019 characters)" in str(caught.value)
    assert caught.value.expression == text


def test_limits_are_the_callers():
    tight = TemplateLimits(max_operations=50, max_output=100)
    loop = "{% for i in range(60) %}{{ i }}{% endfor %}"
    assert render(loop, {}) == "".join(map(str, range(60)))
    with pytest.raises(BudgetExceeded, match="TEMPLATE_MAX_OPERATIONS=50"):
        render(loop, {}, limits=tight)
    with pytest.raises(BudgetExceeded, match="TEMPLATE_MAX_OUTPUT=100"):
        render("{{ 'x' * 101 }}", {}, limits=tight)
    with pytest.raises(BudgetExceeded, match="TEMPLATE_MAX_OPERATIONS=50"):
        evaluate("range(100) | list | length > 0", {}, limits=tight)


def test_deadline_names_its_setting():
    limits = TemplateLimits(max_seconds=0.0, deadline_setting="STEP_MAX_SECONDS",
                            deadline_limit=30.0)
    with pytest.raises(BudgetExceeded, match=r"evaluation time \(seconds\) over "
                                             r"STEP_MAX_SECONDS=30"):
        render("{% for i in range(10) %}{{ i }}{% endfor %}", {}, limits=limits)
    slow = TemplateLimits(max_seconds=0.05, max_operations=10 ** 9, max_output=10 ** 9)
    with pytest.raises(BudgetExceeded, match="TEMPLATE_MAX_SECONDS=0.05"):
        render(DOUBLE_LOOP.replace("{{ i }}", ""), {}, limits=slow)


def test_one_render_shares_its_budget_across_every_template_of_a_value():
    limits = TemplateLimits(max_operations=100)
    loop = "{% for i in range(30) %}{% endfor %}"
    assert render([loop, loop], {}, limits=limits) == ["", ""]
    with pytest.raises(BudgetExceeded):
        render({"a": loop, "b": [loop, loop, loop]}, {}, limits=limits)


def test_a_result_larger_than_the_output_budget_is_refused():
    big = {"items": ["x" * 1000] * 2000}
    assert render("{{ input.items | length }}", {"input": big}) == 2000
    with pytest.raises(BudgetExceeded, match="size of the result"):
        render("{{ input.items }}", {"input": big})


@pytest.mark.parametrize("text,expected", [
    ("{{ 2 ** 10 }}", 1024), ("{{ 'ab' * 3 }}", "ababab"), ("{{ [1] * 3 }}", [1, 1, 1]),
    ("{{ 'a' + 'b' }}", "ab"), ("{{ '%05d' % 42 }}", "00042"), ("{{ 'x' | center(5) }}", "  x  "),
    ("{{ '{:>4}'.format(7) }}", "   7"), ("{{ '%s-%s' | format(1, 2) }}", "1-2"),
    ("{{ 'a-b'.replace('-', '+') }}", "a+b"), ("{{ ['a', 'b'] | join(',') }}", "a,b"),
    ("{{ 'abc' | join('-') }}", "a-b-c"), ("{{ '-'.join('abc') }}", "a-b-c"),
    ("{{ ['a', 'b'] | map('upper') | join }}", "AB"), ("{{ {'k': 1} | join }}", "k"),
    ("{{ ','.join({'a': 1, 'b': 2}) }}", "a,b"),
    ("{{ 'x' ~ 1 ~ [2] }}", "x1[2]"), ("{{ (2 ** 4000) > 0 }}", True),
    ("{{ 1" + " + 1" * 40 + " }}", 41), ("{{ range(3) | list }}", [0, 1, 2]),
    ("{% for i in range(3) %}{{ loop.index }}/{{ loop.length }} {% endfor %}", "1/3 2/3 3/3 "),
    ("{{ [1, 2] | batch(3, 0) | list }}", [[1, 2, 0]]),
    ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ n }}{% endif %}{% endmacro %}{{ f(5) }}",
     "12345"),
])
def test_ordinary_templates_are_unchanged(text, expected):
    assert render(text, {}) == expected


def test_an_integer_of_more_than_the_digit_limit_is_refused():
    assert MAX_INT_DIGITS == 4300
    with pytest.raises(BudgetExceeded, match="MAX_INT_DIGITS=4300"):
        render("{{ 10 ** 5000 }}", {})
    with pytest.raises(ExpressionError, match="4300 digits"):
        check_template("{{ " + "9" * 5000 + " }}")


@pytest.mark.parametrize("text", [
    "{{ " + "(" * 300 + "1" + ")" * 300 + " }}", "{{ " + "[" * 300 + "]" * 300 + " }}",
    "{{ 1" + " + 1" * 1000 + " }}", "{{ 'x'" + " | upper" * 300 + " }}",
    "{% if 1 %}" * 100 + "{% endif %}" * 100, "{{ " + "-" * 5000 + "1 }}",
])
def test_deep_nesting_is_a_problem_at_load_time(text):
    outcome, elapsed, _ = _bounded(lambda: check_template(text))
    assert isinstance(outcome, ExpressionError), outcome
    assert f"nested more than {MAX_NESTING} levels deep" in str(outcome)
    assert elapsed < LOAD_SECONDS


def test_autoescape_is_refused_it_evaluates_at_compile_time():
    with pytest.raises(ExpressionError, match="'autoescape' is not allowed"):
        check_template("{% autoescape 'x' | center(1000000000) %}{% endautoescape %}")


def test_the_loop_helper_cannot_be_named():
    for text in ("{{ budgeted_iter }}", "{{ environment }}", "{{ self.budgeted_iter }}"):
        with pytest.raises(ExpressionError):
            render(text, {})


def test_value_size_counts_shared_references_and_stops_at_the_limit():
    inner = ["x" * 10] * 10
    assert value_size(inner, 10 ** 6) == 2 + 10 + 10 * 12
    shared: Any = "x"
    for _ in range(60):
        shared = [shared, shared]
    started = time.perf_counter()
    assert value_size(shared, 1000) > 1000
    assert time.perf_counter() - started < 0.1
    assert value_size([shared] * 3, 10 ** 30) == 2 + 3 + 3 * value_size(shared, 10 ** 30)


# ---------------------------------------------------------------- random expressions

_LITERALS = st.sampled_from([
    "0", "1", "2", "7", "10", "100", "99999", "999999", "10 ** 9", "-3", "0.5", "'x'",
    "'ab'", "''", "'x' * 99999", "[1] * 99999", "'%0*d'",
    "'%05d'", "'{:>9}'", "[1, 2]", "[]", "{'a': 1}", "none", "true", "range(5)",
    "input.many", "input.name",
])
_BINARY = st.sampled_from(["+", "-", "*", "**", "/", "//", "%", "~", "==", "<", "and", "or"])
_FILTERS = st.sampled_from([
    "center({})", "indent({})", "replace('x', {})", "join({})", "format({})", "batch({}, 0)",
    "slice({})", "wordwrap({})", "truncate({})", "upper", "tojson", "string", "list",
    "length", "sum", "first", "sort", "unique", "reverse", "default({})", "int", "float",
    "pprint", "map('string')", "map('center', {})",
])


_METHODS = st.sampled_from([
    "center({})", "ljust({})", "zfill({})", "replace('x', {})", "join({})", "split()",
    "expandtabs({})", "format({})", "upper()", "count({})", "to_bytes({}, 'big')",
])


def _expressions() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, _BINARY, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(inner, _FILTERS, inner).map(
                lambda t: f"({t[0]} | {t[1].format(t[2])})"),
            st.tuples(inner, inner).map(lambda t: f"[{t[0]}, {t[1]}]"),
            st.tuples(inner, inner).map(lambda t: f"{{{t[0]}: {t[1]}}}"),
            st.tuples(inner, _METHODS, inner).map(lambda t: f"({t[0]}).{t[1].format(t[2])}"),
            st.tuples(inner, inner).map(lambda t: f"'{{:>{{w}}}}'.format({t[0]}, w={t[1]})"),
        )

    return st.recursive(_LITERALS, extend, max_leaves=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expressions(), st.booleans())
def test_random_expressions_end_in_a_value_or_an_expression_error(expression, as_loop):
    text = (f"{{% for i in {expression} %}}{{% for j in {expression} %}}{{{{ i ~ j }}}}"
            f"{{% endfor %}}{{% endfor %}}" if as_loop else f"{{{{ {expression} }}}}")
    started = time.perf_counter()
    try:
        check_template(text)
        render(text, _context())
    except ExpressionError:
        pass
    try:
        evaluate(expression, _context())
    except ExpressionError:
        pass
    assert time.perf_counter() - started < SECONDS


DAG = ("{% set a = ('x',) %}" + "{% set a = (a, a, a, a, a, a, a, a, a, a) %}" * 9)


@pytest.mark.parametrize("text", [
    DAG + "{{ 1 }}",
    "{% set a = ['x'] %}" + "{% set a = [a] * 10 %}" * 9 + "{{ 1 }}",
    "{% set a = {'k': 'x'} %}" + "{% set a = {'a': a, 'b': a, 'c': a, 'd': a} %}" * 15
    + "{{ 1 }}",
    "{% set a = 'x' %}" + "{% set a = dict.fromkeys(range(100), a) %}" * 5 + "{{ 1 }}",
])
def test_values_shared_until_they_are_huge_are_refused_when_made(text):
    # Comparing, hashing or writing out such a value would walk it whole, in C, with no
    # chance to stop: it must never exist.
    outcome, elapsed, peak = _bounded(lambda: render(text, {}))
    assert isinstance(outcome, BudgetExceeded) and "size of a" in str(outcome), outcome
    assert elapsed < SECONDS and peak < PEAK_BYTES


def test_a_macro_call_counts_four_operations():
    # range() (its call and itself: 2), the loop's wrapper (1), 10 iterations, 10 macro
    # calls of 4: 53.
    text = "{% macro f() %}.{% endmacro %}{% for i in range(10) %}{{ f() }}{% endfor %}"
    assert render(text, {}, limits=TemplateLimits(max_operations=53)) == "." * 10
    with pytest.raises(BudgetExceeded, match="TEMPLATE_MAX_OPERATIONS=52"):
        render(text, {}, limits=TemplateLimits(max_operations=52))
