"""What the tests' fake HTTP servers share (fake-splunk-hec.py, fake-elasticsearch.py):
their options, their one-line reports on stdout, a JSON-answering keep-alive handler that
reads a request body (gzip or not), and serving on loopback with the port printed first,
over TLS with `--tls CERT KEY` (and client certificates required, from the CA
`--client-ca CA`)."""
import gzip
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def option(name, default=None, kind=str):
    """The value after `name` on the command line, or `default`."""
    if name in sys.argv:
        return kind(sys.argv[sys.argv.index(name) + 1])
    return default


def say(line):
    """One report on stdout, and in the file `--log` names: a test polling a file sees it at
    once, where a pipe's reader on a loaded machine was seen to lag seconds behind."""
    print(line, flush=True)
    if LOG:
        with open(LOG, "a") as log:
            log.write(line + "\n")


LOG = option("--log")


class JSONHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    content_type = "application/json"
    extra_headers = {}

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in self.extra_headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        """The request's body, inflated when it came gzip-encoded."""
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip" and data:
            data = gzip.decompress(data)
        return data


def serve(handler):
    """Serves on 127.0.0.1 (`--port`, else a free port), printing the port first."""
    server = ThreadingHTTPServer(("127.0.0.1", option("--port", 0, int)), handler)
    server.daemon_threads = True
    if "--tls" in sys.argv:
        at = sys.argv.index("--tls")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[at + 1], sys.argv[at + 2])
        client_ca = option("--client-ca")
        if client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(client_ca)
        # A handshake that fails (a client that does not trust us, or has no certificate)
        # ends that connection only: accept() raises an OSError, which the server skips.
        server.socket = context.wrap_socket(server.socket, server_side=True)
    say(str(server.server_address[1]))
    server.serve_forever()
