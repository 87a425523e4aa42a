"""Send one hostile input (``bench/faults/hostile.py``) to the running web server and judge
the answer: a 5xx, no answer, or an error outside the API's JSON shape is a finding."""

from __future__ import annotations

import time
from typing import Any

from bench.faults.hostile import ANSWER_SECONDS, Hostile


def send(case: Hostile, base_url: str, tokens: dict[str, str]) -> dict[str, Any]:
    import requests

    headers = {"Content-Type": case.content_type}
    if token := tokens.get(case.auth):
        headers["Authorization"] = f"Token {token}"
    body = case.body() if case.body else None
    began = time.monotonic()
    result: dict[str, Any] = {"name": case.name, "method": case.method, "path": case.path[:120],
                              "bytes": len(body or b""), "auth": case.auth}
    try:
        response = requests.request(case.method, base_url + case.path, data=body,
                                    headers=headers, timeout=ANSWER_SECONDS)
    except requests.RequestException as exc:
        result.update(status=None, seconds=round(time.monotonic() - began, 2),
                      problem=f"no answer within {ANSWER_SECONDS:.0f}s ({type(exc).__name__})")
        return result
    result.update(status=response.status_code, seconds=round(time.monotonic() - began, 2),
                  problem=_problem(response))
    return result


def _problem(response) -> str | None:
    if response.status_code >= 500:
        return f"answered {response.status_code}: {_gist(response.text)!r}"
    if response.status_code >= 400 and not _json_error(response):
        return (f"answered {response.status_code} outside the JSON error shape "
                f"({response.headers.get('Content-Type')}): {_gist(response.text)!r}")
    return None


def _json_error(response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and {"code", "message"} <= body.keys()


def _gist(text: str) -> str:
    """An HTML error page's title, else the start of the body."""
    if "<title>" in text:
        return text.split("<title>", 1)[1].split("</title>", 1)[0].strip()
    return text[:200]
