"""The echo app as real processes on 127.0.0.1 (no Envoy): servers, knobs, log, ForwardEcho, lifecycle."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from harness.errors import ProcessError
from harness.mesh import echo_client
from harness.mesh.base import SendSpec
from harness.mesh.echo_client import ControlClient
from harness.mesh.local.apps import AppProcess
from harness.sample_apps.echo import fields

STARTED: list[AppProcess] = []


def _start(tmp: Path, service: str, version: str, instance: str, ready_timeout: float = 10.0,
           **defaults: str) -> AppProcess:
    app = AppProcess.start(service, version, instance, defaults=defaults, workdir=tmp, ready_timeout=ready_timeout)
    STARTED.append(app)
    return app


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead too
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppProcess, AppProcess]]:
    tmp = tmp_path_factory.mktemp("echo")
    server = _start(tmp, "reviews", "v1", "reviews-v1-0")
    client = _start(tmp, "client", "v1", "client-v1-0")
    yield server, client
    for app in STARTED:
        app.stop()
    assert [a.pid for a in STARTED if _alive(a.pid)] == []


@pytest.fixture()
def http(apps: tuple[AppProcess, AppProcess]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{apps[0].http_port}", trust_env=False, timeout=10) as c:
        yield c


def test_echo_app_http_identity_and_echo_body(http: httpx.Client) -> None:
    resp = http.post("/some/path?a=1&b=2", headers={"Host": "reviews:9080", "X-Custom": "yes",
                                                    "x-request-id": "rid-1", "traceparent": "00-t-s-01"},
                     content=b"payload")
    assert resp.status_code == 200
    assert (resp.headers[fields.SERVICE_HEADER], resp.headers[fields.VERSION_HEADER],
            resp.headers[fields.INSTANCE_HEADER]) == ("reviews", "v1", "reviews-v1-0")
    assert (resp.headers["x-request-id"], resp.headers["traceparent"]) == ("rid-1", "00-t-s-01")
    body = resp.json()
    assert {k: body[k] for k in ("method", "path", "host", "protocol", "service", "version", "instance")} == {
        "method": "POST", "path": "/some/path?a=1&b=2", "host": "reviews:9080", "protocol": "HTTP/1.1",
        "service": "reviews", "version": "v1", "instance": "reviews-v1-0"}
    assert body["headers"]["x-custom"] == "yes"


def test_echo_app_status_knob_by_header_and_query(http: httpx.Client) -> None:
    assert http.get("/", headers={fields.KNOB_STATUS: "503"}).status_code == 503
    assert http.get("/?status=418").status_code == 418
    bad = http.get("/", headers={fields.KNOB_STATUS: "500:0.5"})
    assert bad.status_code == 400
    assert "bad value for echo knob 'status': '500:0.5'" in bad.json()["error"]


def test_echo_app_delay_knob(http: httpx.Client) -> None:
    started = time.monotonic()
    assert http.get("/?delay=300ms").status_code == 200
    assert time.monotonic() - started >= 0.3  # the app sleeps at least this long: a hard lower bound


def test_echo_app_fail_first_knob_counts_per_request_id(http: httpx.Client) -> None:
    headers = {fields.KNOB_FAIL_FIRST: "2:500", "x-request-id": "ff-1"}
    assert [http.get("/", headers=headers).status_code for _ in range(3)] == [500, 500, 200]
    assert http.get("/", headers={**headers, "x-request-id": "ff-2"}).status_code == 500
    assert http.get("/", headers={fields.KNOB_FAIL_FIRST: "1"}).status_code == 400  # no request id to count


def test_echo_app_instance_default_knobs(tmp_path: Path) -> None:
    app = _start(tmp_path, "reviews", "v2", "reviews-v2-0", status="503", delay="10ms")
    with httpx.Client(base_url=f"http://127.0.0.1:{app.http_port}", trust_env=False, timeout=10) as c:
        assert c.get("/").status_code == 503
        assert c.get("/", headers={fields.KNOB_STATUS: "200"}).status_code == 200
    app.stop()
    app.stop()  # idempotent
    assert not app.is_running()


def test_echo_app_grpc_generic_method(apps: tuple[AppProcess, AppProcess]) -> None:
    async def call() -> tuple[bytes, dict[str, str], grpc.StatusCode | None]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{apps[0].grpc_port}") as channel:
            ok = channel.unary_unary("/any.Service/AnyMethod")
            c = ok(b"\x01\x02", metadata=[("x-request-id", "g-1")], timeout=10)
            payload = await c
            md = {k: v for k, v in (await c.initial_metadata() or ()) if isinstance(v, str)}
            try:
                await ok(b"", metadata=[(fields.KNOB_GRPC_STATUS, "RESOURCE_EXHAUSTED")], timeout=10)
            except grpc.aio.AioRpcError as exc:
                return payload, md, exc.code()
            return payload, md, None

    import asyncio

    payload, md, failed = asyncio.run(call())
    assert json.loads(payload)["path"] == "/any.Service/AnyMethod"
    assert json.loads(payload)["protocol"] == "gRPC"
    assert (md[fields.VERSION_HEADER], md["x-request-id"]) == ("v1", "g-1")
    assert failed is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_echo_app_forward_echo_to_another_instance(apps: tuple[AppProcess, AppProcess]) -> None:
    server, client = apps
    server.control.clear_log()
    spec = SendSpec(url="http://reviews:9080/fwd?x=1", count=200, concurrency=8, include_echo=True,
                    headers=(("x-extra", "e"),))
    observations = client.control.forward(spec, connect_to=f"127.0.0.1:{server.http_port}")
    assert [o.index for o in observations] == list(range(200))
    assert {(o.status, o.service, o.version, o.instance, o.error) for o in observations} == {
        (200, "reviews", "v1", "reviews-v1-0", None)}
    assert len({o.request_id for o in observations}) == 200
    echo = observations[0].echo
    assert echo is not None and (echo.host, echo.path, echo.headers["x-extra"]) == ("reviews:9080", "/fwd?x=1", "e")
    log = server.control.log()
    assert sorted(r.request_id for r in log) == sorted(o.request_id for o in observations)
    assert {(r.host, r.instance) for r in log} == {("reviews:9080", "reviews-v1-0")}


def test_echo_app_log_after_a_time_has_only_the_later_batch(apps: tuple[AppProcess, AppProcess]) -> None:
    server, client = apps
    server.control.clear_log()
    first = client.control.forward(SendSpec(url="http://reviews:9080/", count=30), connect_to=f"127.0.0.1:{server.http_port}")
    between = time.time()
    second = client.control.forward(SendSpec(url="http://reviews:9080/", count=20), connect_to=f"127.0.0.1:{server.http_port}")
    later = server.control.log(after=between)
    assert sorted(r.request_id for r in later) == sorted(o.request_id for o in second)
    assert len(server.control.log()) == len(first) + len(second)
    assert server.control.log(after=time.time() + 60) == []


def test_echo_app_log_reads_page_after_page_until_a_short_one(apps: tuple[AppProcess, AppProcess],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    server, client = apps
    server.control.clear_log()
    sent = client.control.forward(SendSpec(url="http://reviews:9080/", count=7), connect_to=f"127.0.0.1:{server.http_port}")
    for page in (2, 7, 8):  # pages of 2, 2, 2, 1; of 7 then an empty one; one short page
        monkeypatch.setattr(echo_client, "_LOG_PAGE", page)
        assert sorted(r.request_id for r in server.control.log()) == sorted(o.request_id for o in sent)


def test_echo_app_forward_grpc(apps: tuple[AppProcess, AppProcess]) -> None:
    server, client = apps
    spec = SendSpec(url="http://reviews:7070", protocol="grpc", count=20, concurrency=4,
                    headers=((fields.KNOB_FAIL_FIRST, "1"), ("x-request-id", "same")))
    observations = client.control.forward(spec, connect_to=f"127.0.0.1:{server.grpc_port}")
    assert [o.grpc_status for o in observations].count(grpc.StatusCode.UNAVAILABLE.value[0]) == 1
    assert {o.instance for o in observations} == {"reviews-v1-0"}


def test_echo_app_forward_rate_deadline_and_new_connection(apps: tuple[AppProcess, AppProcess]) -> None:
    server, client = apps
    target = f"127.0.0.1:{server.http_port}"
    started = time.monotonic()
    paced = client.control.forward(SendSpec(url="http://reviews:9080/", count=31, rate=100.0), target)
    elapsed = time.monotonic() - started
    assert [o.status for o in paced] == [200] * 31
    assert 0.3 <= elapsed < 10.0  # request 30 may not start before 0.3s; the upper bound is generous

    cut = client.control.forward(SendSpec(url="http://reviews:9080/?delay=1s", count=5, concurrency=1,
                                          deadline_s=0.5), target)
    assert [o.status for o in cut] == [0] * 5
    assert cut[0].error == "in flight at the batch deadline of 0.5s"
    assert cut[4].error == "not sent before the batch deadline of 0.5s"

    timed_out = client.control.forward(SendSpec(url="http://reviews:9080/?delay=2s", timeout_s=0.2), target)
    assert (timed_out[0].status, timed_out[0].error) == (0, "timeout after 0.2s")

    server.control.clear_log()
    fresh = client.control.forward(SendSpec(url="http://reviews:9080/", count=5, concurrency=1,
                                            new_connection=True, include_echo=True), target)
    assert all(o.echo is not None and o.echo.headers.get("connection") == "close" for o in fresh)


def test_echo_app_forward_refuses_a_bad_request(apps: tuple[AppProcess, AppProcess]) -> None:
    with pytest.raises(Exception, match=r"answered 400: .*connect_to: expected 'HOST:PORT'"):
        apps[1].control.forward(SendSpec(url="http://reviews:9080/"), connect_to="nowhere")


def test_echo_app_exits_when_stdin_closes(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-m", "harness.sample_apps.echo", "--service", "s", "--version", "v1",
                           "--instance", "s-0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2]) as proc:
        try:
            assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
            ready = json.loads(proc.stdout.readline())
            assert ready["ready"] is True and ready["pid"] == proc.pid
            proc.stdin.close()
            assert proc.wait(timeout=10) == 0
            assert proc.stderr.read() == b""  # quietly
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def test_echo_app_exits_quietly_on_sigterm_without_waiting_for_a_held_request(tmp_path: Path) -> None:
    """SIGTERM with stdin still open (a terminal's Ctrl-C reaches the whole group) and a request the app
    holds for 60 s: exit 0 with nothing on stderr, without waiting the 60 s out. (A daemon thread
    blocked in ``sys.stdin`` used to abort the interpreter at shutdown; aiohttp waited 60 s for handlers.)"""
    with subprocess.Popen([sys.executable, "-m", "harness.sample_apps.echo", "--service", "s", "--version", "v1",
                           "--instance", "s-0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2]) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            ready = json.loads(proc.stdout.readline())
            held = socket.create_connection(("127.0.0.1", ready["http"]), timeout=10)
            held.sendall(b"GET / HTTP/1.1\r\nHost: s\r\nx-echo-delay: 60s\r\n\r\n")
            wait_until_logged(ready["control"], 1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0  # far below the 60 s the held request would take
            assert proc.stderr.read() == b""
            held.close()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def test_echo_app_start_failure_names_the_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProcessError, match=r"echo app slow-0 \(pid \d+\) printed no ready line within 0.001s"):
        _start(tmp_path, "reviews", "v1", "slow-0", ready_timeout=0.001)
    fake_python = tmp_path / "fake-python"
    fake_python.write_text("#!/bin/sh\necho 'boom: cannot start' >&2\nexit 3\n")
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))
    with pytest.raises(ProcessError, match=r"(?s)echo app bad-0 exited before it was ready \(exit code 3\).*boom"):
        _start(tmp_path / "new-dir", "reviews", "v1", "bad-0")


def test_echo_app_control_client_names_a_dead_instance() -> None:
    client = ControlClient(1, "gone-0")
    with pytest.raises(ProcessError, match="echo app gone-0: health check failed, control port 1 unreachable"):
        client.healthz()
    client.close()


def test_echo_app_forward_head_post_and_refused(apps: tuple[AppProcess, AppProcess]) -> None:
    server, client = apps
    target = f"127.0.0.1:{server.http_port}"
    head = client.control.forward(SendSpec(url="http://reviews:9080/", method="HEAD", count=3), target)
    assert [(o.status, o.version) for o in head] == [(200, "v1")] * 3  # no body read, the connection still reused
    post = client.control.forward(SendSpec(url="http://reviews:9080/p", method="POST", body=b"x" * 100_000,
                                           include_echo=True), target)
    assert post[0].status == 200 and post[0].echo is not None and post[0].echo.headers["content-length"] == "100000"
    refused = client.control.forward(SendSpec(url="http://reviews:9080/"), connect_to="127.0.0.1:1")
    assert (refused[0].status, refused[0].error) == (0, "cannot connect to 127.0.0.1:1: Connection refused")


def wait_until_logged(control_port: int, entries: int, timeout_s: float = 10.0) -> None:
    """Poll the app's request log (its control port) until it holds ``entries`` entries; bounded."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(trust_env=False, timeout=timeout_s) as http:
        while len(http.get(f"http://127.0.0.1:{control_port}/log").json()["entries"]) < entries:
            if time.monotonic() > deadline:
                pytest.fail(f"the app logged fewer than {entries} requests within {timeout_s:g}s")
            time.sleep(0.02)
