"""HTTP(S) downloads for URL imports, guarded against server-side request forgery.

A tenant's ``DiskContainer.Url`` must not become a way into the host's own services. So every
connection, the first and each one after a redirect, resolves the host name itself and refuses
the whole request if *any* address it resolves to is loopback, link-local, private, shared,
multicast, reserved or unspecified (IPv4-mapped IPv6 included), unless it lies in a network the
operator allowed (``kiln serve --import-allow-net CIDR``). The socket then connects to exactly
the address that was checked, so a DNS answer that changes between check and connect cannot
slip through. No proxy is used, redirects go to http(s) only and at most ``MAX_REDIRECTS``
times, and each download has a size limit and a deadline (docs/security.md#downloads).
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kiln import errors
from kiln.errors import KilnError

log = logging.getLogger(__name__)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SOCKET_TIMEOUT_S = 60.0
MAX_REDIRECTS = 5
BLOCK = 1024 * 1024
DEFAULT_MAX_BYTES = 1 << 40  # 1 TiB
DEFAULT_DEADLINE_S = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class DownloadPolicy:
    """What URL imports may reach: the networks an operator allowed beyond the public
    internet, the largest download, and the longest one."""

    allow_nets: tuple[IpNetwork, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    deadline_s: float = DEFAULT_DEADLINE_S

    def permits(self, ip: IpAddress) -> bool:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip.version == net.version and ip in net for net in self.allow_nets):
            return True
        return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def parse_networks(values: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    """``--import-allow-net`` values; a bad one raises ValueError naming it."""
    nets: list[IpNetwork] = []
    for v in values:
        try:
            nets.append(ipaddress.ip_network(v, strict=False))
        except ValueError:
            raise ValueError(f"not a network in CIDR notation: {v!r}") from None
    return tuple(nets)


def _refused(host: str) -> KilnError:
    return KilnError(
        errors.InvalidParameterValue,
        f"Cannot download from {host}: the address is not reachable for imports.",
    )


def resolve_checked(policy: DownloadPolicy, host: str, port: int) -> list[tuple[int, IpAddress]]:
    """The addresses of ``host`` (family, address), all of them permitted, or KilnError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise KilnError(
            errors.InvalidParameterValue, f"Cannot download from {host}: the name does not resolve."
        ) from None
    found: list[tuple[int, IpAddress]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not policy.permits(ip):
            log.warning("URL import refused: %s resolves to %s", host, ip)
            raise _refused(host)
        found.append((family, ip))
    if not found:
        raise _refused(host)
    return found


def check_url(policy: DownloadPolicy, url: str) -> None:
    """Refuse at request time what the download would refuse (a clear API error early)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise KilnError(errors.InvalidParameterValue, f"Invalid URL '{url[:256]}'.")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        raise KilnError(errors.InvalidParameterValue, f"Invalid URL '{url[:256]}'.") from None
    resolve_checked(policy, parsed.hostname, port)


def _connector(policy: DownloadPolicy) -> Callable[..., socket.socket]:
    def create_connection(
        address: tuple[str, int],
        timeout: float | None = None,
        source_address: tuple[str, int] | None = None,
    ) -> socket.socket:
        host, port = address
        last: OSError | None = None
        for family, ip in resolve_checked(policy, host, port):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect((str(ip), port))
                return sock
            except OSError as e:
                sock.close()
                last = e
        raise last or OSError(f"cannot connect to {host}")

    return create_connection


def _opener(policy: DownloadPolicy) -> urllib.request.OpenerDirector:
    connect = _connector(policy)

    class GuardedHTTP(http.client.HTTPConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:  # urllib's own arguments
            super().__init__(*args, **kwargs)
            self._create_connection = connect

    class GuardedHTTPS(http.client.HTTPSConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:  # urllib's own arguments
            super().__init__(*args, **kwargs)
            self._create_connection = connect

    class HttpHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(GuardedHTTP, req)

    class HttpsHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(GuardedHTTPS, req, context=self._context)  # type: ignore[attr-defined]

    class Redirects(urllib.request.HTTPRedirectHandler):
        max_redirections = MAX_REDIRECTS

        def redirect_request(
            self,
            req: urllib.request.Request,
            fp: object,
            code: int,
            msg: str,
            headers: object,
            newurl: str,
        ) -> urllib.request.Request | None:
            if urlparse(newurl).scheme not in ("http", "https"):
                raise KilnError(
                    errors.InvalidParameterValue,
                    f"Download redirected to an unsupported URL scheme: {newurl[:256]}",
                )
            return super().redirect_request(req, fp, code, msg, headers, newurl)  # type: ignore[arg-type]

    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.UnknownHandler(),
        HttpHandler(),
        HttpsHandler(),
        Redirects(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def download(
    policy: DownloadPolicy,
    url: str,
    out: Path,
    progress: Callable[[int, int], None],
    check: Callable[[], None],
) -> int:
    """Stream ``url`` into ``out`` (replaced atomically). Returns the byte count.

    :raises KilnError: InvalidParameterValue for a refused address, an HTTP error, a download
        over the size limit or past the deadline; StoreFull when the disk fills."""
    tmp = out.with_name(f".{out.name}.partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + policy.deadline_s
    try:
        check_url(policy, url)
        req = urllib.request.Request(url, headers={"User-Agent": "kiln-import/1"})
        with _opener(policy).open(req, timeout=SOCKET_TIMEOUT_S) as resp, open(tmp, "wb") as f:
            total = int(resp.headers.get("Content-Length") or 0)
            if total > policy.max_bytes:
                raise _too_large(url, policy)
            done = 0
            while True:
                check()
                if time.monotonic() > deadline:
                    raise KilnError(
                        errors.InvalidParameterValue,
                        f"Download of {url} took longer than {policy.deadline_s:g} s.",
                    )
                block = resp.read(BLOCK)
                if not block:
                    break
                done += len(block)
                if done > policy.max_bytes:
                    raise _too_large(url, policy)
                f.write(block)
                progress(done, total or done)
            if total and done != total:
                raise KilnError(
                    errors.InvalidParameterValue,
                    f"Download of {url} ended after {done} of {total} bytes.",
                )
        os.replace(tmp, out)
        log.info("downloaded %s: %d bytes", url, done)
        return done
    except urllib.error.HTTPError as e:
        raise KilnError(
            errors.InvalidParameterValue, f"Cannot download {url}: HTTP {e.code} {e.reason}"
        ) from e
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, KilnError):
            raise reason from None
        raise KilnError(errors.InvalidParameterValue, f"Cannot download {url}: {reason}") from e
    except OSError as e:
        if e.errno == 28:
            raise KilnError(errors.StoreFull, f"No space left to download {url}") from e
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _too_large(url: str, policy: DownloadPolicy) -> KilnError:
    return KilnError(
        errors.InvalidParameterValue,
        f"Download of {url} is larger than the import limit of {policy.max_bytes} bytes.",
    )
