"""Vigil listens on loopback unless told otherwise: the receivers and the API of a runtime started
on the default `host` are bound to 127.0.0.1, not to every interface."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from tests.conftest import make_settings, running
from tests.process import VigilProcess
from vigil.settings import Settings


def _address(hex_address: str) -> str:
    """/proc/net/tcp{,6} write addresses as 32-bit words in host (little-endian) order."""
    raw = b"".join(bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, len(hex_address), 8))
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return "every interface" if address.is_unspecified else str(address)


def listening_addresses(port: int) -> set[str]:
    """Where a TCP socket listens on `port` (IPv4 and IPv6, from /proc/net)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(_address(address))
    return found


def test_the_default_host_is_loopback() -> None:
    assert Settings(_env_file=None).host == "127.0.0.1"  # type: ignore[call-arg]


async def test_listeners_bind_loopback_by_default(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "vigil")
    settings = settings.model_copy(update={"host": Settings.model_fields["host"].default})
    async with running(settings) as vigil:
        ports = vigil.runtime.ports()
        for name in ("otlp_http", "otlp_grpc", "api"):
            assert listening_addresses(ports[name]) == {"127.0.0.1"}, name


async def test_listeners_bind_every_interface_when_told(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path / "vigil", host="0.0.0.0")) as vigil:
        ports = vigil.runtime.ports()
        for name in ("otlp_http", "otlp_grpc", "api"):
            assert listening_addresses(ports[name]) == {"every interface"}, name


def test_vigil_up_host_option_wins_over_the_environment(tmp_path: Path) -> None:
    vigil = VigilProcess(tmp_path / "vigil", command=("up", "--host", "0.0.0.0"))  # VIGIL_HOST is 127.0.0.1
    vigil.start()
    try:
        assert listening_addresses(vigil.api_port) == {"every interface"}
        said = vigil.said("API docs:")
        assert "is up on 0.0.0.0" in said and f"API docs: http://127.0.0.1:{vigil.api_port}/docs" in said
        assert "loopback only" not in said
    finally:
        vigil.stop()
