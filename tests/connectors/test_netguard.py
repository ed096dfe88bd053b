"""The SSRF guard on its own: address classes, numeric host forms, allowlists, DNS answers."""

from __future__ import annotations

import ipaddress

import pytest

from connectors.netguard import (
    Allowlist,
    BadScheme,
    ForbiddenAddress,
    IPAddress,
    Resolver,
    check_scheme,
    forbidden_reason,
    numeric_address,
    parse_allowlist,
    pin,
)

NOWHERE = Allowlist()


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),  # decimal
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0x7f.1", "127.0.0.1"),  # hex, short
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),  # short
        ("10.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
    ],
)
def test_numeric_hosts_are_read_as_the_os_reads_them(host: str, address: str) -> None:
    assert numeric_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.org", "127.0.0.1.example.org", "1.2.3.4.5"])
def test_names_are_not_numeric(host: str) -> None:
    assert numeric_address(host) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "shared"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", "address"),  # documentation range
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    found = forbidden_reason(ipaddress.ip_address(address))
    assert found is not None
    assert reason in found


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "host", ["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "[::ffff:127.0.0.1]", "[::1]"]
)
def test_pin_refuses_numeric_loopback_forms(host: str) -> None:
    with pytest.raises(ForbiddenAddress) as caught:
        pin(host, 80, NOWHERE)
    assert caught.value.reason.startswith("loopback")


def _answers(*addresses: str) -> Resolver:
    def resolver(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in addresses]

    return resolver


def test_every_resolved_address_must_be_public() -> None:
    resolver = _answers("93.184.216.34", "10.0.0.7")
    with pytest.raises(ForbiddenAddress, match=r"10\.0\.0\.7"):
        pin("mixed.example", 80, NOWHERE, resolver)


def test_pin_returns_the_checked_address() -> None:
    resolver = _answers("93.184.216.34", "2606:2800:220:1::248")
    address = pin("example.org", 443, NOWHERE, resolver)
    assert address == ipaddress.ip_address("93.184.216.34")


def test_allowlisted_networks_and_hosts_pass() -> None:
    allow = parse_allowlist(("127.0.0.0/8", "10.1.2.3", "Intranet.Example."))
    assert pin("0x7f.1", 80, allow) == ipaddress.ip_address("127.0.0.1")
    assert pin("10.1.2.3", 80, allow) == ipaddress.ip_address("10.1.2.3")
    with pytest.raises(ForbiddenAddress):
        pin("10.1.2.4", 80, allow)
    resolver = _answers("10.9.9.9")
    assert pin("intranet.example", 80, allow, resolver) == ipaddress.ip_address("10.9.9.9")


@pytest.mark.parametrize("entry", ["not a host", "10.0.0.0/33", "http://x/"])
def test_bad_allowlist_entries_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match="allow_networks"):
        parse_allowlist((entry,))


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/", "gopher://example.org/", "javascript:x"]
)
def test_only_http_schemes(url: str) -> None:
    with pytest.raises(BadScheme, match="only http and https"):
        check_scheme(url.split(":", 1)[0], url)
    check_scheme("HTTPS", "HTTPS://example.org/")
