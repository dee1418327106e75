"""The controller against the real Toxiproxy stand-in on loopback, measured on real sockets."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from harness.errors import ProxyUnreachableError
from harness.stacks._net import free_port
from toxics.control import FaultConfigError, Partition, Toxic, ToxiproxyAPIError, ToxiproxyController
from toxics.demo import EchoServer, round_trip_s
from toxics.server import toxiproxy_process

# A loopback echo takes well under a millisecond; these bounds leave room for a busy 2-core box.
QUICK_S = 0.25
LATENCY_MS = 400


def _best_of(port: int, samples: int = 3) -> float:
    return min(round_trip_s(port) for _ in range(samples))


def _refuses(port: int) -> bool:
    try:
        round_trip_s(port)
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def port(ctl: ToxiproxyController, echo: EchoServer) -> int:
    return ctl.ensure_proxy("client-app", listen="127.0.0.1:0", upstream=echo.address).listen_port


def test_ensure_keeps_a_matching_proxy_and_its_connections(ctl: ToxiproxyController, echo: EchoServer) -> None:
    first = ctl.ensure_proxy("app-db", listen="127.0.0.1:0", upstream=echo.address)
    assert first.enabled and first.upstream == echo.address and first.listen_port > 0
    with socket.create_connection(("127.0.0.1", first.listen_port), timeout=10) as live:
        again = ctl.ensure_proxy("app-db", listen="127.0.0.1:0", upstream=echo.address)
        same = ctl.ensure_proxy("app-db", listen=first.listen, upstream=echo.address)
        assert again == same == first
        live.sendall(b"still here")  # the connection opened before the ensures survived them
        assert live.recv(64) == b"still here"
    assert list(ctl.status()) == ["app-db"]


def test_ensure_replaces_a_proxy_that_differs(ctl: ToxiproxyController, echo: EchoServer) -> None:
    ctl.create_proxy("app-db", listen="127.0.0.1:0", upstream="127.0.0.1:1")
    fixed = ctl.ensure_proxy("app-db", listen="127.0.0.1:0", upstream=echo.address)
    assert ctl.proxy("app-db") == fixed and fixed.upstream == echo.address
    assert round_trip_s(fixed.listen_port) < 10


def test_latency_toxic_added_updated_removed_is_visible_and_measured(ctl: ToxiproxyController, port: int) -> None:
    assert _best_of(port) < QUICK_S

    added = ctl.add_toxic("client-app", Toxic("latency", {"latency": LATENCY_MS}))
    assert added == Toxic("latency", {"latency": LATENCY_MS, "jitter": 0})
    assert ctl.toxics("client-app") == (added,) and ctl.proxy("client-app").toxics == (added,)
    assert _best_of(port) >= LATENCY_MS / 1000 * 0.95

    updated = ctl.update_toxic("client-app", Toxic("latency", {"latency": 2 * LATENCY_MS}, toxicity=1))
    assert ctl.toxics("client-app") == (updated,) and updated.attributes["latency"] == 2 * LATENCY_MS
    assert _best_of(port, samples=1) >= 2 * LATENCY_MS / 1000 * 0.95

    ctl.remove_toxic("client-app", added.name)
    assert ctl.toxics("client-app") == ()
    assert _best_of(port) < QUICK_S


def test_apply_and_revert_are_each_others_inverse(ctl: ToxiproxyController, port: int) -> None:
    toxic = Toxic("latency", {"latency": LATENCY_MS}, name="slow")
    ctl.apply("client-app", toxic)
    ctl.apply("client-app", Partition())
    assert not ctl.proxy("client-app").enabled and _refuses(port)
    ctl.revert("client-app", Partition())
    assert _best_of(port, samples=1) >= LATENCY_MS / 1000 * 0.95
    ctl.revert("client-app", toxic)
    ctl.revert("client-app", toxic)  # already gone: not an error
    assert ctl.proxy("client-app").toxics == () and _best_of(port) < QUICK_S


def test_partition_refuses_and_drops_then_heal_restores(ctl: ToxiproxyController, port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as live:
        state = ctl.disable("client-app")
        assert not state.enabled and _refuses(port)
        try:
            live.sendall(b"x")
            assert live.recv(1) == b""  # the live connection was dropped
        except ConnectionResetError:
            pass
    ctl.heal()
    assert ctl.proxy("client-app").enabled and _best_of(port) < QUICK_S


def test_heal_one_proxy_or_all(ctl: ToxiproxyController, echo: EchoServer) -> None:
    for name in ("client-app", "app-db"):
        ctl.ensure_proxy(name, listen="127.0.0.1:0", upstream=echo.address)
        ctl.add_toxic(name, Toxic("latency", {"latency": 10}))
        ctl.add_toxic(name, Toxic("bandwidth", {"rate": 100}, stream="upstream"))
        ctl.disable(name)
    ctl.heal("client-app")
    status = ctl.status()
    assert status["client-app"].enabled and status["client-app"].toxics == ()
    assert not status["app-db"].enabled and len(status["app-db"].toxics) == 2
    ctl.heal()
    assert all(p.enabled and p.toxics == () for p in ctl.status().values())


@pytest.mark.parametrize("interruption", [RuntimeError("boom"), KeyboardInterrupt()])
def test_the_controller_heals_on_exit_even_after_an_error(
    toxiproxy_url: str, ctl: ToxiproxyController, port: int, interruption: BaseException
) -> None:
    with pytest.raises(type(interruption)):
        with ToxiproxyController(toxiproxy_url) as faulty:
            faulty.add_toxic("client-app", Toxic("latency", {"latency": LATENCY_MS}))
            faulty.disable("client-app")
            raise interruption
    state = ctl.proxy("client-app")
    assert state.enabled and state.toxics == () and _best_of(port) < QUICK_S


def test_injected_heals_its_proxy_after_an_error(ctl: ToxiproxyController, port: int) -> None:
    with pytest.raises(RuntimeError, match="mid-fault"):
        with ctl.injected("client-app", Toxic("latency", {"latency": LATENCY_MS}), Partition()):
            assert _refuses(port)
            raise RuntimeError("mid-fault")
    assert ctl.proxy("client-app").toxics == () and _best_of(port) < QUICK_S


def test_a_fault_that_fails_half_way_is_still_healed(ctl: ToxiproxyController, port: int) -> None:
    toxic = Toxic("latency", {"latency": LATENCY_MS})
    with pytest.raises(ToxiproxyAPIError, match="409"):
        with ctl.injected("client-app", toxic, toxic):  # the second one is a duplicate name
            pass
    assert ctl.proxy("client-app").toxics == ()


def test_rejections_are_precise_and_never_retried(toxiproxy_url: str, ctl: ToxiproxyController, port: int) -> None:
    # With a 30 s retry budget, a retried rejection would take seconds; one answer takes milliseconds.
    patient = ToxiproxyController(toxiproxy_url, retry_for_s=30.0)
    try:
        started = time.monotonic()
        with pytest.raises(ToxiproxyAPIError) as missing:
            patient.remove_toxic("client-app", "nope")
        assert missing.value.status == 404 and "toxic not found" in str(missing.value)
        patient.remove_toxic("client-app", "nope", missing_ok=True)
        with pytest.raises(ToxiproxyAPIError) as unknown:
            patient.disable("no-such-proxy")
        assert unknown.value.status == 404 and "proxy not found" in unknown.value.message
        with pytest.raises(ToxiproxyAPIError) as taken:
            patient.create_proxy("client-app", listen="127.0.0.1:0", upstream="127.0.0.1:1")
        assert taken.value.status == 409 and "proxy already exists" in str(taken.value)
        with pytest.raises(FaultConfigError, match=r"rejected POST /proxies: .*upstream"):
            patient.create_proxy("bad", listen="127.0.0.1:0", upstream="")
        assert time.monotonic() - started < 5.0
    finally:
        patient.close()


def test_a_bad_toxic_is_refused_before_any_request(ctl: ToxiproxyController, port: int) -> None:
    with pytest.raises(FaultConfigError, match=r"^toxicity: toxicity must be a number between 0 and 1"):
        ctl.add_toxic("client-app", Toxic("latency", toxicity=2))
    assert ctl.toxics("client-app") == ()


def _attempts(error: BaseException) -> int:
    found = re.search(r"(\d+) attempts", str(error))
    assert found, str(error)
    return int(found.group(1))


def test_connection_refused_is_retried_then_unreachable_within_a_bounded_time() -> None:
    dead = ToxiproxyController(f"http://127.0.0.1:{free_port()}", timeout_s=1.0, retry_for_s=1.0)
    started = time.monotonic()
    with pytest.raises(ProxyUnreachableError) as caught:
        dead.status()
    took = time.monotonic() - started
    assert 1.0 <= took < 10.0
    assert _attempts(caught.value) > 2 and "unreachable" in str(caught.value)
    assert caught.value.exit_code == 3


def test_retries_bridge_a_server_that_is_still_starting() -> None:
    port = free_port()
    late = toxiproxy_process(port)
    starter = threading.Timer(0.5, late.start)
    starter.start()
    try:
        with ToxiproxyController(f"http://127.0.0.1:{port}", retry_for_s=30.0) as ctl:
            assert ctl.version()
    finally:
        starter.join(timeout=30)
        late.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose kernel completes the TCP handshake but where nobody ever answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_an_api_that_never_answers_times_out_without_retry(silent_port: int) -> None:
    mute = ToxiproxyController(f"http://127.0.0.1:{silent_port}", timeout_s=0.5, retry_for_s=30.0)
    started = time.monotonic()
    with pytest.raises(ProxyUnreachableError, match="did not answer GET /proxies .*TimeoutError"):
        mute.status()
    assert time.monotonic() - started < 5.0
