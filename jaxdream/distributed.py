"""Several hosts: JAX's own multi-process runtime, and each process's share of the work.

``initialize`` joins a run through ``jax.distributed.initialize``: with no arguments JAX finds
the cluster itself (SLURM, Open MPI, TPU pods, ...); otherwise the coordinator's address, the
number of processes and this one's id. Each process then dreams a deterministic share of the
input list (``share``) on its own devices and writes its own outputs: no process waits for
another, and the union of their outputs is what one process would write.

JAX's runtime fails hard on a user's slip: a coordinator port already in use is a segmentation
fault, a peer that never comes aborts the process with a C++ stack trace after five minutes,
and Ctrl-C is not heard while it waits. So the flags are checked first (``check_flags``:
address, port, ids, all three flags or none), process 0 tries the port before JAX binds it,
and the processes meet in a rendezvous of their own on the coordinator's port
(``rendezvous``) before JAX's: a bounded wait that says what it waits for, in short timed
steps, so that signals are handled; only once every process has come does JAX start.

>>> check_flags(False, "10.0.0.1:1234", 4, 1)
Join(host='10.0.0.1', port=1234, num_processes=4, process_id=1)
>>> try:
...     check_flags(False, "10.0.0.1:1234", 4, None)
... except ConfigError as e:
...     print(str(e).split(":")[0])
--coordinator-address and --num-processes without --process-id
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from jaxdream.checks import shown, whole_number
from jaxdream.errors import ConfigError

# JAX is imported inside the three functions that start or ask its runtime: the command line
# checks the multi-host flags (``check_flags``, ``rendezvous``) before anything starts JAX, so that
# a slip is told at once and ``--help`` stays fast (0.15 s with NumPy; JAX adds about 1 s).

# JAX is imported inside the functions that use it: every command checks the multi-host flags
# here first (``check_flags``), and a refused flag is reported without JAX's start-up (import
# jax: about 0.5 s on the 2-core machine).

T = TypeVar("T")

MAX_PROCESSES = 65536
# How long the processes wait for one another before giving up (seconds): long enough for a
# cluster's scheduler to start them all, short enough that a missing one is told of.
PEER_TIMEOUT = 120.0
_STEP = 0.2  # seconds a blocking wait lasts before Python handles signals again
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_ALL_THREE = (
    "give --coordinator-address, --num-processes and --process-id together, or --distributed "
    "alone for a cluster JAX detects"
)


@dataclasses.dataclass(frozen=True)
class Join:
    """A multi-process run given by hand: the coordinator (process 0) and this process."""

    host: str
    port: int
    num_processes: int
    process_id: int

    @property
    def address(self) -> str:
        """``HOST:PORT`` as JAX takes it (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_address(text: str) -> tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT`` or ``[IPV6]:PORT``, else ``ConfigError`` saying why.

    >>> parse_address("node-1.cluster:8476"), parse_address("[::1]:8476")
    (('node-1.cluster', 8476), ('::1', 8476))
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"--coordinator-address must be HOST:PORT, got {shown(text)}")
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ConfigError(
                f"--coordinator-address {text!r}: an IPv6 address is written [ADDRESS]:PORT"
            )
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(
                f"--coordinator-address {text!r}: {host!r} is not an IPv6 address"
            ) from None
    else:
        if text.count(":") > 1:
            raise ConfigError(
                f"--coordinator-address {text!r} has {text.count(':')} colons: HOST:PORT, "
                "with an IPv6 address in brackets ([::1]:8476)"
            )
        host, sep, port = text.partition(":")
        if not sep:
            raise ConfigError(f"--coordinator-address {text!r} has no port: HOST:PORT")
        if not _HOSTNAME.match(host):
            raise ConfigError(
                f"--coordinator-address {text!r}: {host!r} is not a host name or address"
            )
    if not port.isascii() or not port.isdigit():
        raise ConfigError(f"--coordinator-address {text!r}: the port must be a number")
    number = int(port[:6])  # a port of 400 digits is out of range all the same
    if not 1 <= number <= 65535 or len(port) > 5:
        raise ConfigError(f"--coordinator-address {text!r}: the port must be in 1..65535")
    return host, number


def check_flags(
    distributed: bool,
    coordinator_address: str | None,
    num_processes: int | None,
    process_id: int | None,
) -> Join | bool:
    """What the multi-process flags ask for: a ``Join`` (all three given, checked), ``True``
    (``--distributed`` alone: JAX finds the cluster) or ``False`` (one process). One or two of
    the three are refused: silently ignored, two processes would dream the same photos."""
    given = {
        "--coordinator-address": coordinator_address,
        "--num-processes": num_processes,
        "--process-id": process_id,
    }
    named = [k for k, v in given.items() if v is not None]
    if not named:
        return bool(distributed)
    if len(named) < 3:
        missing = [k for k in given if k not in named]
        raise ConfigError(f"{' and '.join(named)} without {' and '.join(missing)}: {_ALL_THREE}")
    host, port = parse_address(coordinator_address)
    n = whole_number("--num-processes", num_processes, 1, MAX_PROCESSES)
    if isinstance(process_id, bool) or not isinstance(process_id, int) or not 0 <= process_id < n:
        raise ConfigError(
            f"--process-id must be in 0..{n - 1} for {n} process{'es' if n > 1 else ''}, got "
            f"{shown(process_id)}"
        )
    return Join(host, port, n, process_id)


def _say(message: str) -> None:
    print(f"jaxdream: {message}", file=sys.stderr, flush=True)


def _listen(port: int) -> socket.socket:
    """A socket listening on ``port`` of every interface, as JAX's coordinator will: a port in
    use (where JAX would crash) is refused here."""
    try:
        if socket.has_dualstack_ipv6():
            server = socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
        else:
            server = socket.create_server(("", port))
    except OSError as e:
        why = "it is in use" if e.errno in (98, 48, 10048) else e.strerror or str(e)
        raise ConfigError(
            f"process 0 cannot be the coordinator on port {port}: {why}; choose another port"
        ) from None
    server.settimeout(_STEP)
    return server


def _line(conn: socket.socket, deadline: float) -> str:
    """One line read from ``conn`` before ``deadline`` (empty if it closes or time runs out)."""
    data = b""
    conn.settimeout(_STEP)
    while b"\n" not in data and time.monotonic() < deadline and len(data) < 256:
        try:
            chunk = conn.recv(256)
        except TimeoutError:
            continue
        except OSError:
            return ""
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode("ascii", "replace")


def _lead(join: Join, timeout: float, say: Callable[[str], None]) -> None:
    """Process 0: wait for every other process to check in, then tell them all to go on."""
    server = _listen(join.port)
    waiting = set(range(1, join.num_processes))
    came: dict[int, socket.socket] = {}
    deadline = time.monotonic() + timeout
    if waiting:
        say(
            f"waiting for {len(waiting)} process{'es' if len(waiting) > 1 else ''} to join at "
            f"port {join.port} (up to {timeout:.0f} s)"
        )
    try:
        while waiting and time.monotonic() < deadline:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            words = _line(conn, min(deadline, time.monotonic() + 5)).split()
            why = None
            if len(words) != 3 or words[0] != "jaxdream" or not all(w.isdigit() for w in words[1:]):
                why = "not a jaxdream process"
            elif int(words[2]) != join.num_processes:
                why = f"--num-processes is {join.num_processes} on process 0, {words[2]} here"
            elif int(words[1]) not in waiting:
                why = f"--process-id {words[1]} is taken or out of range"
            if why:
                _send(conn, f"bad {why}")
                conn.close()
                continue
            waiting.discard(int(words[1]))
            came[int(words[1])] = conn
        if waiting:
            raise ConfigError(
                f"waited {timeout:.0f} s for process{'es' if len(waiting) > 1 else ''} "
                f"{', '.join(map(str, sorted(waiting)))} of {join.num_processes} at "
                f"{join.address}: start {'them' if len(waiting) > 1 else 'it'} with the same "
                "--coordinator-address and --num-processes"
            )
        for conn in came.values():
            _send(conn, "go")
        # Each peer closes first, so that no closed connection holds the port JAX binds next.
        for conn in came.values():
            _line(conn, time.monotonic() + 2)
    finally:
        for conn in came.values():
            conn.close()
        server.close()


def _send(conn: socket.socket, text: str) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(text.encode("ascii") + b"\n")


def _follow(join: Join, timeout: float, say: Callable[[str], None]) -> None:
    """A process other than 0: reach process 0 (retrying until it listens), check in, and wait
    for its word to go on."""
    deadline = time.monotonic() + timeout
    said = False
    while True:
        if time.monotonic() >= deadline:
            raise ConfigError(
                f"waited {timeout:.0f} s for process 0 at {join.address}: start it with "
                f"--process-id 0, or check the address"
            )
        try:
            conn = socket.create_connection((join.host, join.port), timeout=_STEP * 5)
        except socket.gaierror as e:
            raise ConfigError(f"cannot find host {join.host!r}: {e.strerror}") from None
        except OSError:
            if not said:
                say(f"waiting for process 0 at {join.address} (up to {timeout:.0f} s)")
                said = True
            time.sleep(_STEP)
            continue
        break
    with conn:
        _send(conn, f"jaxdream {join.process_id} {join.num_processes}")
        answer = _line(conn, deadline)
    if answer == "go":
        return
    if answer.startswith("bad "):
        raise ConfigError(f"process 0 at {join.address} refused this process: {answer[4:]}")
    raise ConfigError(
        f"process 0 at {join.address} did not let this process in within {timeout:.0f} s "
        "(it gave up, or the port is another program's)"
    )


def rendezvous(join: Join, timeout: float = PEER_TIMEOUT, say=_say) -> None:
    """Every process of ``join`` meets on the coordinator's port before JAX's runtime starts:
    process 0 listens (refusing a port in use), the others check in; each waits at most
    ``timeout`` seconds, in steps short enough for Ctrl-C and SIGTERM to be handled, and
    ``ConfigError`` says who did not come."""
    if join.num_processes == 1:
        if join.process_id == 0:
            _listen(join.port).close()
        return
    (_lead if join.process_id == 0 else _follow)(join, timeout, say)


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout: float | None = None,
    say: Callable[[str], None] = _say,
) -> None:
    """Join a multi-process run (before any JAX computation): all three arguments, checked and
    met in a ``rendezvous`` first, or none (JAX finds the cluster). ``timeout``: how long to
    wait for the others (default ``PEER_TIMEOUT``, or ``$JAXDREAM_PEER_TIMEOUT``)."""
    import jax

    if timeout is None:
        try:
            timeout = float(os.environ.get("JAXDREAM_PEER_TIMEOUT", PEER_TIMEOUT))
        except ValueError:
            raise ConfigError("$JAXDREAM_PEER_TIMEOUT must be a number of seconds") from None
    if not 0 < timeout <= 86400:
        raise ConfigError(f"the wait for other processes must be in (0, 86400] s, got {timeout}")
    join = check_flags(True, coordinator_address, num_processes, process_id)
    try:
        if isinstance(join, Join):
            rendezvous(join, timeout, say)
            jax.distributed.initialize(
                join.address,
                join.num_processes,
                join.process_id,
                initialization_timeout=max(30, int(timeout)),
            )
        else:
            jax.distributed.initialize()
    except ValueError as e:  # no cluster found
        raise ConfigError(
            f"--distributed found no cluster (SLURM, Open MPI, a TPU pod) to join ({e}): "
            f"outside one, {_ALL_THREE.split(', or')[0]}"
        ) from None
    except RuntimeError as e:
        raise ConfigError(f"cannot join the multi-host run: {e}") from None


def share(items: Sequence[T]) -> list[T]:
    """This process's share of ``items``: every ``process_count()``-th, from its index.

    >>> share(["a", "b", "c"])  # one process: all of them
    ['a', 'b', 'c']
    """
    import jax

    return list(items[jax.process_index() :: jax.process_count()])


def describe() -> str:
    """`` (process I of N)`` in a multi-process run, else empty."""
    import jax

    if jax.process_count() == 1:
        return ""
    return f" (process {jax.process_index()} of {jax.process_count()})"
