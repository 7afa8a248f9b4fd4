"""ovserver's core (``ovserver._core``): what the mutation run (issue 18,
``tools/mutation.sh``) found no test asserting.

Each test states behaviour a user relies on: the configuration rejects what
cannot work at exactly its boundary (and says which value was wrong), the
address a server reports, the statistics an operator reads, and a stop that
always returns with nothing left open.  Scenarios run the server on the fake
with every choice fixed (:func:`ovserver_session.exact`), so counts are exact.
"""

from __future__ import annotations

import pytest

from ovserver import ServerConfig

# ---------------------------------------------------------------- validation at every boundary


@pytest.mark.parametrize("value", [0, -1])
def test_stop_grace_below_one_is_rejected(value: int) -> None:
    with pytest.raises(ValueError, match="stop_grace_ms"):
        ServerConfig(stop_grace_ms=value)


def test_stop_grace_of_one_is_accepted() -> None:
    assert ServerConfig(stop_grace_ms=1).stop_grace_ms == 1


@pytest.mark.parametrize("port", [-1, 65536, 99999])
def test_ports_outside_0_to_65535_are_rejected_naming_the_port(port: int) -> None:
    with pytest.raises(ValueError, match=f"port must be 0-65535, not {port}$"):
        ServerConfig(port=port)


@pytest.mark.parametrize("port", [0, 1, 65535])
def test_ports_at_the_ends_of_the_range_are_accepted(port: int) -> None:
    assert ServerConfig(port=port).port == port


@pytest.mark.parametrize("host", ["localhost", "::1", "127.0.0", "127.0.0.256", ""])
def test_a_host_that_is_not_an_ipv4_address_is_rejected_naming_it(host: str) -> None:
    with pytest.raises(ValueError, match=f"host must be an IPv4 address \\(resolve a name first\\), not {host!r}$"):
        ServerConfig(host=host)


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1", "10.1.2.3"])
def test_ipv4_hosts_are_accepted(host: str) -> None:
    assert ServerConfig(host=host).host == host


def test_the_error_for_a_bad_size_names_every_field_it_checks() -> None:
    """One message for the four sizes, so each one a user can get wrong is named."""
    with pytest.raises(ValueError) as info:
        ServerConfig(recv_size=0)
    assert str(info.value) == "recv_size, send_size, accept_retry_ms and stop_grace_ms must be at least 1"

