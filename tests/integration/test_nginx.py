"""The responder behind nginx with the shipped site snippet, started by the shipped
spawn-fcgi script: recorded POSTs, replays, concurrent retries, a large attachment, a
chunked upload and the body size limits."""
import concurrent.futures
import hashlib
import json
import os
import pwd
import socket
import stat
import subprocess
import sys

import captures
import harness
import nginx_server
from test_cgi import SMALL_MESSAGE, raw_request

KEY = "nginx-test-key-" + os.urandom(8).hex()


def start_server(context, key=KEY, extra_env=None, processes=4):
    if not harness.is_root():
        raise harness.Skipped("needs root to start nginx and switch the responder to nobody")
    spool = context.make_spool()
    key_file = harness.write_key_file(context, key)
    return nginx_server.start(context, harness.responder_binary(), spool, key_file=key_file,
                              extra_env=extra_env, processes=processes)


def parsed_request(key, attachment, filename="data.bin"):
    """Returns (content_type, body) of a freshly signed parsed-format request with one attachment."""
    headers = [["From", "Ann Example <ann@example.com>"], ["To", "inbox@mg.example.com"],
               ["Subject", "Large attachment"]]
    fields = [("recipient", "inbox@mg.example.com"), ("sender", "ann@example.com"),
              ("from", "Ann Example <ann@example.com>"), ("subject", "Large attachment"),
              ("body-plain", "See the attachment.\r\n"), ("message-headers", json.dumps(headers)),
              ("attachment-count", "1"),
              ("attachment-1", harness.FilePart(filename, "application/octet-stream", attachment))]
    return harness.encode_multipart(fields + harness.signed_fields(key))


def check_captures(context, names):
    harness.require_shared()
    server = start_server(context, key=captures.KEY, extra_env={"MAILGUN_MAX_AGE_SECONDS": "0"})
    valid = [name for name in names if name in captures.VALID]
    for name in names:
        capture = captures.Capture(name)
        status, _, body = server.post(capture.content_type, capture.body)
        expected = 200 if name in valid else 403
        assert status == expected, f"{name}: status {status}, expected {expected}: {body!r}"
        captures.assert_tmp_empty(server.spool)

    # The same request again is a Mailgun retry: it gets 200 and is not stored twice.
    capture = captures.Capture(valid[0])
    status, _, body = server.post(capture.content_type, capture.body)
    assert status == 200, f"{valid[0]} again: status {status}: {body!r}"
    messages = harness.messages_in(server.spool)
    assert len(messages) == 1, messages
    captures.check_stored_capture(server.spool, messages[0], capture)
    captures.assert_tmp_empty(server.spool)


def test_nginx_raw_captures(context):
    check_captures(context, [name for name in captures.ALL if "-raw-" in name])


def test_nginx_parsed_captures(context):
    check_captures(context, [name for name in captures.ALL if "-parsed-" in name])


def test_nginx_concurrent_retries_stored_once(context):
    server = start_server(context)
    content_type, body = raw_request(KEY)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: server.post(content_type, body), range(8)))
    statuses = [status for status, _, _ in results]
    assert statuses == [200] * 8, f"statuses {statuses}: {[answer for _, _, answer in results]}"
    messages = harness.messages_in(server.spool)
    assert len(messages) == 1, messages
    assert captures.read_file(server.spool, messages[0], "message.eml") == SMALL_MESSAGE
    captures.check_message_files(server.spool, messages[0])
    log = server.responder_log()
    assert log.count('reason="stored"') == 1, log
    assert log.count('reason="already stored"') == 7, log
    captures.assert_tmp_empty(server.spool)


def test_nginx_large_attachment(context):
    server = start_server(context)
    attachment = os.urandom(20 * 1000 * 1000)
    content_type, body = parsed_request(KEY, attachment)
    status, _, answer = server.post(content_type, body, timeout_seconds=300)
    assert status == 200, f"status {status}: {answer!r}"
    messages = harness.messages_in(server.spool)
    assert len(messages) == 1, messages
    meta = captures.check_message_files(server.spool, messages[0])
    stored = captures.parts_with_role(meta, "attachment")
    assert [part["filename"] for part in stored] == ["data.bin"], meta["parts"]
    data = captures.read_file(server.spool, messages[0], stored[0]["file"])
    assert len(data) == len(attachment), f"{len(data)} bytes stored, {len(attachment)} sent"
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(attachment).hexdigest(), "attachment bytes differ"
    captures.assert_tmp_empty(server.spool)


def test_nginx_chunked_upload(context):
    server = start_server(context)
    content_type, body = parsed_request(KEY, os.urandom(300 * 1000))
    status, _, answer = server.post(content_type, body, chunked=True)
    assert status == 200, f"status {status}: {answer!r}"
    messages = harness.messages_in(server.spool)
    assert len(messages) == 1, messages
    captures.check_message_files(server.spool, messages[0])
    captures.assert_tmp_empty(server.spool)


def send_headers_only(port, content_length):
    """Sends a POST's headers announcing content_length bytes, no body; returns the status."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(f"POST /mailgun/inbound HTTP/1.1\r\nHost: localhost\r\n"
                           f"Content-Type: application/x-www-form-urlencoded\r\n"
                           f"Content-Length: {content_length}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while b"\r\n" not in response:
            piece = connection.recv(4096)
            if not piece:
                break
            response += piece
    return int(response.split(b" ", 2)[1])


def test_nginx_body_limits_answer_406(context):
    server = start_server(context, extra_env={"MAILGUN_MAX_REQUEST_BYTES": "100000"})
    # Above the responder's limit: the responder rejects the body.
    content_type, body = raw_request(KEY, message=SMALL_MESSAGE + b"x" * 200000)
    status, _, answer = server.post(content_type, body)
    assert status == 406, f"status {status}: {answer!r}"
    # Above client_max_body_size (64 MiB): nginx responds before it reads the body.
    status = send_headers_only(server.port, 64 * 1024 * 1024 + 1)
    assert status == 406, f"nginx responded {status} to a body above client_max_body_size"
    assert harness.messages_in(server.spool) == []
    captures.assert_tmp_empty(server.spool)


def test_nginx_socket_and_users(context):
    server = start_server(context)
    socket_stat = os.stat(server.socket_path)
    assert stat.S_ISSOCK(socket_stat.st_mode)
    assert socket_stat.st_uid == pwd.getpwnam(nginx_server.NGINX_WORKER_USER).pw_uid, socket_stat.st_uid
    assert stat.S_IMODE(socket_stat.st_mode) == 0o600, oct(socket_stat.st_mode)
    # Another local user (here the responder's own) cannot post to the responder directly.
    probe = ("import socket; s = socket.socket(socket.AF_UNIX)\n"
             "try:\n    s.connect(%r)\nexcept PermissionError:\n    raise SystemExit(3)\n" % server.socket_path)
    completed = subprocess.run(harness.as_responder_user([sys.executable, "-c", probe]), capture_output=True)
    assert completed.returncode == 3, f"{harness.RESPONDER_USER} could connect: {completed.stderr!r}"

    with open(os.path.join(server.folder, "spawn-fcgi.pid")) as file:
        pids = [int(line) for line in file.read().split()]
    assert len(pids) == 4, pids
    nobody = pwd.getpwnam(harness.RESPONDER_USER).pw_uid
    for pid in pids:
        with open(f"/proc/{pid}/status") as file:
            uid_line = next(line for line in file if line.startswith("Uid:"))
        assert all(int(uid) == nobody for uid in uid_line.split()[1:]), f"process {pid}: {uid_line.strip()}"
