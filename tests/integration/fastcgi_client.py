"""A minimal FastCGI client (the web server's side of the protocol) for tests that talk to
the responder directly over its socket, without a web server in between.

Records follow the FastCGI 1.0 specification: an 8-byte header (version 1, type, request id,
content length, padding length), then the content and padding.
"""
import socket
import struct

FCGI_VERSION = 1
FCGI_BEGIN_REQUEST = 1
FCGI_END_REQUEST = 3
FCGI_PARAMS = 4
FCGI_STDIN = 5
FCGI_STDOUT = 6
FCGI_STDERR = 7
FCGI_RESPONDER = 1
REQUEST_ID = 1
MAX_CONTENT_BYTES = 65535


def _record(record_type, content=b""):
    padding = (8 - len(content) % 8) % 8
    header = struct.pack("!BBHHBx", FCGI_VERSION, record_type, REQUEST_ID, len(content), padding)
    return header + content + b"\0" * padding


def _length(value):
    if len(value) < 128:
        return struct.pack("!B", len(value))
    return struct.pack("!I", len(value) | 0x80000000)


def encode_params(params):
    data = b""
    for name, value in params.items():
        name, value = name.encode(), value.encode()
        data += _length(name) + _length(value) + name + value
    return data


class FastCgiRequest:
    """One request on its own connection: begin(), send_body() in pieces, finish()."""

    def __init__(self, address):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.settimeout(60)
        self.socket.connect(address)

    def begin(self, params):
        self.socket.sendall(_record(FCGI_BEGIN_REQUEST, struct.pack("!HB5x", FCGI_RESPONDER, 0)))
        encoded = encode_params(params)
        for offset in range(0, len(encoded), MAX_CONTENT_BYTES):
            self.socket.sendall(_record(FCGI_PARAMS, encoded[offset:offset + MAX_CONTENT_BYTES]))
        self.socket.sendall(_record(FCGI_PARAMS))

    def send_body(self, data):
        for offset in range(0, len(data), MAX_CONTENT_BYTES):
            self.socket.sendall(_record(FCGI_STDIN, data[offset:offset + MAX_CONTENT_BYTES]))

    def finish(self):
        """Ends the body and reads the response; returns (stdout bytes, stderr bytes)."""
        self.socket.sendall(_record(FCGI_STDIN))
        stdout, stderr = b"", b""
        buffer = b""
        while True:
            chunk = self.socket.recv(65536)
            if not chunk:
                break
            buffer += chunk
            while len(buffer) >= 8:
                _, record_type, _, length, padding = struct.unpack("!BBHHBx", buffer[:8])
                if len(buffer) < 8 + length + padding:
                    break
                content = buffer[8:8 + length]
                buffer = buffer[8 + length + padding:]
                if record_type == FCGI_STDOUT:
                    stdout += content
                elif record_type == FCGI_STDERR:
                    stderr += content
                elif record_type == FCGI_END_REQUEST:
                    self.socket.close()
                    return stdout, stderr
        self.socket.close()
        return stdout, stderr


def post(address, params, body):
    """Sends one whole request; returns the responder's stdout (CGI-style headers and body)."""
    request = FastCgiRequest(address)
    request.begin(params)
    request.send_body(body)
    stdout, _ = request.finish()
    return stdout
