"""The FastCGI loop's lifecycle: SIGTERM during a request, SIGTERM while idle, and a client
that goes away mid-body. The responder runs as the unprivileged user with a listening unix
socket on standard input, the way spawn-fcgi and systemd start it."""
import os
import signal
import socket
import time
import urllib.parse

import fastcgi_client
import harness

KEY = "signals-test-key"


def start_responder(context, spool):
    socket_path = context.path("fcgi.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(16)
    key_file = context.path("key")
    with open(key_file, "w") as file:
        file.write(KEY)
    os.chmod(key_file, 0o644)
    env = {"PATH": "/usr/bin:/bin", "MAILGUN_SPOOL_DIR": spool, "MAILGUN_SIGNING_KEY_FILE": key_file,
           "MAILGUN_SPOOL_LOG": context.path("responder.log")}
    open(context.path("responder.log"), "w").close()
    harness.chown_to_responder(context.path("responder.log"))
    process = context.start(harness.as_responder_user([harness.responder_binary()]), stdin=listener.fileno(),
                            env=env)
    listener.close()
    return process, socket_path


def signed_body(token, subject="Signals"):
    timestamp = str(int(time.time()))
    fields = [("recipient", "inbox@mg.example.com"), ("sender", "alice@example.net"), ("subject", subject),
              ("body-plain", "Hello\n" * 2000), ("timestamp", timestamp), ("token", token),
              ("signature", harness.sign(KEY, timestamp, token))]
    return urllib.parse.urlencode(fields).encode()


def params_for(body):
    return {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(body)), "SCRIPT_NAME": "/mailgun/inbound", "SERVER_PROTOCOL": "HTTP/1.1"}


def status_of(stdout):
    status, _, _ = harness.parse_cgi_output(stdout)
    return status


def test_sigterm_finishes_request_in_progress(context):
    spool = context.make_spool()
    process, socket_path = start_responder(context, spool)
    body = signed_body("sigterm-token")
    half = len(body) // 2

    request = fastcgi_client.FastCgiRequest(socket_path)
    request.begin(params_for(body))
    request.send_body(body[:half])
    time.sleep(0.5)  # lets the responder block in its body read before the signal arrives
    os.kill(process.pid, signal.SIGTERM)
    time.sleep(0.2)
    request.send_body(body[half:])
    stdout, _ = request.finish()

    assert status_of(stdout) == 200, stdout
    assert process.wait(timeout=10) == 0
    assert len(harness.messages_in(spool)) == 1
    assert harness.messages_in(spool, "tmp") == []


def test_sigterm_while_idle_exits(context):
    spool = context.make_spool()
    process, socket_path = start_responder(context, spool)
    body = signed_body("idle-token")
    assert status_of(fastcgi_client.post(socket_path, params_for(body), body)) == 200

    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_client_gone_mid_body_stores_nothing(context):
    spool = context.make_spool()
    process, socket_path = start_responder(context, spool)
    body = signed_body("gone-token")

    request = fastcgi_client.FastCgiRequest(socket_path)
    request.begin(params_for(body))
    request.send_body(body[:len(body) // 3])
    request.socket.close()

    # The responder must survive and serve the next request; the abandoned one left nothing.
    retry = fastcgi_client.post(socket_path, params_for(body), body)
    assert status_of(retry) == 200
    assert len(harness.messages_in(spool)) == 1
    assert harness.messages_in(spool, "tmp") == []
    with open(context.path("responder.log")) as file:
        log = file.read()
    assert "status=500" in log, log
    assert "status=200" in log
    assert process.poll() is None
