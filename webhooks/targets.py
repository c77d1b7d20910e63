"""Where a webhook may be sent: never to this machine or the networks behind it (SSRF).

The URL's host is resolved and every address it has is checked, and the connection then goes to
an address that was checked (not to the name again, which a DNS answer with a short TTL could
point elsewhere in between). Loopback, private, shared (CGNAT), link-local (cloud metadata at
169.254.169.254), multicast, reserved and unspecified addresses are refused;
WEBHOOKS_ALLOW_PRIVATE_TARGETS opens loopback and private networks for tests and development,
never link-local. Redirects are not followed (http.client never follows them), so a public
endpoint cannot bounce a delivery inward; a 3xx is a failed attempt.

The stdlib's http.client and not urllib.request: only the connection needs pinning to the
checked address, and urllib's opener would add redirect handling to switch off again.
requirements.txt has no HTTP client, and this is all a webhook needs."""

import contextlib
import http.client
import ipaddress
import socket
import threading
from urllib.parse import urlsplit

from django.conf import settings


class RefusedTarget(Exception):
    """A URL the worker will not send to, with a message fit to show."""


def parse(url):
    """(scheme, host, port, path with query) of a URL a webhook may use, else RefusedTarget."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RefusedTarget("Enter a full URL, such as https://crm.example.com/hooks.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise RefusedTarget("Enter a full URL, such as https://crm.example.com/hooks.")
    if scheme == "http" and not (settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS or settings.DEBUG):
        raise RefusedTarget("Use an https:// URL: deliveries carry people's names and emails.")
    if parts.username is not None or parts.password is not None:
        raise RefusedTarget("Put no user name or password in the URL: deliveries are signed.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80), path


def allowed(address):
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        # An IPv4 address inside an IPv6 one (mapped, or 6to4's 2002::/16, which Python calls
        # global) is judged as that IPv4 address; site-local fec0::/10 is private in practice.
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            return allowed(str(ip.sixtofour))
        elif ip.is_site_local:
            return False
    if ip.is_multicast or ip.is_unspecified or ip.is_link_local or ip.is_reserved:
        return False
    if ip.is_loopback or ip.is_private:
        return settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS
    return ip.is_global


def check_literal(host):
    """At the form: a host that is itself a forbidden address (or localhost) is refused at once;
    a name is resolved only when sending (DNS at the form would make the page wait on it)."""
    if host.lower().rstrip(".") in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        if not settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
            raise RefusedTarget("Webhooks cannot be sent to this machine. Use a public address.")
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return
    if not allowed(host):
        raise RefusedTarget(
            f"Webhooks cannot be sent to {host}: a private, loopback or link-local address. "
            "Use a public address."
        )


def resolve(host, port):
    """The host's addresses, all of them allowed, else RefusedTarget."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise RefusedTarget(f"The host {host} could not be resolved ({error}).") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    refused = [address for address in addresses if not allowed(address)]
    if refused or not addresses:
        # The addresses stay out: the delivery log shows this to the account's admins, who
        # would otherwise learn what any name resolves to inside the MSSP's network.
        raise RefusedTarget(
            f"Refused: {host} resolves to a private, loopback or link-local address."
        )
    return addresses


class _Pinned:
    """A connection to a checked address; TLS (certificate and SNI) still checks the name."""

    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def _open(self):
        self.raw_socket = socket.create_connection((self.address, self.port), self.timeout)
        return self.raw_socket


class _PinnedHTTP(_Pinned, http.client.HTTPConnection):
    def connect(self):
        self.sock = self._open()


class _PinnedHTTPS(_Pinned, http.client.HTTPSConnection):
    def connect(self):
        self.sock = self._context.wrap_socket(self._open(), server_hostname=self.host)


def post(url, body, headers, *, timeout):
    """POST `body` to `url`; returns the response's status code. RefusedTarget for a URL or
    address that is not allowed; OSError / http.client.HTTPException when the request fails."""
    scheme, host, port, path = parse(url)
    address = resolve(host, port)[0]
    connection_class = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    connection = connection_class(host, port, address=address, timeout=timeout)
    # `timeout` bounds each socket operation only: a receiver sending a byte now and then would
    # hold the worker process (and every task behind it) for as long as it liked. The whole
    # attempt gets twice the timeout (connecting, then answering): then the socket is shut,
    # which ends the read in progress, and the attempt counts as unanswered.
    deadline = threading.Timer(2 * timeout, _cut_off, args=(connection,))
    deadline.daemon = True
    deadline.start()
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(4096)  # what a receiver says is not kept; a little is read to end politely
    finally:
        deadline.cancel()
        connection.close()
    if getattr(connection, "cut_off", False):  # a cut answer may still have parsed as a 200
        raise TimeoutError("the answer did not end within the timeout")
    return response.status


def _cut_off(connection):
    connection.cut_off = True
    raw = getattr(connection, "raw_socket", None)
    if raw is not None:
        with contextlib.suppress(OSError):  # already closed
            raw.shutdown(socket.SHUT_RDWR)
