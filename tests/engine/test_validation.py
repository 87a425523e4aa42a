from engine.language import validate_text


def _task(states: str, extra: str = "") -> str:
    return f"name: t\nversion: 1\nstart_state: a\n{extra}states:\n{states}"


def _messages(text: str, severity: str = "error") -> list[str]:
    return [p.message for p in validate_text(text).problems if p.severity == severity]


def test_every_graph_problem_is_reported_not_just_the_first():
    text = _task(
        "  a:\n    transitions: [{to: nowhere}]\n"
        "  b:\n    transitions: [{to: done}]\n"
        "  c: {}\n"
        "  done: {final: succeeded}\n"
    )
    messages = _messages(text)
    assert any("goes to 'nowhere'" in m for m in messages)
    assert any("'b' is unreachable" in m for m in messages)
    assert any("state 'c' is not final and has no transitions" in m for m in messages)


def test_on_error_and_on_timeout_count_as_edges_for_reachability():
    text = _task(
        "  a:\n    timeout: 1m\n    on_timeout: late\n"
        "    instructions:\n      - {http: {url: 'http://x'}, on_error: broken}\n"
        "    transitions: [{to: done, wait: 1h}]\n"
        "  late: {final: failed}\n  broken: {final: failed}\n  done: {final: succeeded}\n"
    )
    assert validate_text(text).problems == ()


def test_cycle_without_exit_warns_but_loads():
    text = _task(
        "  a:\n    transitions:\n      - {to: done, when: 'data.ok'}\n      - {to: b}\n"
        "  b:\n    transitions: [{to: b, wait: 1m}]\n  done: {final: succeeded}\n"
    )
    report = validate_text(text)
    assert report.ok and report.task is not None
    assert [p.message for p in report.warnings] == [
        "no final state can be reached from state 'b'; a run that enters it can only end "
        "by its deadline"
    ]


def test_unconditional_transition_shadows_every_later_one():
    text = _task(
        "  a:\n    transitions:\n      - to: done\n      - {to: done, wait: 1s}\n"
        "      - {to: done, when: 'true'}\n  done: {final: succeeded}\n"
    )
    warnings = validate_text(text).warnings
    assert [(p.line, p.path) for p in warnings] == [
        (8, "states.a.transitions[1]"),
        (9, "states.a.transitions[2]"),
    ]


def test_duplicate_transition_names_are_errors():
    text = _task(
        "  a:\n    transitions:\n      - {to: done, name: go, wait: 1s}\n"
        "      - {to: done, name: go, when: 'true'}\n  done: {final: succeeded}\n"
    )
    assert _messages(text) == [
        "transition name 'go' is used twice in state 'a'; names must be unique within a "
        "state (history and idempotency keys use them)"
    ]


def test_timeouts_within_the_deadline_are_fine():
    text = _task(
        "  a:\n    timeout: 1h\n    transitions: [{to: done, wait: 1m}]\n"
        "  done: {final: succeeded}\n",
        extra="deadline: 1d\nmax_global_transition_timeout: 2h\n",
    )
    assert validate_text(text).problems == ()


def test_graph_checks_wait_for_a_clean_parse():
    text = _task("  a:\n    transitions: [{to: nowhere, wait: soon}]\n")
    assert _messages(text) == [
        "bad duration 'soon': use seconds (30) or a form like 500ms, 30s, 5m, 2h, 1d, 1h30m"
    ]
