"""ports: a taken port is "in use"; a port refused for another reason is reported as that reason."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from higress_local.system import ports
from higress_local.errors import EnvironmentProblem, PortInUse


def refuse_bind(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Make every bind fail with `code`, as the kernel does (EACCES for a non-root user on port 80)."""
    def bind(self, address):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(socket.socket, "bind", bind)


def test_a_port_another_process_listens_on_is_in_use_and_names_the_holder() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        assert not ports.is_free(taken)
        assert ports.bind_error(taken).errno == errno.EADDRINUSE
        with pytest.raises(PortInUse) as caught:
            ports.ensure_free(taken, "gateway listener, gateway.port")
    assert caught.value.message.startswith(f"port {taken} (gateway listener, gateway.port) is in use (by pid {os.getpid()} (")


def test_a_free_port_passes_and_zero_picks_one() -> None:
    port = ports.free_port()
    assert 0 < port < 65536
    assert ports.resolve(port, "x") == port
    assert ports.resolve(0, "x") > 0


def test_permission_denied_is_reported_as_permission_not_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_bind(monkeypatch, errno.EACCES)
    assert not ports.is_free(80)
    with pytest.raises(EnvironmentProblem) as caught:
        ports.ensure_free(80, "gateway listener, gateway.port")
    error = caught.value
    assert not isinstance(error, PortInUse) and error.exit_code == 3
    assert error.message.startswith("port 80 (gateway listener, gateway.port) cannot be bound on 127.0.0.1: "
                                    "permission denied (ports below ")
    assert "need root or CAP_NET_BIND_SERVICE" in error.message
    assert "in use" not in error.message
    assert "1024 or above" in error.hint and "0 to pick a free one" in error.hint


def test_permission_denied_above_the_privileged_range_does_not_blame_the_range(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_bind(monkeypatch, errno.EACCES)  # e.g. a security module refusing the bind
    with pytest.raises(EnvironmentProblem) as caught:
        ports.ensure_free(20000, "gateway admin, gateway.admin_port")
    assert caught.value.message == "port 20000 (gateway admin, gateway.admin_port) cannot be bound on 127.0.0.1: permission denied"


def test_address_not_available_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_bind(monkeypatch, errno.EADDRNOTAVAIL)
    with pytest.raises(EnvironmentProblem) as caught:
        ports.ensure_free(10000, "gateway listener, gateway.port")
    assert not isinstance(caught.value, PortInUse)
    assert caught.value.message == ("cannot bind 127.0.0.1:10000 (gateway listener, gateway.port): "
                                    "the address is not available on this machine")
    assert "ip addr show lo" in caught.value.hint


def test_picking_a_free_port_fails_with_the_cause_not_an_os_error(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_bind(monkeypatch, errno.EADDRNOTAVAIL)
    with pytest.raises(EnvironmentProblem, match="cannot bind 127.0.0.1:0 \\(a free port\\): the address is not available"):
        ports.free_port()
    with pytest.raises(EnvironmentProblem):
        ports.resolve(0, "gateway listener, gateway.port")


def test_another_bind_error_keeps_its_own_text(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_bind(monkeypatch, errno.EINVAL)
    with pytest.raises(EnvironmentProblem) as caught:
        ports.ensure_free(10000, "gateway listener, gateway.port")
    assert caught.value.message == f"cannot bind 127.0.0.1:10000 (gateway listener, gateway.port): {os.strerror(errno.EINVAL)}"
