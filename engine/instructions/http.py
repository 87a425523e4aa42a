"""The ``http`` instruction, and the HTTP transport that ``rpc`` shares.

This module owns sending one request with ``requests``: the per-thread, per-process session,
the default headers (``User-Agent``, ``Idempotency-Key``), the per-attempt deadline, the capped
body read, the result shape, and the mapping of every failure to an ``error_class``:

========================  ================  =========
failure                   error_class       retryable
========================  ================  =========
connect/read timeout      ``timeout``       yes
refused, reset, DNS       ``connection``    yes
certificate not verified  ``error``         no
status 5xx                ``5xx``           yes
status 429                ``429``           yes
status 4xx                ``4xx``           no
any other unexpected      ``status``        no
bad URL, body, redirects  ``error``         no
========================  ================  =========

Messages name the request by its URL as written in the task (the template, with the query's
templates), never as rendered or sent, and keep no text of a library's exception that could
echo the URL sent: a rendered URL may carry a secret, and messages are stored. Retries, and
redacting what a far end echoes back, are the runner's.
"""

from __future__ import annotations

import functools
import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from engine.errors import InstructionError
from engine.forksafe import fork_safe_local
from engine.instructions import ExecContext, certificate_error, instruction_error
from engine.language.model import HttpAuth, HttpSpec

USER_AGENT = "async-states/0.1"
DEFAULT_MAX_RESPONSE_BYTES = HttpSpec.__dataclass_fields__["max_response_bytes"].default
_CHUNK_BYTES = 64 * 1024
_EXCERPT_CHARS = 200

# One session per thread: a Session is not documented as thread-safe, and a worker runs one
# attempt at a time per thread, so each pool needs few connections per host; it keeps up to
# 32 hosts warm.
_POOL_HOSTS = 32
_POOL_PER_HOST = 4

_local = fork_safe_local()


def session() -> requests.Session:
    """This thread's session in this process: a forked child starts without the parent's
    (``engine.forksafe``), whose pooled sockets the parent still uses."""
    if not hasattr(_local, "session"):
        _local.session = _new_session()
    return _local.session


def _new_session() -> requests.Session:
    new = requests.Session()
    # max_retries=0: retries belong to the runner's policy, never hidden inside one attempt.
    adapter = HTTPAdapter(pool_connections=_POOL_HOSTS, pool_maxsize=_POOL_PER_HOST, max_retries=0)
    new.mount("http://", adapter)
    new.mount("https://", adapter)
    new.headers["User-Agent"] = USER_AGENT
    return new


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A fully rendered request. ``json`` is sent when not ``None``, else ``form`` if given."""

    method: str
    url: str
    shown: str  # the URL as written in the task: what messages show
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    form: dict[str, Any] | None = None
    auth: HttpAuth | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


@dataclass(frozen=True, slots=True)
class Exchange:
    """What ``send`` got back: the URL as messages show it and the result to save."""

    shown: str
    result: dict[str, Any]


def send(request: HttpRequest, ctx: ExecContext) -> Exchange:
    """Send ``request`` once and read its response, whatever the status.

    Adds ``Idempotency-Key: ctx.idempotency_key`` unless the request has one. Connecting and
    each socket read are bounded by ``ctx.timeout`` seconds, and reading the body stops once
    ``ctx.timeout`` has passed since the start, so a slow server costs at most about twice the
    timeout (connect, then the wait for the headers), never an unbounded trickle.

    Returns:
        The URL sent, and the result ``{"status", "headers", "body", "elapsed_ms"}`` plus
        ``"truncated": True`` when the body was cut at ``max_response_bytes``.

    Raises:
        InstructionError: the request could not be built or sent, or the response not read
            (``timeout``, ``connection`` or ``error``), or the body is longer than
            ``ctx.max_result_bytes`` when ``max_response_bytes`` asked for more (``error``).
    """
    started = time.monotonic()
    prepared = _prepare(request, ctx)
    limit, refuse = _body_limit(request.max_response_bytes, ctx.max_result_bytes)
    try:
        response = _send_prepared(prepared, ctx.timeout)
        body, truncated = _read_to_end(response, limit, started + ctx.timeout)
    except requests.RequestException as exc:
        raise transport_error(exc, request.method, request.shown, ctx.timeout) from exc
    if truncated and refuse:
        raise instruction_error(
            f"{request.method.upper()}: the response body is larger than {limit:,} bytes, the "
            f"limit on instruction results (MAX_RESULT_BYTES); max_response_bytes "
            f"({request.max_response_bytes:,}) cannot raise it")
    result = _result(response, body, truncated)
    result["elapsed_ms"] = round((time.monotonic() - started) * 1000, 3)
    return Exchange(shown=request.shown, result=result)


def _body_limit(max_response_bytes: int, max_result_bytes: int) -> tuple[int, bool]:
    """How many body bytes to read, and whether a longer body fails the attempt.

    A body longer than ``max_response_bytes`` is cut (the result says ``truncated``). The
    runner's result limit bounds that cap: a task asking for more than the runner keeps
    would hold the whole body in memory only to have it refused, so reading stops at the
    result limit and a longer body is an error.
    """
    if 0 < max_result_bytes < max_response_bytes:
        return max_result_bytes, True
    return max_response_bytes, False


def _prepare(request: HttpRequest, ctx: ExecContext) -> requests.PreparedRequest:
    headers = {str(k): str(v) for k, v in request.headers.items()}
    if not any(k.lower() == "idempotency-key" for k in headers):
        headers["Idempotency-Key"] = ctx.idempotency_key
    basic = None
    if request.auth is not None:
        basic = _apply_auth(request.auth, headers)
    outgoing = requests.Request(
        request.method.upper(),
        request.url,
        headers=headers,
        params=request.query or None,
        json=request.json,
        data=request.form if request.json is None else None,
        auth=basic,
    )
    try:
        return session().prepare_request(outgoing)
    except (requests.RequestException, ValueError, TypeError) as exc:
        # Bad URL, or a body that does not encode (NaN, an object): fixing it takes an edit.
        # requests' own text quotes the rendered URL: only its kind is kept.
        raise InstructionError(
            f"{request.method.upper()} {request.shown}: cannot build the request: "
            f"{_build_failure(exc)}"
        ) from exc


def _build_failure(exc: Exception) -> str:
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                  | requests.exceptions.InvalidSchema):
        return f"the URL is not valid ({type(exc).__name__})"
    if isinstance(exc, requests.RequestException):
        return type(exc).__name__
    return f"the body does not encode ({type(exc).__name__})"


def _apply_auth(auth: HttpAuth, headers: dict[str, str]) -> tuple[str, str] | None:
    if auth.kind == "bearer":
        headers["Authorization"] = f"Bearer {auth.token or ''}"
        return None
    if auth.kind == "basic":
        return (auth.username or "", auth.password or "")
    raise InstructionError(f"unknown HTTP auth kind {auth.kind!r} (expected basic or bearer)")


def _send_prepared(prepared: requests.PreparedRequest, timeout: float) -> requests.Response:
    current = session()
    settings = _environment_settings(_origin(prepared.url or ""))
    return current.send(prepared, timeout=(timeout, timeout), **dict(settings))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@functools.lru_cache(maxsize=1024)
def _environment_settings(origin: str) -> tuple[tuple[str, Any], ...]:
    """What ``Session.request`` does besides ``send``: proxies (and no_proxy) and the CA
    bundle from the environment. requests scans the whole environment for them on every
    request — about 0.7 ms a call here — so it is done once per origin and process."""
    settings = session().merge_environment_settings(origin + "/", {}, True, None, None)
    return tuple(settings.items())


def _read_to_end(response: requests.Response, limit: int, deadline: float) -> tuple[bytes, bool]:
    """``_read_capped``, then the connection back to the pool when the body was read whole.

    ``Response.close`` would close the socket, since we read ``raw`` ourselves and ``requests``
    does not know the body was consumed; a cut or failed read must close it.
    """
    reusable = False
    try:
        body, truncated = _read_capped(response, limit, deadline)
        reusable = not truncated
    finally:
        if reusable:
            response.raw.release_conn()
        else:
            response.close()
    return body, truncated


def _read_capped(response: requests.Response, limit: int, deadline: float) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the (decoded) body, and whether more was left unread.

    ``requests``' read timeout bounds each socket read, not the whole body, so a server that
    trickles bytes is stopped here at ``deadline``. ``read1`` returns what has arrived rather
    than waiting for a full chunk, which is what lets the deadline be checked in between.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := _read1(response):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
        if time.monotonic() > deadline:
            raise requests.exceptions.ReadTimeout("the response body did not arrive in time")
    return b"".join(chunks), False


def _read1(response: requests.Response) -> bytes:
    """One read of the body, with urllib3's errors as the ``requests`` ones they stand for."""
    try:
        return response.raw.read1(_CHUNK_BYTES, decode_content=True) or b""
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ReadTimeout(exc) from exc
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # reset, incomplete body, TLS
        raise requests.ConnectionError(exc) from exc


def _result(response: requests.Response, body: bytes, truncated: bool) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in response.headers.items()}
    result: dict[str, Any] = {
        "status": response.status_code,
        "headers": headers,
        "body": _parse_body(body, headers.get("content-type"), truncated),
    }
    if truncated:
        result["truncated"] = True
    return result


def _parse_body(body: bytes, content_type: str | None, cut: bool) -> Any:
    """JSON when the content type says so (or is missing and the body parses), else text.

    A truncated body is always text: half a JSON document is not JSON.
    """
    text = _decode(body, content_type)
    if cut or not text:
        return text
    if content_type is None or _is_json_type(content_type):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _decode(body: bytes, content_type: str | None) -> str:
    """The body as text in its declared charset, else UTF-8.

    Not ``requests``' ``Response.encoding``: it falls back to ISO-8859-1 for ``text/*``
    without a charset (RFC 2616; RFC 7231 dropped that default), which garbles UTF-8.
    """
    charset = "utf-8"
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    try:
        return body.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def transport_error(
    exc: requests.RequestException, method: str, shown: str, timeout: float
) -> InstructionError:
    """The ``InstructionError`` for a request that got no (complete) response.

    ``shown`` is the URL as written in the task. The exception's own text is not used: urllib3
    writes the path and query sent into it ("Max retries exceeded with url: ..."); only the
    root cause (an operating-system error such as "Connection refused") is kept.
    """
    where = f"{method.upper()} {shown}"
    if isinstance(exc, requests.Timeout):  # before ConnectionError: ConnectTimeout is both
        return instruction_error(f"{where}: timed out after {timeout:g}s", "timeout")
    unverified = _unverified(exc)
    if unverified is not None:  # before ConnectionError: SSLError is one
        return certificate_error(where, unverified.verify_message or "unknown reason")
    if isinstance(exc, requests.ConnectionError):
        return instruction_error(f"{where}: connection failed: {root_cause(exc)}", "connection")
    return instruction_error(f"{where}: request failed: {type(exc).__name__}")


def _unverified(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure at the root of ``exc``, if that is what it is."""
    return next((e for e in _chain(exc) if isinstance(e, ssl.SSLCertVerificationError)), None)


def root_cause(exc: BaseException) -> str:
    """The innermost cause of a transport failure, described without any URL.

    An ``OSError`` with a ``strerror`` ("Connection refused", "Name or service not known")
    is described by it; otherwise by the innermost exception's type (its text may quote the
    request).
    """
    innermost = exc
    for current in _chain(exc):
        innermost = current
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
    return type(innermost).__name__


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes, outermost first, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = _inner(current)


def _inner(exc: BaseException) -> BaseException | None:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return reason
    if exc.args and isinstance(exc.args[0], BaseException):
        return exc.args[0]
    return exc.__cause__ or exc.__context__


def check_status(
    method: str, shown: str, result: dict[str, Any], expect: tuple[int, ...] = ()
) -> None:
    """Raise unless ``result["status"]`` is expected (``expect``, or any 2xx when empty).

    Raises:
        InstructionError: classified ``5xx``, ``429``, ``4xx`` or ``status``, carrying the
            response as ``result``.
    """
    status = result["status"]
    if status in expect or (not expect and 200 <= status < 300):
        return
    wanted = ", ".join(map(str, expect)) if expect else "2xx"
    raise instruction_error(
        f"{method.upper()} {shown}: status {status} (expected {wanted}): "
        f"{excerpt(result['body'])}",
        status_error_class(status),
        result=result,
    )


def status_error_class(status: int) -> str:
    """The error class of an unexpected status: ``5xx``, ``429``, ``4xx`` or ``status``."""
    if status >= 500:
        return "5xx"
    if status == 429:
        return "429"
    return "4xx" if 400 <= status < 500 else "status"


def excerpt(body: Any) -> str:
    """A short one-line excerpt of a response body for error messages."""
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "…"


def shown_url(url: str, query: tuple[tuple[str, Any], ...] = ()) -> str:
    """The URL as written in the task, with its query's names and templates appended."""
    if not query:
        return url
    pairs = "&".join(f"{name}={value}" for name, value in query)
    return f"{url}{'&' if '?' in url else '?'}{pairs}"


def render_auth(auth: HttpAuth | None, ctx: ExecContext) -> HttpAuth | None:
    """``auth`` with its username, password and token rendered."""
    if auth is None:
        return None
    return HttpAuth(
        kind=auth.kind,
        username=_render_str(auth.username, ctx),
        password=_render_str(auth.password, ctx),
        token=_render_str(auth.token, ctx),
    )


def _render_str(value: str | None, ctx: ExecContext) -> str | None:
    return None if value is None else str(ctx.render(value))


def render_pairs(pairs: tuple[tuple[str, Any], ...] | None, ctx: ExecContext) -> dict | None:
    """A spec's ``((name, template), ...)`` as a rendered dict; ``None`` stays ``None``."""
    return None if pairs is None else ctx.render(dict(pairs))


class HttpExecutor:
    kind = "http"
    side_effects = True
    spec_type = HttpSpec

    def execute(self, spec: HttpSpec, ctx: ExecContext) -> dict[str, Any]:
        """Send the request ``spec`` describes, once.

        Returns:
            The response as ``send`` describes it.

        Raises:
            InstructionError: transport failure or an unexpected status (see the module table).
        """
        request = HttpRequest(
            method=str(ctx.render(spec.method)),
            url=str(ctx.render(spec.url)),
            shown=shown_url(spec.url, spec.query),
            headers=render_pairs(spec.headers, ctx) or {},
            query=render_pairs(spec.query, ctx) or {},
            json=ctx.render(spec.json),
            form=render_pairs(spec.form, ctx),
            auth=render_auth(spec.auth, ctx),
            max_response_bytes=spec.max_response_bytes,
        )
        exchange = send(request, ctx)
        check_status(request.method, exchange.shown, exchange.result, spec.expect)
        return exchange.result


EXECUTOR = HttpExecutor()
