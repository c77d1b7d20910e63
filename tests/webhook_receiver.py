"""A real HTTP server on localhost that receives webhooks: it keeps each request (headers and
raw body) and answers with the status codes it is given, in turn (the last one for ever)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The ports this checkout's tests may listen on (several test processes run at once).
PORTS = range(8781, 8790)


class Receiver:
    def __init__(self, answers=(200,), location=None):
        self.answers = list(answers)
        self.location = location
        self.requests = []
        self.server = self._bind()
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks?token=receiver-side-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _bind(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length),
                    }
                )
                status = (
                    receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                )
                self.send_response(status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        for port in PORTS:
            try:
                return ThreadingHTTPServer(("127.0.0.1", port), Handler)
            except OSError:
                continue
        raise RuntimeError(f"No free port in {PORTS.start}-{PORTS.stop - 1} for the receiver")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
