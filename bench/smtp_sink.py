"""A lean SMTP server for the mail benches: it accepts every message and counts sessions, and each
message with the time it arrived and its first recipient.

Why not aiosmtpd: on the bench's 2 cores the sink shares the CPU with the worker it measures,
and aiosmtpd (a coroutine per command, a parser per line) spends about 0.7 ms an email, as much
as the worker itself. A mail server in production runs on machines of its own; this one answers
from one asyncio Protocol, every reply of one read in one write, at a fraction of that CPU, so
the figure is the worker's. It speaks what smtplib and Django's SMTP backend send (EHLO or HELO,
MAIL, RCPT, DATA, RSET, NOOP, QUIT), offers PIPELINING unless told not to, and checks nothing.
"""

import asyncio
import threading
import time

END_OF_DATA = b"\r\n.\r\n"


class LeanSink:
    def __init__(self, *, host="127.0.0.1", port, pipelining=True, on_message=None):
        self.host, self.port, self.pipelining = host, port, pipelining
        # Called with each message's first recipient, e.g. to count across processes.
        self.on_message = on_message
        self.sessions = 0
        self.received = []
        self._loop = None
        self._server = None
        self._thread = None

    def start(self):
        ready = threading.Event()

        def serve():
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(
                self._loop.create_server(lambda: _Session(self), self.host, self.port)
            )
            ready.set()
            self._loop.run_forever()
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="lean-smtp-sink", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("The SMTP sink did not start.")

    def stop(self):
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None


class _Session(asyncio.Protocol):
    def __init__(self, sink):
        self.sink = sink
        self.buffer = b""
        self.in_data = False
        self.recipients = []

    def connection_made(self, transport):
        self.transport = transport
        self.sink.sessions += 1
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data):
        self.buffer += data
        replies = []
        while self.buffer:
            if self.in_data:
                # An empty message is the terminator alone, right after DATA's reply.
                if self.buffer.startswith(b".\r\n"):
                    rest = 3
                else:
                    end = self.buffer.find(END_OF_DATA)
                    if end < 0:
                        break
                    rest = end + len(END_OF_DATA)
                self.buffer = self.buffer[rest:]
                self.in_data = False
                self.sink.received.append((time.time(), self.recipients[0]))
                if self.sink.on_message is not None:
                    self.sink.on_message(self.recipients[0])
                replies.append(b"250 Message accepted for delivery\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            reply = self.command(line)
            if reply is None:
                self.transport.write(b"".join(replies) + b"221 Bye\r\n")
                self.transport.close()
                return
            replies.append(reply)
        if replies:
            self.transport.write(b"".join(replies))

    def command(self, line):
        verb = line[:4].upper()
        if verb == b"EHLO":
            extensions = b"250-PIPELINING\r\n" if self.sink.pipelining else b""
            return b"250-sink\r\n" + extensions + b"250-8BITMIME\r\n250 SMTPUTF8\r\n"
        if verb == b"MAIL":
            self.recipients = []
            return b"250 OK\r\n"
        if verb == b"RCPT":
            address = line.partition(b":")[2].strip().strip(b"<>").decode("utf-8", "replace")
            self.recipients.append(address)
            return b"250 OK\r\n"
        if verb == b"DATA":
            if not self.recipients:
                return b"503 Error: need RCPT command\r\n"
            self.in_data = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == b"QUIT":
            return None
        if verb == b"RSET":
            self.recipients = []
        if verb in (b"HELO", b"RSET", b"NOOP"):
            return b"250 OK\r\n"
        return b"502 Command not implemented\r\n"
