"""README.md works as written: every console example runs, in order, against a live system
started the way ``make run`` starts it, and prints what the README shows (tests/readme.py
says how output is compared). ``make run`` itself is checked by starting scripts/run.sh on a
scratch directory and port, comparing its banner with the README, and stopping it with
Ctrl-C (SIGINT), which the README promises stops both processes.

Every console block is accounted for: its commands are run, or are ``make`` targets listed
in ``MAKE_TARGETS`` with the reason they are not run here, or form the command synopsis,
whose options are checked against each command's ``--help``. A new block or a new
``$ make ...`` line fails these tests until it is run or listed.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from tests import readme
from tests.e2e.conftest import ROOT, Cluster, Daphne, _free_port, server_environment

pytestmark = pytest.mark.e2e

# ``$ make ...`` lines of the README: why each is not run by this test.
MAKE_TARGETS = {
    "make run": "blocks until Ctrl-C; test_make_run_starts_as_shown runs scripts/run.sh "
                "(what `make run` runs once .venv is installed) and compares its output",
    "make test": "runs this suite itself",
    "make bench QUICK=1": "a benchmark: minutes of load on PostgreSQL and Redis",
    "make bench": "the full benchmark suite: about half an hour",
    "make faults QUICK=1": "a fault campaign with its own PostgreSQL and Redis; the same quick "
                           "campaign runs as tests/e2e/test_faults.py",
    "make faults": "the long fault campaign: about a quarter of an hour",
}
# The README's first line of `make run` comes from make itself, and only on a fresh install.
INSTALL_LINE = "Installing dependencies (pyproject.toml is newer than the last install)..."
# Lines the cluster prints when it is ready: they race the banner and the README leaves
# them out.
CLUSTER_LINE = re.compile(r"^Async States cluster ready ")
# Reads are repeated until the output has the README's shape: the run moves on its own.
READ = re.compile(r"^(curl (?!.*-X)|\.venv/bin/python manage\.py show_run )")
AWAIT_SECONDS = 30.0
COMMAND_SECONDS = 60.0
README_PORT = "127.0.0.1:8000"
ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_]\w*)=(?P<value>.*)$", re.DOTALL)


def console_blocks() -> list[readme.Block]:
    return [b for b in readme.blocks() if b.lang == "console"]


def is_synopsis(block: readme.Block) -> bool:
    """The usage summary: commands with ``[OPTION]`` placeholders, and no output."""
    found = readme.commands(block)
    return not any(c.expected for c in found) and any("[" in c.text for c in found)


def kind(block: readme.Block) -> str:
    found = readme.commands(block)
    makes = [c for c in found if c.key.startswith("make ")]
    if makes:
        unlisted = [c.key for c in makes if c.key not in MAKE_TARGETS]
        assert not unlisted, (f"README.md:{block.line}: {unlisted} not in MAKE_TARGETS "
                              "(tests/e2e/test_readme.py): say why it is not run")
        assert len(makes) == len(found), (
            f"README.md:{block.line}: a block mixes `make` lines with commands to run")
        return "make"
    return "synopsis" if is_synopsis(block) else "session"


@pytest.mark.usefixtures("sqlite_pass_only")
def test_every_console_block_is_run_or_listed():
    kinds = {b.line: kind(b) for b in console_blocks()}
    listed = {c.key for b in console_blocks() if kinds[b.line] == "make"
              for c in readme.commands(b)}
    assert listed == set(MAKE_TARGETS), "MAKE_TARGETS lists a command the README no longer has"
    assert list(kinds.values()).count("synopsis") == 1
    assert list(kinds.values()).count("session") >= 5


@pytest.mark.usefixtures("sqlite_pass_only")
def test_the_synopsis_names_only_options_the_commands_take():
    (block,) = [b for b in console_blocks() if kind(b) == "synopsis"]
    for command in readme.commands(block):
        name = re.search(r"manage\.py (\w+)", command.text)[1]
        shown = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", command.text))
        helped = subprocess.run([sys.executable, "manage.py", name, "--help"], cwd=ROOT,
                                capture_output=True, text=True, timeout=COMMAND_SECONDS)
        assert helped.returncode == 0, helped.stderr
        taken = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", helped.stdout))
        assert shown <= taken, f"{name}: the README shows {sorted(shown - taken)}"


# --------------------------------------------------------------------------- the sessions


class Shell:
    """Runs README commands with bash in the project folder, keeping the variables they
    set (``TOKEN=...``, ``RUN_ID=$(...)``) and the real values of the README's ids."""

    def __init__(self, env: dict[str, str], base_url: str):
        self.env = env
        self.base_url = base_url
        self.values: dict[str, str] = {}   # README value -> the value of this system

    def prepare(self, text: str) -> str:
        text = text.replace(f"http://{README_PORT}", self.base_url)
        for shown, real in self.values.items():
            text = text.replace(shown, real)
        return text

    def bash(self, script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", script], cwd=ROOT, env=self.env, text=True,
                              capture_output=True, timeout=COMMAND_SECONDS)

    def run(self, command: readme.Command) -> None:
        text = self.prepare(command.text)
        if assignment := ASSIGNMENT.match(text):
            self._assign(assignment["name"], assignment["value"], command)
            return
        deadline = time.monotonic() + (AWAIT_SECONDS if READ.match(text) else 0)
        while True:
            done = self.bash(text)
            captured = readme.match(command.expected, done.stdout) if done.returncode == 0 \
                else None
            if captured is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        assert captured is not None, (
            f"$ {command.text}\nexit status {done.returncode}; README shows:\n"
            + "\n".join(command.expected) + f"\ngot:\n{done.stdout}\nstderr:\n{done.stderr}")
        self.values.update(captured)

    def _assign(self, name: str, value: str, command: readme.Command) -> None:
        assert not command.expected, f"$ {command.text}: an assignment prints nothing"
        done = self.bash(f'{name}={value}\nprintf %s "${name}"')
        assert done.returncode == 0 and done.stderr == "", f"$ {command.text}\n{done.stderr}"
        assert done.stdout, f"$ {command.text}: {name} is empty"
        self.env[name] = done.stdout


@pytest.fixture
def live(transactional_db, django_db_reset_sequences, tmp_path):
    """The system `make run` starts — task files loaded, an admin login, daphne and the
    cluster — on the test database (fresh ids, as on a fresh install)."""
    if connection.vendor != "sqlite":
        pytest.skip("the README shows `make run`, the embedded default (SQLite); PostgreSQL's "
                    "jsonb orders JSON object keys by length, so the API's JSON differs")
    assert shutil.which("curl"), "the README's API examples use curl: install it"
    env = server_environment()
    for name in ("DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD"):
        env.pop(name, None)
    daphne = Daphne(env, tmp_path / "daphne.log")
    try:
        for args in (["loadtasks"], ["ensure_admin", "--port", str(daphne.port)]):
            done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=COMMAND_SECONDS)
            assert done.returncode == 0, done.stderr
        cluster = Cluster(env)
        cluster.start()
        try:
            yield Shell(dict(env), daphne.url)
        finally:
            cluster.stop()
    finally:
        daphne.stop()


def test_the_readme_sessions_give_what_the_readme_shows(live):
    sessions = [b for b in console_blocks() if kind(b) == "session"]
    for block in sessions:
        for command in readme.commands(block):
            live.run(command)
    # And what the README promises of every printing command: a reader that goes away
    # (`show_run ID | head`) ends it quietly.
    process = subprocess.Popen(
        ["bash", "-c", '.venv/bin/python manage.py show_run "$RUN_ID"'], cwd=ROOT,
        env=live.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    assert (process.wait(timeout=COMMAND_SECONDS), process.stderr.read()) == (141, b"")


# --------------------------------------------------------------------------- make run


def _interruptible() -> None:
    """Ctrl-C must reach scripts/run.sh even when this test runs where SIGINT is ignored
    (a background job): a shell cannot trap a signal ignored when it started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name.isdigit() and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name.isdigit() and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))
    into.put(None)


@pytest.mark.usefixtures("sqlite_pass_only")
def test_make_run_starts_as_shown_and_ctrl_c_stops_both(tmp_path):
    (block,) = [b for b in console_blocks() if readme.commands(b)[0].key == "make run"]
    expected = readme.commands(block)[0].expected
    assert expected[0] == INSTALL_LINE
    # The banner's hint is the README's next example, word for word.
    following = [b for b in console_blocks() if b.line > block.line][0]
    assert f"  {readme.commands(following)[0].text}" in expected
    port = _free_port()
    expected = [line.replace(README_PORT, f"127.0.0.1:{port}") for line in expected[1:]]
    env = {k: v for k, v in os.environ.items() if k not in {
        "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "TEST_DATABASE_NAME",
        "DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD", "DJANGO_SETTINGS_MODULE"}}
    env.update(ASYNC_STATES_VAR_DIR=str(tmp_path), PORT=str(port), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(["scripts/run.sh"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True, preexec_fn=_interruptible)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    errors: list[str] = []
    threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True).start()
    children: list[int] = []
    try:
        shown = _banner(lines, expected[-1])
        # daphne and qcluster, each the leader of its own process group
        children = [c for c in _children(process.pid) if _group_members(c)]
        assert len(children) == 2, children
        assert readme.match(expected, "\n".join(shown)) is not None, (
            "README shows:\n" + "\n".join(expected) + "\nscripts/run.sh printed:\n"
            + "\n".join(shown) + "\nstderr:\n" + "".join(errors))
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert process.wait(timeout=60) == 130
        _await(lambda: not any(_group_members(c) for c in children), "both stopped")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        for child in children:
            if _group_members(child):
                os.killpg(child, signal.SIGKILL)


def _banner(lines: queue.Queue, last: str) -> list[str]:
    """What scripts/run.sh prints up to the README's last line, without the cluster's."""
    shown: list[str] = []
    deadline = time.monotonic() + 120  # migrating a new database takes a while
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        if not CLUSTER_LINE.match(line):
            shown.append(line)
        if line == last:
            return shown
    raise AssertionError("scripts/run.sh did not print its banner:\n" + "\n".join(shown))


def _await(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not {what} after {timeout} s"
        time.sleep(0.1)
