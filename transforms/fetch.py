"""Outbound HTTP as the domain sees it: the SSRF policy and the `ImageFetcher` port.

Policy: a host may be contacted only when every address it resolves to is a public unicast address (private,
loopback, link-local, multicast, reserved, unspecified and cloud metadata addresses are refused) unless the host
name or a CIDR holding the address is allow-listed in `Settings.fetch_allow_hosts`. The adapter that enforces it
on every request and redirect hop, pinned to the checked address, is `transforms/adapters/httpx.py`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Protocol

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]

# Cloud metadata endpoints (link-local and private anyway), named so that a refusal says what they are.
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})


class ImageFetcher(Protocol):
    """Reads `image_url`s: timeouts, redirects, a size cap and a type check, behind the SSRF policy."""

    def check_url(self, url: str, field: str = "image_url") -> None:
        """Refuse what is not an absolute http(s) URL: RecognitionError bad_url or url_forbidden naming `field`."""
        ...

    def fetch(self, url: str, *, max_bytes: int, hint: str = "") -> bytes:
        """The image bytes behind `url`, or a RecognitionError saying why not."""
        ...

    def close(self) -> None: ...


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """All addresses `host` resolves to, in the system's preferred order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG)
    # IPv6 link-local answers carry a scope ("fe80::1%eth0"); the address part is what is checked.
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why a connection to `ip` is refused, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 reaches the IPv4 host: judge that one.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return forbidden_reason(embedded)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for reason, flag in (
        ("a loopback address", ip.is_loopback),
        ("a link-local address", ip.is_link_local),
        ("a multicast address", ip.is_multicast),
        ("an unspecified address", ip.is_unspecified),
        ("a reserved address", ip.is_reserved),
        ("a private address", ip.is_private),
    ):
        if flag:
            return reason
    # What is left but not global (e.g. carrier-grade NAT 100.64.0.0/10) is not a public host either.
    return None if ip.is_global else "a non-public address"


class AllowList:
    """Hostnames and CIDRs that may be fetched even though they resolve to non-public addresses."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                self.hosts.add(_normal_host(entry))

    def allows(self, host: str, ip: IPAddress) -> bool:
        return _normal_host(host) in self.hosts or any(ip in net for net in self.networks)


def _normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".").strip("[]")
