"""The rpc instruction's gRPC calls against a real server on loopback (``tests.grpcserver``):
reflection, a descriptor-set file, metadata and the idempotency key, and status codes mapped
onto the engine's error classes and retry policy."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from engine.backoff import should_retry
from engine.errors import InstructionError
from engine.instructions import ExecContext, execute
from engine.instructions.rpc import grpc_schema, grpc_unary
from engine.language.model import Instruction, RetryPolicy, RpcSpec
from tests.engine.forking import in_child
from tests.grpcserver import SERVICE, StockServer, free_port, write_descriptor_set
from tests.tlscert import self_signed

PASSWORD = "s3cret-grpc-pw"


@pytest.fixture
def stock(monkeypatch):
    server = StockServer(free_port()).start()
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_INVENTORY", f"grpc://{server.target}")
    yield server
    server.stop()
    grpc_unary._CHANNELS.close_all()


def reserve(ctx, **spec):
    fields = {"method": f"{SERVICE}/Reserve", "protocol": "grpc", "connection": "inventory",
              "request": {"sku": "A-1", "quantity": 2}} | spec
    return execute(Instruction(kind="rpc", name="reserve", spec=RpcSpec(**fields)), ctx)


def failure(ctx, **spec) -> InstructionError:
    with pytest.raises(InstructionError) as info:
        reserve(ctx, **spec)
    return info.value


def test_a_call_through_reflection_answers_json_and_carries_the_idempotency_key(stock, make_ctx):
    result = reserve(make_ctx(key="run-7:1:reserve"),
                     metadata=(("Authorization", f"Bearer {PASSWORD}"),))
    assert result == {"id": "r-A-1-2", "sku": "A-1", "quantity": 2,
                      "idempotency_key": "run-7:1:reserve", "authorization": f"Bearer {PASSWORD}"}


def test_the_request_is_rendered_and_defaults_come_back(stock, make_ctx):
    ctx = make_ctx(render=lambda v: {"sku": "B"} if isinstance(v, dict) and "sku" in v else v)
    assert reserve(ctx)["quantity"] == 0  # zero is shown: a predicate can test it


def test_the_channel_is_reused_by_later_calls(stock, ctx):
    reserve(ctx)
    [target] = grpc_unary._CHANNELS._clients.values()
    reserve(ctx)
    assert list(grpc_unary._CHANNELS._clients.values()) == [target]


def test_a_forked_child_opens_its_own_channel(stock, ctx):
    reserve(ctx)
    assert in_child(lambda: len(grpc_unary._CHANNELS) == 0) == 0
    assert len(grpc_unary._CHANNELS) == 1


def test_unavailable_is_retryable_and_the_next_attempt_succeeds(stock, ctx):
    stock.unavailable_left = 1
    error = failure(ctx)
    assert (error.error_class, error.retryable) == ("connection", True)
    assert "UNAVAILABLE: warming up" in str(error) and "connection 'inventory'" in str(error)
    assert should_retry(RetryPolicy(), 1, error.error_class)
    assert reserve(ctx)["id"] == "r-A-1-2"
    assert len(stock.calls) == 2


def test_a_server_that_is_down_is_unavailable(monkeypatch, ctx):
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_INVENTORY", f"grpc://127.0.0.1:{free_port()}")
    error = failure(ctx)
    assert (error.error_class, error.retryable) == ("connection", True)
    assert "UNAVAILABLE" in str(error)
    assert len(grpc_unary._CHANNELS) == 0  # dropped: the next attempt opens a new channel


def test_not_found_is_final_with_its_code_and_details(stock, ctx):
    error = failure(ctx, request={"sku": "missing"})
    assert (error.error_class, error.retryable) == ("status", False)
    assert str(error) == (f"rpc {SERVICE}/Reserve on connection 'inventory': "
                          "NOT_FOUND: no sku 'missing'")
    assert error.result == {"code": "NOT_FOUND", "details": "no sku 'missing'"}
    assert not should_retry(RetryPolicy(), 1, error.error_class)
    assert should_retry(RetryPolicy(retry_on=("status",)), 1, error.error_class)


@pytest.mark.parametrize(("code", "error_class"), [
    ("DEADLINE_EXCEEDED", "timeout"), ("RESOURCE_EXHAUSTED", "429"), ("ABORTED", "conflict"),
    ("INVALID_ARGUMENT", "status"), ("INTERNAL", "status"), ("UNAUTHENTICATED", "status"),
])
def test_status_codes_map_onto_error_classes(code, error_class):
    import grpc

    class Failed(grpc.RpcError, grpc.Call):
        def code(self):
            return grpc.StatusCode[code]

        def details(self):
            return "d"

        initial_metadata = trailing_metadata = time_remaining = cancel = add_callback = None
        is_active = None

    error = grpc_unary.status_error("rpc m", Failed(), "grpc://h:1", "connection 'c'")
    assert error.error_class == error_class
    assert error.retryable == (error_class != "status")


def test_the_deadline_is_the_attempts_timeout(stock, make_ctx, monkeypatch):
    import time

    original = stock._reserve
    monkeypatch.setattr(stock, "_reserve", lambda r, c: (time.sleep(1), original(r, c))[1])
    stock.stop()
    stock.start()
    error = failure(make_ctx(timeout=0.2))
    assert (error.error_class, error.retryable) == ("timeout", True)
    assert "DEADLINE_EXCEEDED" in str(error)


@pytest.fixture
def no_reflection(monkeypatch):
    server = StockServer(free_port(), reflection=False).start()
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_INVENTORY", f"grpc://{server.target}")
    yield server
    server.stop()
    grpc_unary._CHANNELS.close_all()


def in_dir(directory, **fields) -> ExecContext:
    """An attempt's context whose descriptor directory (DESCRIPTOR_DIR) is ``directory``."""
    return ExecContext(render=lambda v: v, timeout=5, idempotency_key="k",
                       descriptor_dir=str(directory), **fields)


def test_the_descriptor_directory_is_the_task_directory_unless_set(settings):
    from taskapp.conf import conf

    settings.ASYNC_STATES = {"TASKDEFS_DIR": "/srv/tasks"}
    assert conf.engine_settings().descriptor_dir == "/srv/tasks"
    settings.ASYNC_STATES = {"TASKDEFS_DIR": "/srv/tasks", "DESCRIPTOR_DIR": "/srv/protos"}
    assert conf.engine_settings().descriptor_dir == "/srv/protos"


def test_a_descriptor_set_file_replaces_reflection(no_reflection, tmp_path, ctx):
    error = failure(ctx)
    assert "has no reflection service; name a descriptor_set" in str(error)
    (tmp_path / "protos").mkdir()
    write_descriptor_set(tmp_path / "protos" / "stock.pb")
    assert reserve(in_dir(tmp_path), descriptor_set="protos/stock.pb")["id"] == "r-A-1-2"


def test_a_bad_descriptor_set_file_is_a_final_error(stock, tmp_path):
    (tmp_path / "bad.pb").write_bytes(b"\xff\xff not a descriptor set")
    error = failure(in_dir(tmp_path), descriptor_set="bad.pb")
    assert not error.retryable and "--descriptor_set_out" in str(error)
    assert not failure(in_dir(tmp_path), descriptor_set="none.pb").retryable


@pytest.mark.parametrize(("name", "why"), [
    ("/etc/passwd", "must be a path relative to the descriptor directory (DESCRIPTOR_DIR)"),
    ("../outside.pb", "must not climb out of the descriptor directory (DESCRIPTOR_DIR)"),
    ("protos/../../outside.pb", "must not climb out of the descriptor directory"),
])
def test_a_descriptor_set_outside_the_descriptor_directory_is_refused(name, why, stock, tmp_path):
    (tmp_path / "protos").mkdir()
    write_descriptor_set(tmp_path / "outside.pb")  # readable, but not in the directory
    error = failure(in_dir(tmp_path / "protos"), descriptor_set=name)
    assert (error.error_class, error.retryable) == ("error", False)
    assert str(error).startswith(f"rpc: descriptor_set {name!r} {why}")


def test_a_symbolic_link_may_not_lead_out_of_the_descriptor_directory(no_reflection, tmp_path):
    (tmp_path / "protos").mkdir()
    write_descriptor_set(tmp_path / "stock.pb")
    (tmp_path / "protos" / "out.pb").symlink_to(tmp_path / "stock.pb")
    (tmp_path / "protos" / "shadow").symlink_to("/etc/shadow")
    for name in ("out.pb", "shadow"):
        error = failure(in_dir(tmp_path / "protos"), descriptor_set=name)
        assert "leads out of the descriptor directory (DESCRIPTOR_DIR)" in str(error)
    (tmp_path / "protos" / "in.pb").symlink_to("../protos/real.pb")  # stays inside: fine
    write_descriptor_set(tmp_path / "protos" / "real.pb")
    assert reserve(in_dir(tmp_path / "protos"), descriptor_set="in.pb")["id"] == "r-A-1-2"


def test_a_descriptor_set_that_is_not_a_regular_file_is_refused_without_blocking(stock, tmp_path):
    os.mkfifo(tmp_path / "fifo.pb")  # opening it to read would wait for a writer
    (tmp_path / "dir.pb").mkdir()
    for name in ("fifo.pb", "dir.pb"):
        started = time.monotonic()
        error = failure(in_dir(tmp_path), descriptor_set=name)
        assert time.monotonic() - started < 2
        assert f"rpc: descriptor_set '{name}' is not a regular file" in str(error)
        assert not error.retryable


def test_a_descriptor_set_over_the_size_limit_is_refused_unread(stock, tmp_path, monkeypatch):
    monkeypatch.setattr(grpc_schema, "MAX_DESCRIPTOR_SET_BYTES", 64)
    with open(tmp_path / "huge.pb", "wb") as file:
        file.truncate(10 * 1024**3)  # 10 GB, sparse: it must not be read
    error = failure(in_dir(tmp_path), descriptor_set="huge.pb")
    assert str(error) == ("rpc: descriptor_set 'huge.pb' is larger than 64 bytes "
                          "(10,737,418,240): a descriptor set is not that large")
    assert not error.retryable


def test_unknown_methods_and_requests_that_do_not_fit_are_final(stock, ctx):
    error = failure(ctx, method=f"{SERVICE}/Cancel")
    assert "has no method 'Cancel' (it has: Level, Reserve)" in str(error)
    assert not error.retryable
    assert "does not know the service 'reach.Nope'" in str(failure(ctx, method="reach.Nope/X"))
    error = failure(ctx, request={"colour": "red"})
    assert "does not fit inventory.v1.ReserveRequest" in str(error) and not error.retryable


def test_the_health_service_answers_through_reflection(stock, ctx):
    result = reserve(ctx, method="grpc.health.v1.Health/Check", request={"service": SERVICE})
    assert result == {"status": "SERVING"}


def test_a_connection_of_another_scheme_is_refused_naming_it(monkeypatch, ctx):
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_INVENTORY", f"redis://:{PASSWORD}@h:6379/0")
    error = failure(ctx)
    assert "connection 'inventory' is a redis URL, which does not serve gRPC" in str(error)
    assert PASSWORD not in str(error)



def test_grpcs_speaks_tls_verified_against_the_roots_grpc_is_given(monkeypatch, tmp_path, ctx):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    server = StockServer(free_port(), tls=(key.read_bytes(), cert.read_bytes())).start()
    # gRPC's documented way to trust a private CA (read when the first TLS channel is made).
    monkeypatch.setenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", str(cert))
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_INVENTORY", f"grpcs://localhost:{server.port}")
    try:
        assert reserve(ctx)["id"] == "r-A-1-2"
        monkeypatch.setenv("ASYNC_STATES_CONNECTION_INVENTORY", f"grpc://localhost:{server.port}")
        assert failure(ctx).error_class == "connection"  # plain text to a TLS port: refused
    finally:
        server.stop()
        grpc_unary._CHANNELS.close_all()


def test_a_certificate_that_fails_verification_is_final_and_says_so(monkeypatch, tmp_path, ctx):
    key, cert = self_signed(tmp_path)  # signed by nobody the client trusts
    server = StockServer(free_port(), tls=(key.read_bytes(), cert.read_bytes())).start()
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_INVENTORY", f"grpcs://localhost:{server.port}")
    try:
        error = failure(ctx)
        assert (error.error_class, error.retryable) == ("error", False)
        assert str(error).startswith(f"rpc {SERVICE}/Reserve on connection 'inventory': "
                                     "the server's TLS certificate failed verification: ")
        assert "CERTIFICATE_VERIFY_FAILED" in str(error)
        assert not should_retry(RetryPolicy(), 1, error.error_class)
        assert stock_calls(server) == 0
    finally:
        server.stop()
        grpc_unary._CHANNELS.close_all()


def stock_calls(server: StockServer) -> int:
    with server.lock:
        return len(server.calls)


def test_a_reflection_service_that_never_answers_is_bounded_by_the_deadline(
    monkeypatch, make_ctx
):
    import threading
    import time
    from concurrent import futures

    import grpc

    release = threading.Event()

    def hang(requests, context):
        release.wait(10)
        return iter(())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.stream_stream_rpc_method_handler(hang)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "grpc.reflection.v1alpha.ServerReflection", {"ServerReflectionInfo": handler}),))
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_INVENTORY", f"grpc://127.0.0.1:{port}")
    try:
        started = time.monotonic()
        error = failure(make_ctx(timeout=0.3))
        assert time.monotonic() - started < 5
        assert (error.error_class, error.retryable) == ("timeout", True)
        assert "DEADLINE_EXCEEDED" in str(error)
    finally:
        release.set()
        server.stop(grace=None).wait(5)
        grpc_unary._CHANNELS.close_all()


def test_a_response_over_the_result_limit_is_refused_before_decoding_and_final(stock):
    from engine.instructions import ExecContext

    ctx = ExecContext(render=lambda v: v, timeout=5, idempotency_key="k", max_result_bytes=16)
    error = failure(ctx)
    assert "larger than the limit on instruction results (MAX_RESULT_BYTES)" in str(error)
    assert (error.error_class, error.retryable) == ("error", False)
