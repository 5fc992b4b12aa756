"""Start echo instances by forking one interpreter that has already imported the app.

An echo instance started as ``python -m harness.sample_apps.echo`` spends about 0.3 s of CPU on
the interpreter and the app's imports before it listens; forked from this process it listens in
about 10 ms. The local mesh runs one zygote and asks it for every instance
(``harness.mesh.local.launcher``), which is what makes a mesh start and a redeploy between cases
cheap. The zygote is single-threaded and never starts an event loop or a gRPC object itself, so
a fork takes nothing half-initialised into the child.

Protocol, on the ``SOCK_SEQPACKET`` Unix socket given as ``--socket FD`` (one JSON object a message):

* zygote -> harness, once, when imported: ``{"ready": true, "pid": N}``;
* harness -> zygote: ``{"argv": [...]}`` (the app's command-line arguments) carrying three file
  descriptors, the instance's stdin, stdout and stderr; the zygote forks, the child runs the app
  on them exactly as ``python -m harness.sample_apps.echo ARGV`` would;
* zygote -> harness, in request order: ``{"pid": N}`` or ``{"error": "..."}`` when the fork failed;
* zygote -> harness, whenever a child exits: ``{"exited": N, "code": C}`` (C as ``subprocess``
  reports it: negative for the signal that ended it), since only the zygote can reap its children.

The zygote exits when the socket reaches EOF (the harness closed it or died). It ignores SIGINT:
a Ctrl-C reaches the whole process group, the instances end on their own and the zygote stays to
report their exits until the harness lets it go. The instances do not depend on it staying: each
exits when its stdin, held by the harness, reaches EOF.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import NoReturn


@contextlib.contextmanager
def _ca_bundle_hidden() -> Iterator[None]:
    """While the app imports, point OpenSSL's CA file at nothing; the instances get the environment back.

    aiohttp builds two client TLS contexts when it is imported and loads the system CA bundle into
    them, about 40 ms of CPU, a fifth of the zygote's start and so of a local mesh's. The echo app
    never opens a TLS connection (it serves plain HTTP and gRPC, and ForwardEcho sends them).
    """
    saved = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = os.devnull
    try:
        yield
    finally:
        if saved is None:
            del os.environ["SSL_CERT_FILE"]
        else:
            os.environ["SSL_CERT_FILE"] = saved


with _ca_bundle_hidden():
    from harness.sample_apps.echo.__main__ import main as run_app

MAX_MESSAGE = 64 * 1024
FDS_PER_REQUEST = 3


def send(sock: socket.socket, message: dict[str, object]) -> None:
    sock.send(json.dumps(message).encode())


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter would exit with for ``exc`` (a message is printed as it would print it)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _child(fds: list[int], argv: list[str], close_inherited: Callable[[], None]) -> NoReturn:
    """Become the echo instance: its stdio on ``fds``, default signal handling, then the app's main."""
    code = 1
    try:
        close_inherited()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            run_app(argv)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except KeyboardInterrupt:
            code = 128 + signal.SIGINT
    except BaseException:  # noqa: BLE001 (the child must never return into the zygote's loop)
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass  # nothing more can be said; the exit code stands
        os._exit(code)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def serve(sock: socket.socket) -> None:
    """Fork an instance for each request until the socket reaches EOF; report every exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that SIGCHLD writes to the wakeup fd
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        selector.register(wake_r, selectors.EVENT_READ)

        def close_inherited() -> None:
            selector.close()
            sock.close()
            os.close(wake_r)
            os.close(wake_w)

        send(sock, {"ready": True, "pid": os.getpid()})
        while True:
            for key, _ in selector.select():
                if key.fileobj == wake_r:
                    while True:
                        try:
                            if not os.read(wake_r, 4096):
                                break
                        except BlockingIOError:
                            break
                    _reap(sock)
                    continue
                data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, FDS_PER_REQUEST)
                if not data:
                    return
                try:
                    argv = json.loads(data)["argv"]
                    if len(fds) != FDS_PER_REQUEST:
                        raise ValueError(f"expected {FDS_PER_REQUEST} file descriptors, got {len(fds)}")
                    pid = os.fork()
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    send(sock, {"error": f"{type(exc).__name__}: {exc}"})
                else:
                    if pid == 0:
                        _child(fds, argv, close_inherited)
                    send(sock, {"pid": pid})
                finally:
                    for fd in fds:
                        os.close(fd)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.sample_apps.echo.zygote", description=__doc__.split("\n")[0])
    parser.add_argument("--socket", type=int, required=True, help="file descriptor of the SOCK_SEQPACKET socket")
    args = parser.parse_args(argv)
    with socket.socket(fileno=args.socket) as sock:
        try:
            serve(sock)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the harness went away: nothing is left to report to


if __name__ == "__main__":
    main()
