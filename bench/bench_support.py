"""Shared parts of the benchmarks: a scratch folder that the unprivileged responder can
reach, the responder copied into it, and Mailgun-style request bodies written to a file
piece by piece, so that the benchmark itself never keeps a large body in memory.

The three body shapes are those Mailgun sends to a route's URL:
  raw-urlencoded  body-mime in an application/x-www-form-urlencoded form
  raw-multipart   body-mime as a field of a multipart/form-data form
  parsed          decoded fields and the attachment as the file part attachment-1
"""
import base64
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import harness  # noqa: E402

SHAPES = ("raw-urlencoded", "raw-multipart", "parsed")
MIB = 1024 * 1024

# base64 turns 57 bytes into one 76-character line, so a piece of a multiple of 57 bytes
# encodes to whole lines.
_BASE64_PIECE_BYTES = 57 * 16 * 1024
_RANDOM_PIECE_BYTES = 1 * MIB

_SENDER = "bench sender <sender@example.com>"
_RECIPIENT = "inbox@example.org"
_TEXT_BODY = ("Hello,\r\n\r\nthe report is attached.\r\n\r\n-- \r\nbench sender\r\n" * 20).encode()
_HTML_BODY = (b"<html><body><p>Hello,</p><p>the report is <b>attached</b>.</p>"
              + b"<p>" + b"lorem ipsum dolor sit amet " * 100 + b"</p></body></html>\r\n")


class BenchFolder(harness.TestContext):
    """A temporary folder under /tmp that user nobody can traverse, with the cleanups to
    run at the end: a test context of the integration tests, outside their run folder."""

    def __init__(self, prefix):
        super().__init__(prefix.rstrip("-"), parent=tempfile.gettempdir())

    def close(self, keep=False):
        if keep:
            self._keep = True
            print(f"kept {self.dir}")
        super().close()

    def copy_responder(self):
        """Copies build/mailgun-spool to a folder that user nobody can execute from."""
        if not os.path.exists(harness.BUILT_BINARY):
            raise SystemExit(f"{harness.BUILT_BINARY} is missing: run make first")
        folder = self.path("bin")
        os.mkdir(folder, 0o755)
        copy = os.path.join(folder, "mailgun-spool")
        shutil.copy2(harness.BUILT_BINARY, copy)
        os.chmod(copy, 0o755)
        return copy

    def make_spool(self, name="spool"):
        spool = self.path(name)
        os.mkdir(spool, 0o750)
        harness.chown_to_responder(spool)
        return spool

    def write_key_file(self, key):
        path = self.path("signing-key")
        with open(path, "w") as file:
            file.write(key + "\n")
        os.chmod(path, 0o400)
        harness.chown_to_responder(path)
        return path


def raise_system_exit_on_sigterm():
    """Turns SIGTERM into SystemExit, so that finally blocks stop the servers."""
    import signal

    def handle(signal_number, frame):
        raise SystemExit(128 + signal_number)

    signal.signal(signal.SIGTERM, handle)


def random_pieces(total_bytes, piece_bytes=_RANDOM_PIECE_BYTES):
    """Yields total_bytes of random bytes, which no layer can compress, in pieces."""
    left = total_bytes
    while left > 0:
        piece = os.urandom(min(piece_bytes, left))
        left -= len(piece)
        yield piece


def base64_lines(pieces):
    """Yields the base64 encoding of the pieces in 76-character CRLF lines."""
    pending = b""
    for piece in pieces:
        pending += piece
        whole = len(pending) - len(pending) % _BASE64_PIECE_BYTES
        if whole:
            yield base64.encodebytes(pending[:whole]).replace(b"\n", b"\r\n")
            pending = pending[whole:]
    if pending:
        yield base64.encodebytes(pending).replace(b"\n", b"\r\n")


def message_pieces(attachment_bytes, subject):
    """Yields a raw MIME message: a text and HTML alternative and one base64 attachment of
    attachment_bytes random bytes."""
    boundary = "mixed-" + os.urandom(8).hex()
    alternative = "alternative-" + os.urandom(8).hex()
    yield (f"From: {_SENDER}\r\nTo: {_RECIPIENT}\r\nSubject: {subject}\r\n"
           f"Date: Fri, 04 Dec 2026 20:00:00 +0000\r\nMessage-ID: <{os.urandom(8).hex()}@example.com>\r\n"
           f"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
           f"--{boundary}\r\nContent-Type: multipart/alternative; boundary=\"{alternative}\"\r\n\r\n"
           f"--{alternative}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n").encode()
    yield _TEXT_BODY
    yield f"\r\n--{alternative}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n".encode()
    yield _HTML_BODY
    yield (f"\r\n--{alternative}--\r\n\r\n--{boundary}\r\n"
           f"Content-Type: application/octet-stream; name=\"report.bin\"\r\n"
           f"Content-Disposition: attachment; filename=\"report.bin\"\r\n"
           f"Content-Transfer-Encoding: base64\r\n\r\n").encode()
    yield from base64_lines(random_pieces(attachment_bytes))
    yield f"\r\n--{boundary}--\r\n".encode()


def envelope_fields(subject):
    return [("recipient", _RECIPIENT), ("sender", "sender@example.com"), ("from", _SENDER),
            ("subject", subject)]


def raw_urlencoded_pieces(attachment_bytes, signed, subject):
    fields = envelope_fields(subject)
    yield urllib.parse.urlencode(fields).encode() + b"&body-mime="
    for piece in message_pieces(attachment_bytes, subject):
        # Each byte is escaped on its own, so escaping piece by piece equals escaping the whole.
        yield urllib.parse.quote_plus(piece).encode()
    yield b"&" + urllib.parse.urlencode(signed).encode()


def multipart_field_header(boundary, name, file_part=None):
    if file_part is None:
        return f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
    filename, content_type = file_part
    return (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode()


def multipart_fields(boundary, fields):
    for name, value in fields:
        yield multipart_field_header(boundary, name) + value.encode() + b"\r\n"


def raw_multipart_pieces(attachment_bytes, signed, subject, boundary):
    yield from multipart_fields(boundary, envelope_fields(subject))
    yield multipart_field_header(boundary, "body-mime")
    yield from message_pieces(attachment_bytes, subject)
    yield b"\r\n"
    yield from multipart_fields(boundary, signed)
    yield f"--{boundary}--\r\n".encode()


def parsed_pieces(attachment_bytes, signed, subject, boundary):
    headers = [["From", _SENDER], ["To", _RECIPIENT], ["Subject", subject], ["MIME-Version", "1.0"]]
    text = _TEXT_BODY.decode()
    fields = envelope_fields(subject) + [
        ("body-plain", text), ("stripped-text", text.split("-- ")[0]), ("body-html", _HTML_BODY.decode()),
        ("message-headers", json.dumps(headers)), ("attachment-count", "1")]
    yield from multipart_fields(boundary, fields)
    yield multipart_field_header(boundary, "attachment-1", ("report.bin", "application/octet-stream"))
    yield from random_pieces(attachment_bytes)
    yield b"\r\n"
    yield from multipart_fields(boundary, signed)
    yield f"--{boundary}--\r\n".encode()


def request_pieces(shape, attachment_bytes, key, token=None):
    """Returns (content_type, pieces) of a signed request of the given shape, where pieces
    yields the body; the token defaults to a random one."""
    subject = f"{shape} with {attachment_bytes} bytes attached"
    signed = harness.signed_fields(key, timestamp=int(time.time()), token=token)
    boundary = "----mailgun-spool-bench-" + os.urandom(12).hex()
    if shape == "raw-urlencoded":
        return "application/x-www-form-urlencoded", raw_urlencoded_pieces(attachment_bytes, signed, subject)
    if shape == "raw-multipart":
        return (f"multipart/form-data; boundary={boundary}",
                raw_multipart_pieces(attachment_bytes, signed, subject, boundary))
    if shape == "parsed":
        return f"multipart/form-data; boundary={boundary}", parsed_pieces(attachment_bytes, signed, subject, boundary)
    raise ValueError(f"unknown request shape {shape!r}; expected one of {', '.join(SHAPES)}")


def write_request(path, shape, attachment_bytes, key):
    """Writes a signed request body to path piece by piece; returns (content_type, size)."""
    content_type, pieces = request_pieces(shape, attachment_bytes, key)
    size = 0
    with open(path, "wb") as file:
        for piece in pieces:
            file.write(piece)
            size += len(piece)
    return content_type, size


def request_bytes(shape, attachment_bytes, key):
    """Returns (content_type, body) of a signed request built in memory, so use it only for small ones."""
    content_type, pieces = request_pieces(shape, attachment_bytes, key)
    return content_type, b"".join(pieces)


def cgi_environment(spool, key_file, content_type, content_length, extra=None):
    environment = {
        "PATH": "/usr/bin:/bin",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(content_length),
        "SCRIPT_NAME": "/mailgun/inbound",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "MAILGUN_SPOOL_DIR": spool,
        "MAILGUN_SIGNING_KEY_FILE": key_file,
    }
    environment.update(extra or {})
    return environment
