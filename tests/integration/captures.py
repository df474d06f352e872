"""The recorded Mailgun POSTs among the shared samples (multi_mail-*.http), parsed without
the responder's help, and the checks that a stored message matches its capture.

Forms are parsed here with urllib (urlencoded) and the email package (multipart/form-data
and the message in body-mime), so the expected values do not come from the code under test.
"""
import email
import email.policy
import hashlib
import json
import os
import stat
import urllib.parse

import harness

# The captures' valid signatures verify with this key; their timestamps are from 2013, so
# the responder needs MAILGUN_MAX_AGE_SECONDS=0 to accept them.
KEY = "foo"
VALID = ["multi_mail-raw-valid", "multi_mail-parsed-valid"]
# signature=xxx, no signature field, and a signature made with another key.
REJECTED = [f"multi_mail-{kind}-{problem}" for kind in ("raw", "parsed")
            for problem in ("invalid", "missing", "spam")]
ALL = VALID + REJECTED


class Capture:
    """One recorded request: its Content-Type, body, text fields and file parts in order."""

    def __init__(self, name):
        harness.require_shared()
        self.name = name
        self.content_type, self.body = harness.read_capture(os.path.join(harness.SAMPLES, name + ".http"))
        self.fields, self.files = parse_form(self.content_type, self.body)

    def values(self, name):
        return [value for field, value in self.fields if field == name]

    def value(self, name):
        values = self.values(name)
        assert len(values) == 1, f"{self.name}: expected one {name} field, found {len(values)}"
        return values[0]

    def is_raw(self):
        return bool(self.values("body-mime"))


def parse_form(content_type, body):
    """Returns ([(name, bytes)], [(name, filename, content_type, bytes)]) for a form body."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        pairs = urllib.parse.parse_qsl(body, keep_blank_values=True, strict_parsing=True)
        return [(name.decode("utf-8"), value) for name, value in pairs], []
    assert content_type.startswith("multipart/form-data"), content_type
    document = b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    form = email.message_from_bytes(document, policy=email.policy.compat32)
    fields, files = [], []
    for part in form.get_payload():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        filename = part.get_filename()
        if filename is None:
            fields.append((name, data))
        else:
            files.append((name, filename, part.get_content_type(), data))
    return fields, files


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def lf(data):
    """Returns text or bytes with CRLF line ends turned into LF."""
    return data.replace(b"\r\n", b"\n") if isinstance(data, bytes) else data.replace("\r\n", "\n")


def squeeze(text):
    """Collapses runs of white space, to compare unfolded header values."""
    return " ".join(text.split())


def key_env(key_file):
    return {"MAILGUN_SIGNING_KEY_FILE": key_file, "MAILGUN_MAX_AGE_SECONDS": "0"}


def assert_tmp_empty(spool):
    left = os.listdir(os.path.join(spool, "tmp"))
    assert left == [], f"staging files left in {spool}/tmp: {left}"


def read_file(spool, message_id, name):
    with open(os.path.join(spool, "new", message_id, name), "rb") as file:
        return file.read()


def check_message_files(spool, message_id):
    """Checks what every stored message must satisfy and returns its meta.json: only regular
    files with safe names, each part's size and sha256 equal to its file, no file unlisted,
    nothing readable by others. Returns the parsed meta.json."""
    folder = os.path.join(spool, "new", message_id)
    folder_mode = os.lstat(folder).st_mode
    assert stat.S_ISDIR(folder_mode), f"{folder} is not a directory"
    assert folder_mode & 0o007 == 0, f"{folder} is open to others: {oct(folder_mode)}"
    names = os.listdir(folder)
    for name in names:
        mode = os.lstat(os.path.join(folder, name)).st_mode
        assert stat.S_ISREG(mode), f"{name} in {folder} is not a regular file"
        assert not name.startswith("."), f"{name} in {folder} starts with a dot"
        assert mode & 0o007 == 0, f"{name} in {folder} is open to others: {oct(mode)}"

    meta = harness.read_meta(spool, message_id)
    assert meta["schema_version"] == 1, meta["schema_version"]
    assert meta["id"] == message_id, f"meta.json id {meta['id']} is not the folder name {message_id}"
    listed = [part["file"] for part in meta["parts"]]
    assert len(listed) == len(set(listed)), f"a file is listed twice in parts: {listed}"
    for part in meta["parts"]:
        assert part["file"] in names, f"part file {part['file']} is missing from {folder}"
        data = read_file(spool, message_id, part["file"])
        assert part["size"] == len(data), f"{part['file']}: size {part['size']} in meta.json, {len(data)} on disk"
        assert part["sha256"] == sha256(data), f"{part['file']}: sha256 in meta.json differs from the file"
    unlisted = set(names) - set(listed) - {"meta.json", "message.eml"}
    assert not unlisted, f"files not listed in meta.json parts: {sorted(unlisted)}"
    return meta


def parts_with_role(meta, *roles):
    return [part for part in meta["parts"] if part["role"] in roles]


def first_part(message, content_type):
    for part in message.walk():
        if part.get_content_type() == content_type and part.get_filename() is None:
            return part
    return None


def check_stored_capture(spool, message_id, capture):
    """Checks the stored message against the capture it came from."""
    meta = check_message_files(spool, message_id)
    text = lambda data: data.decode("utf-8")  # noqa: E731 - the captures' fields are ASCII

    assert meta["format"] == ("mime" if capture.is_raw() else "parsed"), meta["format"]
    for name in ("recipient", "sender", "subject", "from", "token", "timestamp"):
        assert str(meta[name]) == text(capture.value(name)), f"meta.json {name}: {meta[name]!r}"

    check_fields_in_order(meta, capture)
    check_headers(meta, json.loads(capture.value("message-headers")))

    if capture.is_raw():
        check_raw_message(spool, message_id, meta, capture.value("body-mime"))
    else:
        check_parsed_message(spool, message_id, meta, capture)


def check_fields_in_order(meta, capture):
    """The recorded fields are the capture's fields, in the order sent, repeats included."""
    sent = [(name, value.decode("utf-8")) for name, value in capture.fields]
    stored = [tuple(pair) for pair in meta["fields"]]
    position = 0
    for pair in stored:
        assert pair in sent[position:], f"field {pair[0]!r} is not in the capture or out of order"
        position = sent.index(pair, position) + 1
    for required in ("recipient", "sender", "subject", "from", "timestamp", "token"):
        assert any(name == required for name, _ in stored), f"field {required} missing from meta.json fields"
    sent_received = [value for name, value in sent if name == "Received"]
    stored_received = [value for name, value in stored if name == "Received"]
    assert len(sent_received) == 4, f"the capture has {len(sent_received)} Received fields"
    assert stored_received == sent_received, f"Received fields in meta.json: {stored_received}"


def check_headers(meta, expected):
    """meta.json headers equal Mailgun's message-headers: same names in order, same values
    once folding white space is collapsed."""
    stored_names = [name for name, _ in meta["headers"]]
    expected_names = [name for name, _ in expected]
    assert [n.lower() for n in stored_names] == [n.lower() for n in expected_names], \
        f"header names in meta.json: {stored_names}"
    for (name, value), (_, expected_value) in zip(meta["headers"], expected):
        assert squeeze(value) == squeeze(expected_value), f"header {name}: {value!r} != {expected_value!r}"


def check_raw_message(spool, message_id, meta, body_mime):
    assert read_file(spool, message_id, "message.eml") == body_mime, "message.eml differs from body-mime"
    message = email.message_from_bytes(body_mime, policy=email.policy.compat32)

    plain = first_part(message, "text/plain").get_payload(decode=True)
    assert lf(read_file(spool, message_id, "body-plain.txt")) == lf(plain), "body-plain.txt differs"
    html = first_part(message, "text/html").get_payload(decode=True)
    assert lf(html) in lf(read_file(spool, message_id, "body-html.html")), "body-html.html lacks the HTML part"

    expected = [(part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
                for part in message.walk() if part.get_filename()]
    check_attachments(meta, expected)


def check_parsed_message(spool, message_id, meta, capture):
    assert lf(read_file(spool, message_id, "body-plain.txt")) == lf(capture.value("body-plain"))
    assert lf(read_file(spool, message_id, "body-html.html")) == lf(capture.value("body-html"))
    check_attachments(meta, [(filename, content_type, data) for _, filename, content_type, data in capture.files])


def check_attachments(meta, expected):
    """expected: [(filename, content_type, bytes)] in the order sent."""
    stored = parts_with_role(meta, "attachment", "inline")
    assert [part["filename"] for part in stored] == [name for name, _, _ in expected], \
        f"attachments in meta.json: {[part['filename'] for part in stored]}"
    for part, (name, content_type, data) in zip(stored, expected):
        assert part["content_type"] == content_type, f"{name}: content type {part['content_type']}"
        assert part["size"] == len(data), f"{name}: size {part['size']}, expected {len(data)}"
        assert part["sha256"] == sha256(data), f"{name}: sha256 differs from the capture"
