"""How the one binary decides what it is: FastCGI with a socket on standard input, plain CGI
when a web server sets REQUEST_METHOD, and neither when started by hand."""
import os
import socket
import subprocess
import time
import urllib.parse

import fastcgi_client
import harness

KEY = "modes-test-key"


def signed_body(token):
    timestamp = str(int(time.time()))
    fields = [("subject", "Modes"), ("body-plain", "Hello\n"), ("timestamp", timestamp), ("token", token),
              ("signature", harness.sign(KEY, timestamp, token))]
    return urllib.parse.urlencode(fields).encode()


def test_started_by_hand_prints_usage(context):
    completed = subprocess.run(harness.as_responder_user([harness.responder_binary()]), stdin=subprocess.DEVNULL,
                               capture_output=True, env={"PATH": "/usr/bin:/bin"}, timeout=30)
    assert completed.returncode == 2
    assert b"Usage: mailgun-spool" in completed.stderr
    assert completed.stdout == b""


def test_help_and_version(context):
    binary = harness.responder_binary()
    help_run = subprocess.run([binary, "--help"], capture_output=True, timeout=30, env={})
    assert help_run.returncode == 0
    assert b"--spool DIR" in help_run.stdout
    version_run = subprocess.run([binary, "--version"], capture_output=True, timeout=30, env={})
    assert version_run.returncode == 0
    assert version_run.stdout.startswith(b"mailgun-spool ")


def test_cgi_ignores_command_line(context):
    spool = context.make_spool()
    other_spool = context.make_spool("other")
    body = signed_body("cgi-arguments")
    env = {"PATH": "/usr/bin:/bin", "REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/x-www-form-urlencoded",
           "CONTENT_LENGTH": str(len(body)), "MAILGUN_SPOOL_DIR": spool, "MAILGUN_SIGNING_KEY": KEY,
           "QUERY_STRING": "--spool+" + other_spool}
    # Some servers pass a query string without '=' as arguments (the CGI/1.1 "search" form).
    command = harness.as_responder_user([harness.responder_binary(), "--spool", other_spool, "--insecure"])
    completed = subprocess.run(command, input=body, capture_output=True, env=env, timeout=30)
    status, _, _ = harness.parse_cgi_output(completed.stdout)
    assert status == 200, completed.stderr
    assert len(harness.messages_in(spool)) == 1
    assert harness.messages_in(other_spool) == []


def test_fastcgi_takes_flags(context):
    spool = context.make_spool()
    key_file = context.path("key")
    with open(key_file, "w") as file:
        file.write(KEY + "\n")
    os.chmod(key_file, 0o644)
    socket_path = context.path("fcgi.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(4)
    command = harness.as_responder_user([harness.responder_binary(), "--spool", spool, "--key-file", key_file,
                                         "--max-age-seconds", "600"])
    process = context.start(command, stdin=listener.fileno(), env={"PATH": "/usr/bin:/bin"},
                            stderr=subprocess.DEVNULL)
    listener.close()

    body = signed_body("fastcgi-flags")
    params = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/x-www-form-urlencoded",
              "CONTENT_LENGTH": str(len(body)), "MAILGUN_SPOOL_DIR": context.path("not-a-spool")}
    # A request parameter never configures the responder: the spool from the flag is used.
    status, _, _ = harness.parse_cgi_output(fastcgi_client.post(socket_path, params, body))
    assert status == 200
    assert len(harness.messages_in(spool)) == 1
    assert not os.path.exists(context.path("not-a-spool"))
    assert process.poll() is None


def test_fastcgi_recovers_after_fixes(context):
    # Started with an unreadable key and a spool it cannot write: every request gets a 500,
    # which Mailgun retries. Fixing both takes effect without a restart.
    spool = context.path("spool")
    os.mkdir(spool, 0o755)
    key_file = context.path("key")
    with open(key_file, "w") as file:
        file.write(KEY)
    os.chmod(key_file, 0o600)
    log_file = context.path("responder.log")
    open(log_file, "w").close()
    harness.chown_to_responder(log_file)
    socket_path = context.path("fcgi.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(4)
    command = harness.as_responder_user([harness.responder_binary(), "--spool", spool, "--key-file", key_file,
                                         "--log", log_file])
    context.start(command, stdin=listener.fileno(), env={"PATH": "/usr/bin:/bin"})
    listener.close()

    def post(token):
        body = signed_body(token)
        params = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/x-www-form-urlencoded",
                  "CONTENT_LENGTH": str(len(body))}
        status, _, answer = harness.parse_cgi_output(fastcgi_client.post(socket_path, params, body))
        return status, answer

    if harness.is_root():
        assert post("before-key-fix") == (500, b"signing key unavailable\n")
        os.chmod(key_file, 0o644)
        status, answer = post("before-spool-fix")
        assert status == 500, answer
        harness.chown_to_responder(spool)
    assert post("after-fixes")[0] == 200
    assert len(harness.messages_in(spool)) == 1
    with open(log_file) as file:
        log = file.read()
    assert "cannot open the spool" in log or not harness.is_root(), log
