"""image_url fetch against a real local HTTP(S) server: success, redirects, caps, timeouts and the SSRF guard."""

from __future__ import annotations

import io
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from transforms.adapters.httpx import AddressForbidden, HttpImageFetcher, guarded_client
from transforms.errors import RecognitionError
from transforms.fetch import AllowList, forbidden_reason
from transforms.settings import Settings

CAP = 100_000


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()


class Handler(BaseHTTPRequestHandler):
    """Routes of the test server; the last Host header seen is kept on the server."""

    server: ImageServer

    def do_GET(self) -> None:
        self.server.hosts_seen.append(self.headers.get("Host", ""))
        path = self.path.split("?")[0]
        if path == "/img.png":
            self._send(200, "image/png", PNG)
        elif path == "/octet":
            self._send(200, "application/octet-stream", PNG)
        elif path == "/html":
            self._send(200, "text/html; charset=utf-8", b"<html></html>")
        elif path == "/none":
            self._send(200, None, PNG)
        elif path == "/missing":
            self._send(404, "text/plain", b"no")
        elif path == "/big-declared":
            self._send(200, "image/png", b"\0" * (CAP + 1))
        elif path == "/big-undeclared":
            # No Content-Length: the cap has to be enforced while streaming.
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            for _ in range(20):
                self.wfile.write(b"\0" * 10_000)
        elif path == "/exactly-cap":
            self._send(200, "image/png", b"\0" * CAP)
        elif path.startswith("/redirect/"):
            hops = int(path.rsplit("/", 1)[1])
            self._redirect("/img.png" if hops == 0 else f"/redirect/{hops - 1}")
        elif path == "/to-absolute":
            self._redirect(f"http://{self.headers['Host']}/img.png")
        elif path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif path == "/to-file":
            self._redirect("file:///etc/passwd")
        elif path == "/slow-headers":
            time.sleep(1.5)
            self._send(200, "image/png", PNG)
        elif path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"\0" * 10)
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self._send(500, "text/plain", b"unknown route")

    def do_POST(self) -> None:
        self.server.hosts_seen.append(self.headers.get("Host", ""))
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/redirect-post":
            self._redirect("/img.png")
        else:
            self._send(200, "application/json", b'{"received": %d}' % len(body))

    def _send(self, status: int, content_type: str | None, body: bytes) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class ImageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hosts_seen: list[str] = []
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up mid-response (the size cap, the timeouts) are what these tests provoke."""


def _serve(server: ImageServer) -> Iterator[ImageServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[ImageServer]:
    yield from _serve(ImageServer())


def _settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "fetch_allow_hosts": ["127.0.0.1"],
        "fetch_connect_timeout_s": 0.5,
        "fetch_read_timeout_s": 0.5,
        "fetch_max_redirects": 3,
    }
    return Settings(**{**base, **overrides})


@pytest.fixture(scope="module")
def fetcher() -> Iterator[HttpImageFetcher]:
    with HttpImageFetcher(_settings()) as f:
        yield f


def _code(fetcher: HttpImageFetcher, url: str, max_bytes: int = CAP) -> RecognitionError:
    with pytest.raises(RecognitionError) as info:
        fetcher.fetch(url, max_bytes=max_bytes)
    return info.value


# --- success paths ---


def test_fetches_an_image(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    assert fetcher.fetch(f"http://127.0.0.1:{server.port}/img.png", max_bytes=CAP) == PNG


def test_generic_binary_content_type_is_let_through(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    assert fetcher.fetch(f"http://127.0.0.1:{server.port}/octet", max_bytes=CAP) == PNG


def test_exactly_the_cap_is_accepted(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    assert len(fetcher.fetch(f"http://127.0.0.1:{server.port}/exactly-cap", max_bytes=CAP)) == CAP


def test_follows_redirects_up_to_the_limit(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    # /redirect/2 -> /redirect/1 -> /redirect/0 -> /img.png: three redirects, the limit.
    assert fetcher.fetch(f"http://127.0.0.1:{server.port}/redirect/2", max_bytes=CAP) == PNG
    assert fetcher.fetch(f"http://127.0.0.1:{server.port}/to-absolute", max_bytes=CAP) == PNG


def test_a_size_refusal_carries_the_hint(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    with pytest.raises(RecognitionError) as info:
        fetcher.fetch(f"http://127.0.0.1:{server.port}/exactly-cap", max_bytes=CAP - 1, hint="Use batch.")
    assert info.value.code == "image_too_large"
    assert info.value.message.endswith("Use batch.")


# --- refusals from the server side ---


def test_too_many_redirects(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    err = _code(fetcher, f"http://127.0.0.1:{server.port}/redirect/3")
    assert (err.code, err.http_status) == ("url_too_many_redirects", 422)


def test_wrong_content_type(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    for route in ("html", "none"):
        err = _code(fetcher, f"http://127.0.0.1:{server.port}/{route}")
        assert (err.code, err.http_status) == ("url_not_image", 415)


def test_upstream_error_status(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    err = _code(fetcher, f"http://127.0.0.1:{server.port}/missing")
    assert err.code == "url_fetch_failed"
    assert err.details["upstream_status"] == 404


def test_size_cap_from_content_length(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    err = _code(fetcher, f"http://127.0.0.1:{server.port}/big-declared")
    assert (err.code, err.http_status) == ("image_too_large", 413)
    assert err.details["limit_bytes"] == CAP


def test_size_cap_while_streaming(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    err = _code(fetcher, f"http://127.0.0.1:{server.port}/big-undeclared")
    assert err.code == "image_too_large"


def test_read_timeout(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    started = time.monotonic()
    err = _code(fetcher, f"http://127.0.0.1:{server.port}/slow-headers")
    assert err.code == "url_timeout"
    assert time.monotonic() - started < 1.4  # gave up at the read timeout, not when the server answered


def test_slow_drip_hits_the_total_budget(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    # Each chunk arrives within the read timeout; the whole transfer exceeds connect + read timeouts.
    err = _code(fetcher, f"http://127.0.0.1:{server.port}/drip")
    assert err.code == "url_timeout"


def test_connection_refused(fetcher: HttpImageFetcher) -> None:
    with ImageServer() as closed:
        port = closed.port  # bound then closed: nothing listens there
    err = _code(fetcher, f"http://127.0.0.1:{port}/img.png")
    assert err.code == "url_fetch_failed"


def test_unresolvable_host() -> None:
    def nothing(host: str, port: int) -> list[ipaddress.IPv4Address]:
        raise OSError("no such host")

    with HttpImageFetcher(_settings(), resolver=nothing) as fetcher:
        assert _code(fetcher, "http://no-such-host.invalid/x.png").code == "url_fetch_failed"


# --- the SSRF guard ---


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/img.png",
        "http://localhost:{port}/img.png",
        "http://[::1]:{port}/img.png",
        "http://[::ffff:127.0.0.1]:{port}/img.png",
        "http://10.1.2.3/img.png",
        "http://192.168.0.1/img.png",
        "http://172.16.5.4/img.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[fe80::1]/x",
        "http://0.0.0.0:{port}/img.png",
        "http://224.0.0.1/x",
        "http://100.64.0.1/x",
    ],
)
def test_non_public_addresses_are_refused_without_allow_list(server: ImageServer, url: str) -> None:
    with HttpImageFetcher(_settings(fetch_allow_hosts=[])) as fetcher:
        err = _code(fetcher, url.format(port=server.port))
    assert (err.code, err.http_status) == ("url_forbidden", 422)


def test_refused_address_is_never_contacted(server: ImageServer) -> None:
    before = len(server.hosts_seen)
    with HttpImageFetcher(_settings(fetch_allow_hosts=[])) as fetcher:
        assert _code(fetcher, f"http://127.0.0.1:{server.port}/img.png").code == "url_forbidden"
    assert len(server.hosts_seen) == before


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://x/", "/img.png"])
def test_other_schemes_are_refused(fetcher: HttpImageFetcher, url: str) -> None:
    assert _code(fetcher, url).code == "bad_url"


def test_malformed_url(fetcher: HttpImageFetcher) -> None:
    assert _code(fetcher, "http://").code == "bad_url"
    assert _code(fetcher, "http://[::1").code == "bad_url"


def test_redirect_to_metadata_or_file_is_refused(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    assert _code(fetcher, f"http://127.0.0.1:{server.port}/to-metadata").code == "url_forbidden"
    assert _code(fetcher, f"http://127.0.0.1:{server.port}/to-file").code == "url_forbidden"


def test_allow_list_by_cidr_and_by_hostname(server: ImageServer) -> None:
    with HttpImageFetcher(_settings(fetch_allow_hosts=["127.0.0.0/8"])) as fetcher:
        assert fetcher.fetch(f"http://127.0.0.1:{server.port}/img.png", max_bytes=CAP) == PNG
    # "localhost" may resolve to ::1 first, where nothing listens: the next address is tried.
    with HttpImageFetcher(_settings(fetch_allow_hosts=["LOCALHOST."])) as fetcher:
        assert fetcher.fetch(f"http://localhost:{server.port}/img.png", max_bytes=CAP) == PNG
        # The hostname entry does not open the address to other names.
        assert _code(fetcher, f"http://127.0.0.1:{server.port}/img.png").code == "url_forbidden"


def test_connects_to_the_checked_address_with_the_original_host_header(server: ImageServer) -> None:
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        calls.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    with HttpImageFetcher(_settings(), resolver=resolver) as fetcher:
        # "pinned.example" exists in no DNS: this works only if the connection goes to the resolved address.
        assert fetcher.fetch(f"http://pinned.example:{server.port}/redirect/1", max_bytes=CAP) == PNG
    assert calls == ["pinned.example"] * 3  # resolved once per hop
    assert server.hosts_seen[-1] == f"pinned.example:{server.port}"


def test_next_address_is_tried_when_one_refuses_the_connection(server: ImageServer) -> None:
    def two(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("127.0.0.1")]  # the server is on .1 only

    with HttpImageFetcher(_settings(fetch_allow_hosts=["127.0.0.0/8"]), resolver=two) as fetcher:
        assert fetcher.fetch(f"http://two.example:{server.port}/img.png", max_bytes=CAP) == PNG


def test_any_forbidden_answer_refuses_the_host() -> None:
    def mixed(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.7")]

    with HttpImageFetcher(_settings(), resolver=mixed) as fetcher:
        err = _code(fetcher, "http://rebind.example/x.png")
    assert err.code == "url_forbidden"
    assert "10.0.0.7" in err.message


def test_forbidden_reason_classifies_addresses() -> None:
    assert forbidden_reason(ipaddress.ip_address("8.8.8.8")) is None
    assert forbidden_reason(ipaddress.ip_address("2606:4700:4700::1111")) is None
    assert forbidden_reason(ipaddress.ip_address("169.254.169.254")) == "a cloud metadata address"
    assert forbidden_reason(ipaddress.ip_address("2002:7f00:1::")) == "a loopback address"  # 6to4 of 127.0.0.1
    assert AllowList(["10.0.0.0/8", "img.internal"]).allows("x", ipaddress.ip_address("10.9.9.9"))
    assert AllowList(["10.0.0.0/8", "img.internal"]).allows("IMG.internal.", ipaddress.ip_address("192.168.1.1"))
    assert not AllowList(["10.0.0.0/8"]).allows("x", ipaddress.ip_address("11.0.0.1"))


def test_credentials_and_query_are_not_echoed(fetcher: HttpImageFetcher, server: ImageServer) -> None:
    err = _code(fetcher, f"http://user:secret@127.0.0.1:{server.port}/missing?token=abc")
    assert "secret" not in err.message and "abc" not in err.message


# --- the guarded client, as webhook delivery uses it ---


def test_guarded_client_posts_to_allowed_hosts_without_following_redirects(server: ImageServer) -> None:
    with guarded_client(_settings()) as client:
        response = client.post(f"http://127.0.0.1:{server.port}/hook", content=b"x" * 1000)
        assert response.json() == {"received": 1000}
        assert client.post(f"http://127.0.0.1:{server.port}/redirect-post", content=b"{}").status_code == 302


def test_guarded_client_refuses_private_addresses_with_an_httpx_error(server: ImageServer) -> None:
    before = len(server.hosts_seen)
    with guarded_client(_settings(fetch_allow_hosts=[])) as client:
        for url in (f"http://127.0.0.1:{server.port}/hook", "http://169.254.169.254/", "http://[::1]/"):
            with pytest.raises(AddressForbidden) as info:
                client.post(url, content=b"{}")
            assert isinstance(info.value, httpx.HTTPError)
    assert len(server.hosts_seen) == before


# --- HTTPS: the pinned connection still sends SNI and checks the certificate for the host name ---


# A self-signed certificate for img.test only (EC P-256, valid 2000-2199), made once with `cryptography`; a test
# key, never used for anything else. Kept inline so the test needs no openssl binary.
TEST_CERT = """-----BEGIN CERTIFICATE-----
MIIBUDCB+KADAgECAhQjB7AUFSM7g4ag0A00wl50c81nJzAKBggqhkjOPQQDAjAT
MREwDwYDVQQDDAhpbWcudGVzdDAgFw0wMDAxMDEwMDAwMDBaGA8yMTk5MDEwMTAw
MDAwMFowEzERMA8GA1UEAwwIaW1nLnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMB
BwNCAATgWfMHef4fR3H53JTjZDbS3h6PDCsdSOFRrsMQZ803xlNvw5ShCUmz3UQ7
s3vuJMq3qYnRXNxhJcO0PuG/by9woygwJjATBgNVHREEDDAKgghpbWcudGVzdDAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIFdVDSy8GfDXwcaNwkJE
WZV4zvIvaVdP4IEMUdlMaUmMAiAuAmRJp9zhJZyahWmABsBQ1mRrHbBYMM5qzMnt
PBazgQ==
-----END CERTIFICATE-----
"""
TEST_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgefA/dMi6gFsaAfoB
koWqSOt4LWeqUaVKPG8TynLKVRahRANCAATgWfMHef4fR3H53JTjZDbS3h6PDCsd
SOFRrsMQZ803xlNvw5ShCUmz3UQ7s3vuJMq3qYnRXNxhJcO0PuG/by9w
-----END PRIVATE KEY-----
"""


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    cert.write_text(TEST_CERT)
    key.write_text(TEST_KEY)
    return cert, key


def test_https_keeps_sni_and_certificate_check(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    sni_seen: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: sni_seen.append(name)  # type: ignore[assignment,misc,return-value]
    client_ctx = ssl.create_default_context(cafile=str(cert))

    def to_loopback(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address("127.0.0.1")]

    for tls_server in _serve(ImageServer(tls=server_ctx)):
        with HttpImageFetcher(_settings(), resolver=to_loopback, verify=client_ctx) as fetcher:
            assert fetcher.fetch(f"https://img.test:{tls_server.port}/img.png", max_bytes=CAP) == PNG
            # The certificate names img.test only: another name pinned to the same address fails verification.
            assert _code(fetcher, f"https://other.test:{tls_server.port}/img.png").code == "url_fetch_failed"
    assert sni_seen[0] == "img.test"
