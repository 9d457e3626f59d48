"""httpx: outbound HTTP with an SSRF guard, the `image_url` fetch and webhook delivery.

SSRF guard (`GuardedTransport`, an httpx transport, so it also serves webhook delivery through
`guarded_client`): every request, each redirect hop included, resolves its host once; every resolved address is
checked against the policy of `transforms/fetch.py`; then the request goes to that checked address: the URL is
rewritten to the IP while the `Host` header and TLS SNI / certificate check keep the original name. So a DNS
answer that changes between check and connect (rebinding) cannot move the connection. Only http and https are
spoken; environment proxies are ignored (a proxy would bypass the pin).
"""

from __future__ import annotations

import ssl
import time
from typing import Any, Self

import httpx

from transforms.errors import RecognitionError
from transforms.fetch import AllowList, IPAddress, Resolver, forbidden_reason, system_resolver
from transforms.intake import too_large
from transforms.settings import Settings
from transforms.webhooks import DeliveryFailed

# Generic binary types are let through: object stores often serve images that way; the decoder is the real check.
_BINARY_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})


class AddressForbidden(httpx.TransportError):
    """The SSRF guard refused to connect (an httpx error, so plain httpx callers handle it like any other)."""


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that resolves, checks and pins every request (each redirect hop is a request)."""

    def __init__(self, allow: AllowList, resolver: Resolver = system_resolver, verify: ssl.SSLContext | bool = True):
        self.allow = allow
        self.resolver = resolver
        # Keep-alive is off: a pooled connection is keyed by IP and would be reused for another hostname.
        self._inner = httpx.HTTPTransport(verify=verify, limits=httpx.Limits(max_keepalive_connections=0))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"scheme {url.scheme or '(none)'!r} is refused", request=request)
        host = url.raw_host.decode("ascii")
        extensions = {**request.extensions, "sni_hostname": host} if url.scheme == "https" else request.extensions

        def send_to(ip: IPAddress) -> httpx.Response:
            # The Host header (set from the original URL) and SNI keep the name; the socket goes to the checked IP.
            pinned = httpx.Request(
                request.method, url.copy_with(host=str(ip)), headers=request.headers,
                stream=request.stream, extensions=extensions,
            )
            return self._inner.handle_request(pinned)

        *others, last = self._checked_addresses(request)
        for ip in others:
            try:
                return send_to(ip)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                continue  # try the host's next address
        return send_to(last)

    def close(self) -> None:
        self._inner.close()

    def _checked_addresses(self, request: httpx.Request) -> list[IPAddress]:
        url = request.url
        host = url.raw_host.decode("ascii")
        try:
            ips = self.resolver(host, url.port or (443 if url.scheme == "https" else 80))
        except (OSError, UnicodeError) as exc:
            raise httpx.ConnectError(f"host name {host} could not be resolved", request=request) from exc
        if not ips:
            raise httpx.ConnectError(f"host name {host} has no addresses", request=request)
        for ip in ips:
            reason = None if self.allow.allows(host, ip) else forbidden_reason(ip)
            if reason:
                raise AddressForbidden(f"host {host} resolves to {ip}, {reason}", request=request)
        return ips


def guarded_client(
    settings: Settings,
    *,
    resolver: Resolver = system_resolver,
    verify: ssl.SSLContext | bool = True,
    **client_options: Any,
) -> httpx.Client:
    """An httpx client whose every request passes the SSRF guard; timeouts from settings; no redirects by default."""
    return httpx.Client(
        transport=GuardedTransport(AllowList(settings.fetch_allow_hosts), resolver, verify),
        # Environment proxies would bypass the pinned connection.
        trust_env=False,
        timeout=httpx.Timeout(settings.fetch_read_timeout_s, connect=settings.fetch_connect_timeout_s),
        **client_options,
    )


class HttpImageFetcher:
    """The `ImageFetcher` port through a guarded client; reusable and thread-safe."""

    def __init__(
        self,
        settings: Settings,
        *,
        resolver: Resolver = system_resolver,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.max_redirects = settings.fetch_max_redirects
        # A slow drip of bytes must not hold a worker forever: one budget for the whole fetch.
        self.total_budget_s = settings.fetch_connect_timeout_s + settings.fetch_read_timeout_s
        self._client = guarded_client(
            settings,
            resolver=resolver,
            verify=verify,
            follow_redirects=True,
            max_redirects=settings.fetch_max_redirects,
            # identity: the size cap then counts what the server sends, never a decompression bomb.
            headers={"User-Agent": "imgrec-fetch/1", "Accept": "image/*", "Accept-Encoding": "identity"},
        )

    def check_url(self, url: str, field: str = "image_url") -> None:
        """Refuse what is not an absolute http(s) URL (bad_url, url_forbidden) before anything is queued."""
        parse_http_url(url, field)

    def fetch(self, url: str, *, max_bytes: int, hint: str = "") -> bytes:
        """The image bytes behind `url`, or a RecognitionError saying why not."""
        deadline = time.monotonic() + self.total_budget_s
        parsed = parse_http_url(url)
        try:
            with self._client.stream("GET", parsed) as response:
                return _read(response, max_bytes, hint, deadline)
        except AddressForbidden as exc:
            raise RecognitionError("url_forbidden", f"image_url {exc}; it is not fetched.") from exc
        except httpx.UnsupportedProtocol as exc:
            raise RecognitionError("url_forbidden", f"image_url redirected to a refused URL: {exc}.") from exc
        except httpx.TooManyRedirects as exc:
            raise RecognitionError(
                "url_too_many_redirects",
                f"image_url redirected more than {self.max_redirects} times.",
                max_redirects=self.max_redirects,
            ) from exc
        except httpx.TimeoutException as exc:
            raise _timeout(parsed) from exc
        except httpx.HTTPError as exc:
            raise _failed(parsed, str(exc) or type(exc).__name__) from exc

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HttpWebhookSender:
    """The `WebhookSender` port: one guarded client per delivery (deliveries are rare; nothing to keep warm)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            with guarded_client(self.settings) as client:
                return client.post(url, content=body, headers=headers).status_code
        except (httpx.HTTPError, OSError, ValueError) as exc:  # includes the SSRF guard's refusal
            raise DeliveryFailed(str(exc) or type(exc).__name__) from exc


def _read(response: httpx.Response, max_bytes: int, hint: str, deadline: float) -> bytes:
    if response.status_code != 200:
        raise _failed(
            response.url, f"the server answered HTTP {response.status_code}", upstream_status=response.status_code
        )
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (content_type.startswith("image/") or content_type in _BINARY_TYPES):
        raise RecognitionError(
            "url_not_image",
            f"image_url serves {content_type or 'no content type'}, not an image.",
            content_type=content_type,
        )
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(int(declared), max_bytes, hint)
    chunks: list[bytes] = []
    received = 0
    for chunk in response.iter_bytes():
        received += len(chunk)
        if received > max_bytes:
            raise too_large(None, max_bytes, hint)
        if time.monotonic() > deadline:
            raise _timeout(response.url)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_http_url(url: str, field: str = "image_url") -> httpx.URL:
    """An absolute http(s) URL, or RecognitionError bad_url naming `field`."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise RecognitionError("bad_url", f"{field} is not a valid URL: {exc}.") from exc
    if parsed.scheme not in ("http", "https"):
        scheme = parsed.scheme or "(none)"
        raise RecognitionError("bad_url", f"{field} scheme {scheme!r} is refused; use http or https.")
    if not parsed.raw_host:
        raise RecognitionError("bad_url", f"{field} has no host.")
    return parsed


def _failed(url: httpx.URL, why: str, **details: object) -> RecognitionError:
    return RecognitionError("url_fetch_failed", f"image_url {_redacted(url)} could not be fetched: {why}.", **details)


def _timeout(url: httpx.URL) -> RecognitionError:
    return RecognitionError("url_timeout", f"image_url {_redacted(url)} timed out.")


def _redacted(url: httpx.URL) -> str:
    """The URL without credentials or query (they may hold secrets), for messages and logs."""
    return str(url.copy_with(userinfo=b"", query=None, fragment=None))
