"""Durability under failing system calls. A preloaded library makes one fsync, close, write or
rename fail, as a bad disk or a full file system would; each test then checks what the
responder answered and published, and that Mailgun's retry (the same request, no fault)
ends with exactly one copy of the message."""
import errno
import os
import shutil
import time
import urllib.parse

import harness

KEY = "fault-test-key"
FAULT_LIBRARY = os.path.join(harness.BUILD, "fault-inject.so")


def fault_library():
    """Returns a copy of the fault library that the unprivileged responder can load."""
    if not os.path.exists(FAULT_LIBRARY):
        raise AssertionError(f"{FAULT_LIBRARY} is missing: run make {os.path.relpath(FAULT_LIBRARY, harness.ROOT)}")
    copy = os.path.join(harness.run_root(), "bin", "fault-inject.so")
    os.makedirs(os.path.dirname(copy), exist_ok=True)
    shutil.copy2(FAULT_LIBRARY, copy)
    os.chmod(copy, 0o755)
    return copy


def raw_request(token):
    timestamp = str(int(time.time()))
    message = (b"From: Alice <alice@example.net>\r\nTo: inbox@mg.example.com\r\nSubject: Fault test\r\n"
               b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
               b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n"
               b"--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n")
    fields = [("recipient", "inbox@mg.example.com"), ("subject", "Fault test"), ("body-mime", message),
              ("timestamp", timestamp), ("token", token), ("signature", harness.sign(KEY, timestamp, token))]
    return urllib.parse.urlencode(fields).encode()


def post(spool, body, fault=None, error_number=None):
    env = {"MAILGUN_SIGNING_KEY": KEY}
    if fault:
        call, path = fault
        env.update({"LD_PRELOAD": fault_library(), "MGSPOOL_FAULT_CALL": call, "MGSPOOL_FAULT_PATH": path})
    if error_number is not None:
        env["MGSPOOL_FAULT_ERRNO"] = str(error_number)
    status, _, _, log = harness.run_cgi(harness.responder_binary(), spool, body,
                                        "application/x-www-form-urlencoded", extra_env=env)
    return status, log


def assert_retry_stores_once(spool, body):
    status, log = post(spool, body)
    assert status == 200, log
    assert len(harness.messages_in(spool)) == 1
    assert harness.messages_in(spool, "tmp") == []
    message_id = harness.messages_in(spool)[0]
    meta = harness.read_meta(spool, message_id)
    for part in meta["parts"]:
        path = os.path.join(spool, "new", message_id, part["file"])
        assert os.path.getsize(path) == part["size"]
        assert harness.file_sha256(path) == part["sha256"]


def check_failure_before_publishing(context, fault, error_number=errno.EIO):
    spool = context.make_spool()
    body = raw_request(f"token-{fault[0]}-{os.path.basename(fault[1].rstrip('/'))}")
    status, log = post(spool, body, fault, error_number)
    assert status == 500, log
    assert "status=500" in log
    assert os.strerror(error_number) in log, log
    assert harness.messages_in(spool) == []
    assert harness.messages_in(spool, "tmp") == []
    assert_retry_stores_once(spool, body)


def test_fsync_of_part_fails(context):
    check_failure_before_publishing(context, ("fsync", "/part-1.pdf"))


def test_fsync_of_meta_fails(context):
    check_failure_before_publishing(context, ("fsync", "/meta.json"))


def test_fsync_of_raw_message_fails(context):
    check_failure_before_publishing(context, ("fsync", "/message.eml"))


def test_close_of_body_fails(context):
    check_failure_before_publishing(context, ("close", "/body-plain.txt"))


def test_disk_full_while_writing(context):
    check_failure_before_publishing(context, ("write", "/message.eml"), errno.ENOSPC)


def test_fsync_of_staging_directory_fails(context):
    # The staging directory is the only thing synced that sits directly in tmp/.
    check_failure_before_publishing(context, ("fsync", "/spool/tmp/"))


def test_rename_into_new_fails(context):
    check_failure_before_publishing(context, ("renameat2", "/tmp"))


def test_fsync_of_new_fails_after_publishing(context):
    spool = context.make_spool()
    body = raw_request("token-new-dir")
    status, log = post(spool, body, ("fsync", "/new"))
    # Published but not known to be durable: a retryable status, the message stays whole, and
    # the token is recorded, so the retry is answered 200 without a second copy.
    assert status == 500, log
    assert "published but syncing new/ failed" in log
    assert len(harness.messages_in(spool)) == 1
    assert harness.messages_in(spool, "tmp") == []
    status, log = post(spool, body)
    assert status == 200, log
    assert "already stored" in log
    assert len(harness.messages_in(spool)) == 1


def test_token_record_fails_after_publishing(context):
    spool = context.make_spool()
    body = raw_request("token-record")
    status, log = post(spool, body, ("fsync", "/private/tokens"))
    # The message is durable in new/, so the answer is 200 (no retry, no second copy), and the
    # log says that the token memory missed this one.
    assert status == 200, log
    assert "recording its token failed" in log
    assert len(harness.messages_in(spool)) == 1
    assert harness.messages_in(spool, "tmp") == []


def test_unsigned_request_writes_no_files(context):
    # The signature is checked before any part is written: were the attachment written and
    # synced first, the failing fsync would turn this 403 into a 500.
    spool = context.make_spool()
    body = raw_request("token-unsigned").replace(b"signature=", b"signature=0", 1)
    status, log = post(spool, body, ("fsync", "/message.eml"))
    assert status == 403, log
    assert harness.messages_in(spool) == []
    assert harness.messages_in(spool, "tmp") == []
