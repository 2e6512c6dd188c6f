"""Where agents and sinks may be sent: never to cloud metadata, link-local addresses or Vigil's own ports.

A URL is checked twice. When a pipeline or sink is saved, `OutboundPolicy.check_url` refuses what
its text already shows (an IP literal, a metadata host name, `localhost` on one of Vigil's ports).
At delivery, `outbound_client`'s connections resolve the host name themselves, check every address
it resolves to, and connect to one of those checked addresses: a name that resolves (or is
re-pointed later) to a refused address is refused, with no window between check and connect.

Per deployment, `allow` and `deny` (settings `outbound.allow` / `outbound.deny`) hold IP
addresses, CIDR networks, host names and `*.domain` patterns. Deny wins over allow; allow wins
over the built-in refusals; with `only_allowed`, whatever the allow list does not name is refused.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

from vigil.errors import UserError
from vigil.masking import mask_urls_logged_by
from vigil.settings import OutboundSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "169.254.0.0/16",  # IPv4 link-local: AWS, GCP, Azure, OpenStack metadata, ECS task credentials
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS instance metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "192.0.0.192/32",  # Oracle Cloud metadata (legacy address)
    )
)
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")

_DEFAULT_PORTS = {"http": 80, "https": 443}


class OutboundRefused(UserError):
    """A destination the outbound policy refuses; the message says which rule and how to allow it."""

    code = "outbound_refused"
    status = 422


@dataclass(frozen=True)
class _Pattern:
    network: IPNetwork | None = None
    host: str | None = None
    suffix: str | None = None

    @classmethod
    def parse(cls, entry: str) -> _Pattern:
        text = entry.strip().lower().rstrip(".")
        if not text:
            raise ValueError("an empty outbound pattern")
        try:
            return cls(network=ipaddress.ip_network(text.strip("[]"), strict=False))
        except ValueError:
            pass
        if text.startswith("*."):
            return cls(suffix=text[1:])
        if any(ch in text for ch in "/*:@ ") or "." in (text[0], text[-1]):
            raise ValueError(f"{entry!r} is neither an IP, a CIDR network, a host name nor *.domain")
        return cls(host=text)

    def matches(self, host: str, addresses: Iterable[IPAddress]) -> bool:
        if self.network is not None:
            return any(
                address in self.network for address in addresses if address.version == self.network.version
            )
        if self.suffix is not None:
            return host.endswith(self.suffix)
        return host == self.host


def ip_address_in(text: str) -> IPAddress | None:
    """The IP address a host or socket address text is (brackets, zone and IPv4-mapping undone),
    or None when it is a name."""
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _numeric_form(host: str) -> IPAddress | None:
    """What the resolver makes of a numeric host (`127.1`, `0x7f000001`), without asking DNS."""
    if not host or not host[0].isdigit():
        return None
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    return ip_address_in(str(infos[0][4][0])) if infos else None


def _normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


@dataclass
class OutboundPolicy:
    settings: OutboundSettings = field(default_factory=OutboundSettings)
    own_ports: set[int] = field(default_factory=set)
    """Vigil's listening ports (API, receivers, ops, the bus); the runtime adds them as they bind."""
    own_hosts: set[IPAddress] = field(default_factory=set)
    """Addresses besides loopback that Vigil listens on (a configured host address)."""

    def __post_init__(self) -> None:
        self._allow = [_Pattern.parse(entry) for entry in self.settings.allow]
        self._deny = [_Pattern.parse(entry) for entry in self.settings.deny]

    @property
    def version(self) -> tuple[int, int]:
        """Changes whenever a check's answer may: the sets of own ports and hosts only grow."""
        return len(self.own_ports), len(self.own_hosts)

    def add_own_ports(self, ports: Iterable[int]) -> None:
        self.own_ports.update(port for port in ports if port)

    def add_own_hosts(self, hosts: Iterable[str]) -> None:
        """Listening addresses: a specific one counts as this host's, like loopback."""
        for host in hosts:
            address = ip_address_in(host)
            if address is not None and not address.is_unspecified:
                self.own_hosts.add(address)

    def add_own_urls(self, urls: str) -> None:
        """The bus's URLs (comma-separated): those on this host are Vigil's own ports too."""
        for url in urls.split(","):
            parts = urlsplit(url.strip())
            address = ip_address_in(parts.hostname or "")
            local = parts.hostname in LOCAL_NAMES or (address is not None and address.is_loopback)
            with contextlib.suppress(ValueError):
                if local and parts.port:
                    self.own_ports.add(parts.port)

    def check_url(self, url: str) -> None:
        """At configuration time: refuse what the URL itself shows, without resolving its host."""
        parts = urlsplit(url)
        host = _normal_host(parts.hostname or "")
        try:
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
        except ValueError as exc:
            raise OutboundRefused(f"invalid port in URL: {exc}") from None
        literal = ip_address_in(host) or _numeric_form(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        elif host in LOCAL_NAMES or host.endswith(".localhost"):
            addresses = [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")]
        else:
            addresses = []
        self.check(host, port, addresses, resolved=literal is not None)

    def _allowed(self, host: str, addresses: list[IPAddress]) -> bool:
        """Named on the allow list, or every address in an allowed network: a name that resolves
        to an allowed address and a refused one could connect to either."""
        if any(pattern.network is None and pattern.matches(host, ()) for pattern in self._allow):
            return True
        networks = [pattern for pattern in self._allow if pattern.network is not None]
        return bool(addresses and networks) and all(
            any(pattern.matches(host, [address]) for pattern in networks) for address in addresses
        )

    def check(self, host: str, port: int, addresses: list[IPAddress], *, resolved: bool = True) -> None:
        """Raise OutboundRefused unless `host` (resolved to `addresses`) may be reached on `port`.

        `resolved` false means `addresses` may be incomplete (a name not looked up yet), so an
        allow list that names networks only is not applied yet.
        """
        host = _normal_host(host)
        where = f"{host}:{port}" if ip_address_in(host) is None else f"{_bracket(host)}:{port}"
        shown = ", ".join(str(a) for a in addresses if str(a) != host)
        resolved_to = f" (resolved to {shown})" if shown and resolved else ""
        for pattern in self._deny:
            if pattern.matches(host, addresses):
                raise OutboundRefused(f"{where}{resolved_to} is on the outbound deny list")
        if self._allowed(host, addresses):
            return
        if host in METADATA_HOSTS:
            raise OutboundRefused(f"{where} is a cloud metadata service" + _HOW_TO_ALLOW)
        for address in addresses:
            if any(address in net for net in METADATA_NETWORKS if net.version == address.version):
                raise OutboundRefused(
                    f"{where}{resolved_to} is a link-local or cloud metadata address" + _HOW_TO_ALLOW
                )
        if self.settings.refuse_own_ports and port in self.own_ports:
            for address in addresses:
                if address.is_loopback or address.is_unspecified or address in self.own_hosts:
                    raise OutboundRefused(f"{where}{resolved_to} is one of Vigil's own listening ports")
        if self.settings.only_allowed:
            # An unresolved name may still resolve into an allowed network: that waits for delivery.
            names_decide = not any(pattern.network for pattern in self._allow)
            if resolved or names_decide:
                raise OutboundRefused(f"{where}{resolved_to} is not on the outbound allow list")


_HOW_TO_ALLOW = "; to permit it, add it to the outbound allow list (VIGIL_OUTBOUND__ALLOW)"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, checks every address against the policy, then connects to one of
    those addresses (TLS still verifies the host name: httpcore sends it as the server name)."""

    def __init__(self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port, timeout)
        self._policy.check(host, port, addresses)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _resolve(host: str, port: int, timeout_s: float | None) -> list[IPAddress]:
    literal = ip_address_in(host)
    if literal is not None:
        return [literal]
    try:
        with anyio.fail_after(timeout_s):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"resolving {host}: no answer within {timeout_s}s") from exc
    except OSError as exc:
        raise httpcore.ConnectError(f"resolving {host}: {exc}") from exc
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ip_address_in(str(sockaddr[0]))
        if address is not None and address not in found:
            found.append(address)
    if not found:
        raise httpcore.ConnectError(f"resolving {host}: no address")
    return found


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, with every new connection going through `GuardedBackend`."""

    def __init__(self, policy: OutboundPolicy, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )


def outbound_client(policy: OutboundPolicy, limits: httpx.Limits) -> httpx.AsyncClient:
    """The HTTP client for agents and sinks: every connection checked against `policy`."""
    mask_urls_logged_by(logging.getLogger("httpx"))  # it logs each request's URL, credentials included
    return httpx.AsyncClient(transport=GuardedTransport(policy, limits=limits))


def parse_pattern(entry: str) -> None:
    """Raise ValueError unless `entry` is an allow/deny entry: an IP, a CIDR network, a host or *.domain."""
    _Pattern.parse(entry)
