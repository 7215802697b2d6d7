"""Several processes: malformed addresses, ports out of range or in use, ids and counts that do
not fit, partial flag sets, and peers that never come: one line each, a bounded wait that says
what it waits for, signals heard; the same refusals on the command line."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxdream import distributed
from jaxdream.distributed import Join, check_flags, parse_address, rendezvous
from jaxdream.errors import ConfigError
from tests.helpers import TINY_DREAM_FLAGS, free_port, refused, write_photo


@pytest.mark.parametrize(
    "address, says",
    [
        ("localhost", "has no port"),
        ("localhost:", "the port must be a number"),
        (":8476", "is not a host name"),
        ("a:b:c", "has 2 colons"),
        ("::1:8476", "has 3 colons"),
        ("[::1]8476", "IPv6 address is written"),
        ("[::zz]:8476", "is not an IPv6 address"),
        ("[not-ipv6]:8476", "is not an IPv6 address"),
        ("localhost:0", "1..65535"),
        ("localhost:65536", "1..65535"),
        ("localhost:-1", "the port must be a number"),
        ("localhost:" + "9" * 400, "1..65535"),
        ("localhost:\uff18\uff14\uff17\uff16", "the port must be a number"),
        ("local host:8476", "is not a host name"),
        ("-bad-:8476", "is not a host name"),
        ("", "must be HOST:PORT"),
        ("   ", "must be HOST:PORT"),
    ],
)
def test_malformed_addresses_are_refused_saying_why(address, says):
    with pytest.raises(ConfigError, match=says):
        parse_address(address)


@pytest.mark.parametrize(
    "address, expected",
    [
        ("localhost:8476", ("localhost", 8476)),
        ("10.1.2.3:1", ("10.1.2.3", 1)),
        ("[::1]:65535", ("::1", 65535)),
        ("node-7.example.org:8476", ("node-7.example.org", 8476)),
    ],
)
def test_good_addresses_are_read(address, expected):
    assert parse_address(address) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_any_address_is_read_or_refused_with_our_error(text):
    try:
        host, port = parse_address(text)
    except ConfigError:
        return
    assert 1 <= port <= 65535 and host


@pytest.mark.parametrize(
    "flags, says",
    [
        ((False, None, 2, None), "--num-processes without --coordinator-address and --process"),
        ((False, None, None, 1), "--process-id without"),
        ((True, "localhost:1234", None, None), "--coordinator-address without"),
        ((False, None, 2, 1), "without --coordinator-address"),
        ((False, "localhost:1234", 2, 2), r"--process-id must be in 0..1 for 2 processes, got 2"),
        ((False, "localhost:1234", 2, -1), "--process-id must be in 0..1"),
        ((False, "localhost:1234", 0, 0), r"--num-processes must be in 1..65,536, got 0"),
        ((False, "localhost:1234", 10**30, 0), "--num-processes must be in 1..65,536"),
        ((False, "localhost:1234", 2.0, 0), "--num-processes must be a whole number"),
        ((False, "localhost:1234", 2, True), "--process-id must be in"),
    ],
)
def test_flags_that_do_not_fit_are_refused(flags, says):
    with pytest.raises(ConfigError, match=says):
        check_flags(*flags)


def test_what_the_flags_ask_for():
    assert check_flags(False, None, None, None) is False
    assert check_flags(True, None, None, None) is True
    assert check_flags(True, "[::1]:99", 3, 2) == Join("::1", 99, 3, 2)
    assert Join("::1", 99, 3, 2).address == "[::1]:99"


def test_a_port_in_use_is_refused_before_jax_binds_it():
    with socket.create_server(("", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port}: it is in use"):
            rendezvous(Join("localhost", port, 1, 0), timeout=1)
        with pytest.raises(ConfigError, match="it is in use"):
            rendezvous(Join("localhost", port, 2, 0), timeout=1)


def _run(join: Join, timeout: float, said: list, errors: dict):
    try:
        rendezvous(join, timeout, said.append)
    except ConfigError as e:
        errors[join.process_id] = str(e)


def test_processes_meet_whatever_order_they_start_in():
    port = free_port()
    said, errors = [], {}
    threads = [
        threading.Thread(target=_run, args=(Join("127.0.0.1", port, 3, i), 20, said, errors))
        for i in (2, 1, 0)  # the peers first: they wait for process 0
    ]
    for t in threads:
        t.start()
        time.sleep(0.3)
    for t in threads:
        t.join(30)
    assert errors == {}
    assert any("waiting for process 0" in s for s in said)
    assert any("waiting for 2 processes to join" in s for s in said)


def test_a_peer_that_never_comes_is_told_of_within_the_wait():
    port = free_port()
    said, errors = [], {}
    start = time.monotonic()
    _run(Join("127.0.0.1", port, 3, 0), 1.0, said, errors)
    assert time.monotonic() - start < 10  # bounded (the wait is 1 s; JAX's own: 300 s, abort)
    assert errors[0] == (
        f"waited 1 s for processes 1, 2 of 3 at 127.0.0.1:{port}: start them with the same "
        "--coordinator-address and --num-processes"
    )
    assert said == [f"waiting for 2 processes to join at port {port} (up to 1 s)"]


def test_a_coordinator_that_never_comes_is_told_of_within_the_wait():
    port = free_port()
    said, errors = [], {}
    _run(Join("127.0.0.1", port, 2, 1), 1.0, said, errors)
    assert errors[1].startswith(f"waited 1 s for process 0 at 127.0.0.1:{port}")
    assert said == [f"waiting for process 0 at 127.0.0.1:{port} (up to 1 s)"]


@pytest.mark.parametrize(
    "peer, says",
    [
        (Join("127.0.0.1", 0, 3, 1), "--num-processes is 2 on process 0, 3 here"),
        (Join("127.0.0.1", 0, 2, 0), "--process-id 0 is taken or out of range"),
    ],
)
def test_peers_that_do_not_fit_the_coordinator_are_refused(peer, says):
    port = free_port()
    said, errors = [], {}
    lead = threading.Thread(target=_run, args=(Join("127.0.0.1", port, 2, 0), 2.0, said, errors))
    lead.start()
    time.sleep(0.3)
    # The peer is given id 1 of the coordinator's run where it checks id 0 (taken by process 0).
    join = Join("127.0.0.1", port, peer.num_processes, peer.process_id)
    with pytest.raises(ConfigError, match=says):
        distributed._follow(join, 5.0, said.append)
    lead.join(10)
    assert "waited 2 s for process 1 of 2" in errors[0]


def test_something_else_on_the_port_is_not_taken_for_process_0():
    with socket.create_server(("127.0.0.1", 0)) as other:
        port = other.getsockname()[1]

        def answer():
            conn, _ = other.accept()
            conn.sendall(b"HTTP/1.0 400 Bad Request\n")
            conn.close()

        threading.Thread(target=answer, daemon=True).start()
        with pytest.raises(ConfigError, match=r"refused|did not let this process in"):
            rendezvous(Join("127.0.0.1", port, 2, 1), timeout=2)


WAITING = """
import sys
from jaxdream import distributed
distributed.rendezvous(distributed.Join("127.0.0.1", int(sys.argv[1]), 2, int(sys.argv[2])), 120)
"""


@pytest.mark.parametrize("process_id", [0, 1])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_are_heard_while_waiting(tmp_path, process_id, sig):
    """The wait is in short steps: Ctrl-C and SIGTERM stop it at once (the CLI's handlers then
    leave with 130 or 143); here, Python's defaults: KeyboardInterrupt, or death by SIGTERM."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    p = subprocess.Popen(
        [sys.executable, "-c", WAITING, str(free_port()), str(process_id)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        line = p.stderr.readline()  # "waiting ...": the wait has begun
        assert "waiting" in line, line
        p.send_signal(sig)
        p.wait(timeout=max(1, deadline - time.monotonic()))
        err = p.stderr.read()
    finally:
        p.kill()
        p.stderr.close()
    assert p.returncode == -sig  # not still waiting: Python's own end for the signal
    assert ("KeyboardInterrupt" in err) == (sig == signal.SIGINT)


# --------------------------------------------------------------------------- on the command line


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--num-processes", "2", "--process-id", "1"], "without --coordinator-address"),
        (["--process-id", "0"], "--process-id without"),
        (["--coordinator-address", "localhost"], "without --num-processes and --process-id"),
        (["--coordinator-address", "h", "--num-processes", "2", "--process-id", "0"], "no port"),
        (["--coordinator-address", "h:1", "--num-processes", "2", "--process-id", "2"], "0..1"),
        (["--coordinator-address", "::1:80", "--num-processes", "2", "--process-id", "0"], "IPv6"),
        (["--coordinator-address", "h:70000", "--num-processes", "2", "--process-id", "0"], "1.."),
    ],
)
def test_multi_process_flags_that_do_not_fit_are_refused(tmp_path, capsys, flags, says):
    photo = write_photo(tmp_path / "a.png")
    argv = ["dream", str(photo), "-o", str(tmp_path / "o.png"), *TINY_DREAM_FLAGS, *flags]
    assert says in refused(capsys, argv, tmp_path)


def test_a_coordinator_port_in_use_is_one_line_not_a_crash(tmp_path, capsys):
    photo = write_photo(tmp_path / "a.png")
    with socket.create_server(("", 0)) as taken:
        port = taken.getsockname()[1]
        argv = ["dream", str(photo), "-o", str(tmp_path / "o.png"), *TINY_DREAM_FLAGS]
        argv += ["--coordinator-address", f"localhost:{port}"]
        argv += ["--num-processes", "2", "--process-id", "0"]
        assert f"port {port}: it is in use" in refused(capsys, argv, tmp_path)


def test_distributed_outside_a_cluster_is_one_line(tmp_path):
    photo = write_photo(tmp_path / "a.png")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "OMPI", "PMI"))}
    p = subprocess.run(
        [sys.executable, "-m", "jaxdream", "dream", str(photo), "-o", "o.png", "--distributed"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": os.getcwd(), "JAXDREAM_NO_CACHE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    err = [line for line in p.stderr.splitlines() if "Warning" not in line and line.strip()]
    assert p.returncode == 2, p.stderr
    assert len(err) == 1 and "--distributed found no cluster" in err[0], err
    assert os.listdir(tmp_path) == ["a.png"]
