"""The responder run once per request as plain CGI, as the unprivileged responder user:
the recorded Mailgun POSTs, and what it does with odd CONTENT_LENGTH values, methods and
keys."""
import os
import subprocess
import time

import captures
import harness

SMALL_MESSAGE = (b"From: Ann Example <ann@example.com>\r\n"
                 b"To: inbox@mg.example.com\r\n"
                 b"Subject: Small test\r\n"
                 b"Message-ID: <small-test@example.com>\r\n"
                 b"MIME-Version: 1.0\r\n"
                 b"Content-Type: text/plain; charset=utf-8\r\n"
                 b"\r\n"
                 b"A short message.\r\n")


def raw_request(key, message=SMALL_MESSAGE, **signing):
    """Returns (content_type, body) of a freshly signed raw (body-mime) request."""
    fields = [("recipient", "inbox@mg.example.com"), ("sender", "ann@example.com"),
              ("from", "Ann Example <ann@example.com>"), ("subject", "Small test"),
              ("body-mime", message)] + harness.signed_fields(key, **signing)
    return harness.encode_urlencoded(fields)


def run_capture(context, spool, name, key_file, extra_env=None, **options):
    capture = captures.Capture(name)
    env = captures.key_env(key_file)
    env.update(extra_env or {})
    return harness.run_cgi(harness.responder_binary(), spool, capture.body, capture.content_type,
                           extra_env=env, **options)


def test_raw_capture_stored(context):
    spool = context.make_spool()
    key_file = harness.write_key_file(context, captures.KEY)
    status, _, body, log = run_capture(context, spool, "multi_mail-raw-valid", key_file)
    assert status == 200, f"status {status}: {body!r}\n{log}"
    assert "status=200" in log, f"no summary log line with status=200:\n{log}"
    messages = harness.messages_in(spool)
    assert len(messages) == 1, messages
    captures.check_stored_capture(spool, messages[0], captures.Capture("multi_mail-raw-valid"))
    captures.assert_tmp_empty(spool)


def test_parsed_capture_stored(context):
    spool = context.make_spool()
    key_file = harness.write_key_file(context, captures.KEY)
    status, _, body, log = run_capture(context, spool, "multi_mail-parsed-valid", key_file)
    assert status == 200, f"status {status}: {body!r}\n{log}"
    messages = harness.messages_in(spool)
    assert len(messages) == 1, messages
    captures.check_stored_capture(spool, messages[0], captures.Capture("multi_mail-parsed-valid"))
    captures.assert_tmp_empty(spool)


def test_bad_signature_captures_rejected(context):
    spool = context.make_spool()
    key_file = harness.write_key_file(context, captures.KEY)
    for name in captures.REJECTED:
        status, _, body, log = run_capture(context, spool, name, key_file)
        assert status == 403, f"{name}: status {status}: {body!r}\n{log}"
        assert harness.messages_in(spool) == [], f"{name} stored a message"
        captures.assert_tmp_empty(spool)


def test_stale_timestamp_rejected(context):
    spool = context.make_spool()
    key_file = harness.write_key_file(context, captures.KEY)
    # The default freshness window (12 hours) rejects the 2013 timestamp.
    status, _, body, log = run_capture(context, spool, "multi_mail-raw-valid", key_file,
                                       extra_env={"MAILGUN_MAX_AGE_SECONDS": "43200"})
    assert status == 403, f"status {status}: {body!r}\n{log}"
    assert harness.messages_in(spool) == []
    captures.assert_tmp_empty(spool)


def test_same_capture_twice_stored_once(context):
    spool = context.make_spool()
    key_file = harness.write_key_file(context, captures.KEY)
    first = run_capture(context, spool, "multi_mail-raw-valid", key_file)
    second = run_capture(context, spool, "multi_mail-raw-valid", key_file)
    assert first[0] == 200, f"first status {first[0]}: {first[2]!r}\n{first[3]}"
    assert second[0] == 200, f"second status {second[0]}: {second[2]!r}\n{second[3]}"
    assert len(harness.messages_in(spool)) == 1, harness.messages_in(spool)
    captures.assert_tmp_empty(spool)


def test_get_answers_405(context):
    spool = context.make_spool()
    key_file = harness.write_key_file(context, captures.KEY)
    status, headers, body, log = harness.run_cgi(harness.responder_binary(), spool, b"", "", method="GET",
                                                 extra_env={"MAILGUN_SIGNING_KEY_FILE": key_file})
    assert status == 405, f"status {status}: {body!r}\n{log}"
    assert headers.get("allow") == "POST", headers
    assert harness.messages_in(spool) == []


def test_content_length_not_a_number(context):
    spool = context.make_spool()
    key_file = harness.write_key_file(context, captures.KEY)
    content_type, body = raw_request(captures.KEY)
    status, _, answer, log = harness.run_cgi(harness.responder_binary(), spool, body, content_type,
                                             content_length="12abc",
                                             extra_env={"MAILGUN_SIGNING_KEY_FILE": key_file})
    assert status == 406, f"status {status}: {answer!r}\n{log}"
    assert harness.messages_in(spool) == []
    captures.assert_tmp_empty(spool)


def run_cgi_without_body(spool, key_file, content_length, extra_env=None, timeout_seconds=10):
    """Runs the responder with a CONTENT_LENGTH but an open standard input that never
    delivers a byte: it can only answer in time if it does not read the body."""
    env = {"PATH": "/usr/bin:/bin", "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "POST",
           "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(content_length),
           "MAILGUN_SPOOL_DIR": spool, "MAILGUN_SIGNING_KEY_FILE": key_file}
    env.update(extra_env or {})
    process = subprocess.Popen(harness.as_responder_user([harness.responder_binary()]), env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        output, errors = wait_without_closing(process, timeout_seconds)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdin.close()
    return harness.parse_cgi_output(output) + (errors.decode("utf-8", "replace"),)


def wait_without_closing(process, timeout_seconds):
    deadline = time.monotonic() + timeout_seconds
    while process.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"the responder still waits for the body after {timeout_seconds} s")
        time.sleep(0.05)
    return process.stdout.read(), process.stderr.read()


def test_content_length_over_limit_not_read(context):
    spool = context.make_spool()
    key_file = harness.write_key_file(context, captures.KEY)
    status, _, body, log = run_cgi_without_body(spool, key_file, 100000,
                                                extra_env={"MAILGUN_MAX_REQUEST_BYTES": "1000"})
    assert status == 406, f"status {status}: {body!r}\n{log}"
    # One byte above the default maximum of 64 MiB.
    status, _, body, log = run_cgi_without_body(spool, key_file, 64 * 1024 * 1024 + 1)
    assert status == 406, f"status {status}: {body!r}\n{log}"
    assert harness.messages_in(spool) == []
    captures.assert_tmp_empty(spool)


def test_missing_content_length_reads_to_eof(context):
    spool = context.make_spool()
    key_file = harness.write_key_file(context, captures.KEY)
    content_type, body = raw_request(captures.KEY)
    status, _, answer, log = harness.run_cgi(harness.responder_binary(), spool, body, content_type,
                                             content_length="",
                                             extra_env={"MAILGUN_SIGNING_KEY_FILE": key_file})
    assert status == 200, f"status {status}: {answer!r}\n{log}"
    messages = harness.messages_in(spool)
    assert len(messages) == 1, messages
    assert captures.read_file(spool, messages[0], "message.eml") == SMALL_MESSAGE
    captures.assert_tmp_empty(spool)


def test_truncated_body_not_published(context):
    spool = context.make_spool()
    key_file = harness.write_key_file(context, captures.KEY)
    env = {"MAILGUN_SIGNING_KEY_FILE": key_file}
    content_type, body = raw_request(captures.KEY)
    status, _, answer, log = harness.run_cgi(harness.responder_binary(), spool, body, content_type,
                                             content_length=str(len(body) + 100), extra_env=env)
    assert status == 500, f"status {status}: {answer!r}\n{log}"
    assert harness.messages_in(spool) == []
    captures.assert_tmp_empty(spool)
    # The failed attempt must not have recorded the token, or Mailgun's retry would be
    # answered "already stored" with nothing stored.
    status, _, answer, log = harness.run_cgi(harness.responder_binary(), spool, body, content_type, extra_env=env)
    assert status == 200, f"retry status {status}: {answer!r}\n{log}"
    assert len(harness.messages_in(spool)) == 1


def test_missing_key_answers_500(context):
    spool = context.make_spool()
    content_type, body = raw_request(captures.KEY)
    status, _, answer, log = harness.run_cgi(harness.responder_binary(), spool, body, content_type)
    assert status == 500, f"status {status}: {answer!r}\n{log}"
    assert "key" in log.lower(), f"the log does not say that the signing key is missing:\n{log}"
    assert harness.messages_in(spool) == []


def test_key_never_logged_or_answered(context):
    key = "mgspool-canary-" + os.urandom(16).hex()
    spool = context.make_spool()
    key_file = harness.write_key_file(context, key)
    binary = harness.responder_binary()
    runs = []
    for env in ({"MAILGUN_SIGNING_KEY_FILE": key_file}, {"MAILGUN_SIGNING_KEY": key}):
        content_type, body = raw_request(key)
        runs.append(("stored", harness.run_cgi(binary, spool, body, content_type, extra_env=env)))
        runs.append(("replayed", harness.run_cgi(binary, spool, body, content_type, extra_env=env)))
        content_type, body = raw_request("some-other-key")
        runs.append(("wrong key", harness.run_cgi(binary, spool, body, content_type, extra_env=env)))
        runs.append(("GET", harness.run_cgi(binary, spool, b"", "", method="GET", extra_env=env)))
    expected = {"stored": 200, "replayed": 200, "wrong key": 403, "GET": 405}
    for label, (status, headers, answer, log) in runs:
        assert status == expected[label], f"{label}: status {status}: {answer!r}\n{log}"
        assert key not in log, f"{label}: the key appears in the log"
        assert key.encode() not in answer, f"{label}: the key appears in the response body"
        assert all(key not in value for value in headers.values()), f"{label}: the key appears in a header"

    for folder, _, files in os.walk(spool):
        for name in files:
            with open(os.path.join(folder, name), "rb") as file:
                assert key.encode() not in file.read(), f"the key appears in {os.path.join(folder, name)}"


def test_refuses_to_run_as_root(context):
    if not harness.is_root():
        raise harness.Skipped("needs root to start the responder as root")
    spool = context.make_spool()
    key_file = harness.write_key_file(context, captures.KEY)
    content_type, body = raw_request(captures.KEY)
    env = {"PATH": "/usr/bin:/bin", "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "POST",
           "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)),
           "MAILGUN_SPOOL_DIR": spool, "MAILGUN_SIGNING_KEY_FILE": key_file}
    completed = subprocess.run([harness.responder_binary()], input=body, env=env, capture_output=True, timeout=60)
    status, _, answer = harness.parse_cgi_output(completed.stdout)
    log = completed.stderr.decode("utf-8", "replace")
    assert status == 500, f"status {status}: {answer!r}\n{log}"
    assert "root" in log, f"the log does not say why:\n{log}"
    assert completed.returncode == 1, completed.returncode
    assert harness.messages_in(spool) == []


def test_form_cut_short_without_length(context):
    # A chunked upload that breaks off reaches a CGI program as a plain end of input, with no
    # CONTENT_LENGTH to compare against. The form's missing closing delimiter gives it away:
    # 500, nothing stored, and the whole retry is stored once.
    spool = context.make_spool()
    key_file = harness.write_key_file(context, "cut-short-key")
    attachment = harness.FilePart("report.pdf", "application/pdf", os.urandom(200 * 1024))
    content_type, body = harness.encode_multipart(harness.signed_fields("cut-short-key")
                                                  + [("subject", "Cut short"), ("attachment-1", attachment)])
    env = {"MAILGUN_SIGNING_KEY_FILE": key_file}

    status, _, _, log = harness.run_cgi(harness.responder_binary(), spool, body[:len(body) // 2], content_type,
                                        content_length="", extra_env=env)
    assert status == 500, log
    assert "closing delimiter" in log
    assert harness.messages_in(spool) == []
    assert harness.messages_in(spool, "tmp") == []

    status, _, _, log = harness.run_cgi(harness.responder_binary(), spool, body, content_type, content_length="",
                                        extra_env=env)
    assert status == 200, log
    messages = harness.messages_in(spool)
    assert len(messages) == 1
    parts = harness.read_meta(spool, messages[0])["parts"]
    assert [part["size"] for part in parts if part["role"] == "attachment"] == [200 * 1024]
