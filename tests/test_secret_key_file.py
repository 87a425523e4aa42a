"""The secret key the embedded default keeps in ``var/``: processes that start together on a
fresh install (the two passes of ``make test``, daphne and the cluster) must share one key,
or what one signs another refuses."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRINT_KEY = "from django.conf import settings; print(settings.SECRET_KEY)"


def test_processes_starting_together_keep_one_key_of_mode_0600(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(ASYNC_STATES_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="async_states.settings")
    started = [subprocess.Popen([sys.executable, "-c", PRINT_KEY], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, text=True) for _ in range(4)]
    keys = {p.communicate(timeout=60)[0].strip() for p in started}
    stored = tmp_path / "secret_key"
    assert keys == {stored.read_text().strip()} and len(stored.read_text()) > 40
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no file left aside
