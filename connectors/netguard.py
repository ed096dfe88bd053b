"""The SSRF guard: which URLs and addresses a connector may reach.

A feed, a redirect or a link in an article decides where we connect next, so a hostile one could
point us at the cloud metadata service, the admin port of a router or a service on localhost.
The guard therefore refuses every address that is not globally routable, after the same
resolution the operating system does (``http://0x7f.1/`` and ``http://2130706433/`` are
127.0.0.1, ``::ffff:10.0.0.1`` is 10.0.0.1), and checks *every* resolved address. The caller
connects to the address returned here instead of resolving the name again, so a DNS answer that
changes between check and connect (DNS rebinding) cannot slip through.

Intranet sources and tests pass an explicit allowlist of networks or host names.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Resolves a host name to addresses; ``resolve`` is the real one, tests may pass their own.
Resolver = Callable[[str, int], list[IPAddress]]

ALLOWED_SCHEMES = ("http", "https")
#: Carrier-grade NAT space (RFC 6598); Python's ``is_private`` does not include it.
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
#: The well-known NAT64 prefix (RFC 6052): the last 32 bits are an IPv4 address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_-]{1,63})*\.?$")


class BadScheme(ValueError):
    """The URL is not http(s): ``file://``, ``ftp://``, ``gopher://``, ``javascript:``..."""


class ForbiddenAddress(ValueError):
    """The host resolves to an address a connector must not reach."""

    def __init__(self, address: IPAddress, reason: str) -> None:
        super().__init__(f"{address} is a {reason}")
        self.address = address
        self.reason = reason


class UnresolvableHost(OSError):
    """DNS has no address for the host (or the resolver failed)."""


@dataclass(frozen=True)
class Allowlist:
    """Networks and host names that may be reached even though they are not public."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


@lru_cache(maxsize=256)
def parse_allowlist(entries: tuple[str, ...]) -> Allowlist:
    """Parse ``allow_networks`` entries: CIDRs (``10.1.0.0/16``), addresses or host names."""
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for entry in entries:
        text = entry.strip().lower()
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
            continue
        except ValueError:
            pass
        if not _HOST_NAME.match(text):
            raise ValueError(
                f"allow_networks entry {entry!r} is neither a network (like 10.1.0.0/16 or"
                " 192.168.1.7) nor a host name (like intranet.example.org)"
            )
        hosts.add(text.rstrip("."))
    return Allowlist(tuple(networks), frozenset(hosts))


def check_scheme(scheme: str | None, url: str) -> None:
    if (scheme or "").lower() not in ALLOWED_SCHEMES:
        raise BadScheme(f"refusing {url}: only http and https URLs are fetched")


def _translated_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped or NAT64 address really reaches."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _tunnelled_ipv4(address: IPAddress) -> Iterator[ipaddress.IPv4Address]:
    """IPv4 endpoints carried by 6to4 and Teredo addresses."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.sixtofour is not None:
            yield address.sixtofour
        if address.teredo is not None:
            yield from address.teredo


def _special_use(address: IPAddress) -> str | None:
    checks: Sequence[tuple[bool, str]] = (
        (address.is_loopback, "loopback address"),
        (address.is_unspecified, "unspecified address"),
        (address.is_link_local, "link-local address"),
        (address.is_multicast, "multicast address"),
        (address in _SHARED, "shared (carrier-grade NAT) address"),
        (address.is_reserved, "reserved address"),
        (address.is_private, "private address"),
        (not address.is_global, "non-public address"),
    )
    return next((label for matched, label in checks if matched), None)


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` must not be reached, or None when it is a public address."""
    translated = _translated_ipv4(address)
    if translated is not None:
        reason = _special_use(translated)
        return f"{reason} ({translated}) written as IPv6" if reason else None
    for endpoint in _tunnelled_ipv4(address):
        reason = _special_use(endpoint)
        if reason:
            return f"{reason} ({endpoint}) inside an IPv6 tunnel address"
    return _special_use(address)


def numeric_address(host: str) -> IPAddress | None:
    """The address a numeric host stands for, parsed as the OS parses it (no DNS query).

    ``getaddrinfo`` with ``AI_NUMERICHOST`` accepts the same decimal, octal, hex and short forms
    (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``) that a connect would.
    """
    try:
        infos = socket.getaddrinfo(
            host.strip("[]"), None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
        )
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return _address(infos[0][4][0]) if infos else None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for ``host``."""
    numeric = numeric_address(host)
    if numeric is not None:
        return [numeric]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"cannot resolve {host}: {exc}") from exc
    addresses = list(dict.fromkeys(_address(info[4][0]) for info in infos))
    if not addresses:
        raise UnresolvableHost(f"cannot resolve {host}: no addresses")
    return addresses


def _address(text: object) -> IPAddress:
    return ipaddress.ip_address(str(text).split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)


def pin(host: str, port: int, allow: Allowlist, resolver: Resolver = resolve) -> IPAddress:
    """The checked address to connect to for ``host``; raises ``ForbiddenAddress``.

    Every resolved address must be allowed, not just the first: the OS may try any of them.
    """
    addresses = resolver(host.strip("[]"), port)
    if allow.allows_host(host):
        return addresses[0]
    for address in addresses:
        if allow.allows_address(address):
            continue
        reason = forbidden_reason(address)
        if reason:
            raise ForbiddenAddress(address, reason)
    return addresses[0]
