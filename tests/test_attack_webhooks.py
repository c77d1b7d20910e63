"""Webhooks as an attacker would use them: a receiver that never quite answers, targets that
reach inward through addresses that wrap private ones."""

import contextlib
import socket
import threading

import pytest

from webhooks import targets

PORTS = range(8791, 8800)  # this helper's ports
SAFETY_STOP_SECONDS = 20  # only a broken deadline lets the trickle run this long


class TrickleReceiver:
    """Accepts a webhook and answers one byte at a time, each well within the per-read timeout,
    for ever: a header line that never ends. Records whether the sender hung up first."""

    def __init__(self):
        self.server = self._bind()
        self.port = self.server.getsockname()[1]
        self.sender_hung_up = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _bind(self):
        for port in PORTS:
            server = socket.socket()
            try:
                server.bind(("127.0.0.1", port))
            except OSError:
                server.close()
                continue
            server.listen(1)
            return server
        raise RuntimeError("no free port for the trickle receiver")

    def _serve(self):
        connection, _ = self.server.accept()
        connection.settimeout(0.05)
        with contextlib.suppress(OSError):
            connection.recv(65536)
        try:
            connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not self.stop.wait(0.05):
                connection.sendall(b"a")
                try:
                    if connection.recv(1) == b"":  # the sender closed its end
                        self.sender_hung_up.set()
                        return
                except TimeoutError:
                    pass
        except OSError:  # a reset: the sender closed its end
            self.sender_hung_up.set()
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.server.close()


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_timeout(settings):
    """Each byte comes within the socket's timeout, so only a deadline on the whole attempt
    stops it; without one a tenant's endpoint holds a worker process (and the emails behind
    it) for as long as it likes."""
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    outcome = {}

    def deliver():
        try:
            outcome["status"] = targets.post(
                f"http://127.0.0.1:{receiver.port}/hooks", b"{}", {}, timeout=0.5
            )
        except (OSError, targets.http.client.HTTPException) as error:
            outcome["error"] = error

    with TrickleReceiver() as receiver:
        sender = threading.Thread(target=deliver, daemon=True)
        sender.start()
        hung_up = receiver.sender_hung_up.wait(SAFETY_STOP_SECONDS)
        receiver.stop.set()
        sender.join(5)

    assert hung_up, "the sender kept reading a trickled answer past its timeout"
    assert "error" in outcome, outcome


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 wrapping the cloud metadata address
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo wrapping 127.0.0.1 (inverted)
        "fec0::1",  # site-local (deprecated, still routed inside some networks)
    ],
)
def test_ipv6_addresses_wrapping_inward_ones_are_refused(settings, address):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False

    assert not targets.allowed(address)
    with pytest.raises(targets.RefusedTarget):
        targets.check_literal(address)


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f.1", "0177.0.0.1", "127.1", "::ffff:7f00:1", "0", "[::]", "localhost"],
)
def test_hosts_spelling_loopback_otherwise_are_refused_when_sending(settings, host):
    """The form lets names through (it does not resolve them); the worker resolves each one
    when it sends, and these all come out as this machine."""
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False

    with pytest.raises(targets.RefusedTarget):
        targets.resolve(host.strip("[]"), 443)
