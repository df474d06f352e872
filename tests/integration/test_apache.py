"""The responder behind Apache 2.4 with each shipped snippet: mod_fcgid, mod_proxy_fcgi (the
responder under spawn-fcgi on a unix socket) and mod_cgid.

Each test sends the recorded Mailgun requests when the shared samples are there, a signed
request of its own, a 20 MB attachment and a chunked upload, and checks the status and what
reached the spool.
"""
import grp
import hashlib
import os
import pwd
import subprocess

import apache_server
import captures
import harness

KEY = "foo"
ATTACHMENT_BYTES = 20 * 1024 * 1024


# Requests of the test's own, also used by the systemd and install tests.

def signed_message_form(key, subject, attachment=None):
    """Returns (content_type, body) of a parsed-format Mailgun POST with a fresh timestamp."""
    fields = [
        ("recipient", "inbox@example.org"),
        ("sender", "sender@example.com"),
        ("from", "Sender <sender@example.com>"),
        ("subject", subject),
        ("body-plain", f"Body of {subject}\r\n"),
    ]
    if attachment is not None:
        fields.append(("attachment-count", "1"))
        fields.append(("attachment-1", harness.FilePart("random.bin", "application/octet-stream", attachment)))
    fields += harness.signed_fields(key)
    return harness.encode_multipart(fields)


def stored_part_with_size(spool, message_id, size):
    """Returns the meta.json parts entry of the file of the given size in a stored message."""
    meta = harness.read_meta(spool, message_id)
    matches = [part for part in meta["parts"] if part["size"] == size]
    assert len(matches) == 1, f"message {message_id}: expected one part of {size} bytes, meta: {meta['parts']}"
    return matches[0]


def new_message_ids(spool, before):
    return [message_id for message_id in harness.messages_in(spool) if message_id not in before]


def send_and_expect(post, spool, content_type, body, expected_status, describe, logs, path="/mailgun/inbound",
                    chunked=False):
    """Posts one request; asserts the status and that a 200 stored exactly one new message,
    showing logs() on failure. Returns the new message IDs."""
    before = harness.messages_in(spool)
    status, _, answer = post(content_type, body, path=path, chunked=chunked)
    assert status == expected_status, (f"{describe}: expected {expected_status}, got {status} {answer!r}\n"
                                       f"{logs()}")
    created = new_message_ids(spool, before)
    expected_count = 1 if expected_status == 200 else 0
    assert len(created) == expected_count, f"{describe}: {len(created)} new messages, expected {expected_count}"
    return created


def check_captures(post, spool, logs):
    """Sends every recorded request: the valid ones get 200, the others 403. The valid raw
    and parsed captures carry the same token, so together they store one message."""
    before = harness.messages_in(spool)
    for name in captures.ALL:
        content_type, body = harness.read_capture(os.path.join(harness.SAMPLES, name + ".http"))
        path = "/mailgun/inbound/mime" if "-raw-" in name else "/mailgun/inbound"
        expected_status = 200 if name in captures.VALID else 403
        status, _, answer = post(content_type, body, path=path)
        assert status == expected_status, f"{name}: expected {expected_status}, got {status} {answer!r}\n{logs()}"

    tokens = {captures.Capture(name).value("token") for name in captures.VALID}
    created = new_message_ids(spool, before)
    assert len(created) == len(tokens), f"captures stored {len(created)} messages, expected {len(tokens)}"


def check_standard_requests(post, spool, key, logs):
    """Sends the recorded requests (when the shared samples are there), one signed request of
    our own, the same sent chunked, and a 20 MB attachment."""
    if harness.shared_available():
        check_captures(post, spool, logs)

    content_type, body = signed_message_form(key, "plain request")
    send_and_expect(post, spool, content_type, body, 200, "signed request", logs)

    content_type, body = signed_message_form(key, "chunked request")
    send_and_expect(post, spool, content_type, body, 200, "chunked upload", logs, chunked=True)

    attachment = os.urandom(ATTACHMENT_BYTES)
    content_type, body = signed_message_form(key, "large attachment", attachment)
    created = send_and_expect(post, spool, content_type, body, 200, "20 MB attachment", logs)
    part = stored_part_with_size(spool, created[0], ATTACHMENT_BYTES)
    expected_sha256 = hashlib.sha256(attachment).hexdigest()
    assert part["sha256"] == expected_sha256, f"meta.json sha256 {part['sha256']} != {expected_sha256}"
    stored = os.path.join(spool, "new", created[0], part["file"])
    assert harness.file_sha256(stored) == expected_sha256, f"{stored} differs from the attachment sent"


def web_user_spool(context):
    """Creates a spool and key file for a responder that runs as Apache's user, arranged as
    the mod_fcgid and mod_cgid snippets describe."""
    web_uid = pwd.getpwnam(apache_server.WEB_USER).pw_uid
    web_gid = grp.getgrnam(apache_server.WEB_GROUP).gr_gid
    spool = context.path("spool")
    os.mkdir(spool)
    os.chown(spool, web_uid, web_gid)
    os.chmod(spool, 0o2750)
    key_file = context.path("signing-key")
    with open(key_file, "w") as file:
        file.write(KEY + "\n")
    os.chown(key_file, 0, web_gid)
    os.chmod(key_file, 0o640)
    return spool, key_file


def test_apache_fcgid_snippet(context):
    snippet = "mailgun-spool-fcgid.conf"
    apache_server.require_apache(snippet)
    binary = harness.responder_binary()
    spool, key_file = web_user_spool(context)
    body = apache_server.snippet_text(snippet, os.path.dirname(binary), spool, key_file=key_file)
    server = apache_server.start(context, snippet, body,
                                 extra_directives="FcgidInitialEnv MAILGUN_MAX_AGE_SECONDS 0\n")
    check_standard_requests(server.post, spool, KEY, server.error_log)

    status, headers, _ = harness.http_request(server.port, "GET", "/mailgun/inbound")
    assert status == 405, f"GET: expected 405, got {status}"
    assert headers.get("allow") == "POST", f"GET: Allow header is {headers.get('allow')!r}"


def test_apache_fcgid_oversized_body(context):
    # A body above the responder's maximum but below the snippet's Apache limits must reach
    # the responder and get its 406, which Mailgun does not retry.
    snippet = "mailgun-spool-fcgid.conf"
    apache_server.require_apache(snippet)
    binary = harness.responder_binary()
    spool, key_file = web_user_spool(context)
    body = apache_server.snippet_text(snippet, os.path.dirname(binary), spool, key_file=key_file)
    server = apache_server.start(context, snippet, body)
    content_type, form = signed_message_form(KEY, "oversized", os.urandom(65 * 1024 * 1024))
    send_and_expect(server.post, spool, content_type, form, 406, "65 MiB body", server.error_log)


def test_apache_proxy_fcgi_snippet(context):
    snippet = "mailgun-spool-proxy-fcgi.conf"
    apache_server.require_apache(snippet)
    spawn_fcgi = apache_server.spawn_fcgi_binary()
    binary = harness.responder_binary()
    spool = context.make_spool()
    key_file = harness.write_key_file(context, KEY)
    log_file = context.path("responder.log")
    open(log_file, "w").close()
    harness.chown_to_responder(log_file)

    # As systemd/mailgun-spool.socket sets it up, only the web server's group may connect to
    # the socket. The responder runs as its own user.
    socket_path = os.path.join(apache_server.short_socket_folder(context), "fcgi.sock")
    environment = {
        "PATH": "/usr/bin:/bin",
        "MAILGUN_SPOOL_DIR": spool,
        "MAILGUN_SIGNING_KEY_FILE": key_file,
        "MAILGUN_MAX_AGE_SECONDS": "0",
        "MAILGUN_SPOOL_LOG": log_file,
    }
    context.start([spawn_fcgi, "-n", "-s", socket_path, "-M", "0660", "-G", apache_server.WEB_GROUP,
                   "-u", harness.RESPONDER_USER, "-g", harness.RESPONDER_GROUP, "--", binary],
                  env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    harness.wait_for_path(socket_path)

    body = apache_server.snippet_text(snippet, os.path.dirname(binary), spool, socket_path=socket_path)
    server = apache_server.start(context, snippet, body)

    def responder_log():
        with open(log_file, encoding="utf-8", errors="replace") as file:
            return "responder log:\n" + file.read()

    check_standard_requests(server.post, spool, KEY, lambda: server.error_log() + responder_log())


def test_apache_cgid_snippet(context):
    snippet = "mailgun-spool-cgid.conf"
    apache_server.require_apache(snippet)
    binary = harness.responder_binary()
    spool, key_file = web_user_spool(context)
    body = apache_server.snippet_text(snippet, os.path.dirname(binary), spool, key_file=key_file)
    server = apache_server.start(context, snippet, body, extra_directives=(
        "<Location /mailgun/inbound>\n    SetEnv MAILGUN_MAX_AGE_SECONDS 0\n</Location>\n"))
    check_standard_requests(server.post, spool, KEY, server.error_log)
