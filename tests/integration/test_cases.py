"""The shared request cases, each modelled on a failure seen in a real Mailgun receiver.

Every request must get the expected status and spool the expected number of messages. A
stored message must have every value its expectations name: subject, text, attachments
(name, size, sha256, type, Content-ID), headers, the raw message's sha256, and announced
and extracted attachments. Each case runs through CGI, and one test runs them all through
nginx.
"""
import json
import os

import captures
import harness
import nginx_server

# Keys of an expected message that this file checks; an unknown key fails the test, so a
# new expectation is never skipped silently.
MESSAGE_KEYS = {"subject", "recipient", "sender", "from", "text", "attachments", "headers_contain",
                "headers_received_count", "raw_sha256", "announced_attachments",
                "attachment_count_declared", "missing_attachment_fields", "should_also_extract",
                "nested_attachment_not_top_level", "level"}
ATTACHMENT_KEYS = {"name", "size", "sha256", "content_type", "content_id", "inline", "source_field", "note"}
C1_CONTROLS = {chr(code) for code in range(0x80, 0xA0)}
# Roles of the parts a reader sees as attachments: "message" is an attached message/rfc822.
ATTACHMENT_ROLES = ("attachment", "inline", "message")


class Case:
    """A case folder's requests, built with its own tool, and its expectations."""

    def __init__(self, context, name):
        harness.require_shared()
        self.name = name
        self.folder = os.path.join(harness.CASES, name)
        self.requests = harness.build_case_requests(context, name)
        self.description = self.load("request.json")
        self.expected = self.load("expected.json")
        self.key = self.description["signing_key"]
        for request, built in zip(self.description["requests"], self.requests):
            built["path"] = request["path"]

    def load(self, file_name):
        with open(os.path.join(self.folder, file_name), encoding="utf-8") as file:
            return json.load(file)


def run_case(case, spool, send):
    """Sends every request with send(request), which returns (status, response text), and
    checks statuses, message counts and the stored messages."""
    assert len(case.requests) == len(case.expected["requests"]), "request.json and expected.json disagree"
    new_messages = []
    for request, expectation in zip(case.requests, case.expected["requests"]):
        assert request["name"] == expectation["name"], (request["name"], expectation["name"])
        before = harness.messages_in(spool)
        status, answer = send(request)
        assert status == expectation["status"] == request["expect_status"], \
            f"{case.name} {request['name']}: status {status}, expected {expectation['status']}: {answer}"
        added = [message for message in harness.messages_in(spool) if message not in before]
        assert len(added) == expectation["spooled_messages"], \
            f"{case.name} {request['name']}: {len(added)} messages spooled, expected {expectation['spooled_messages']}"
        captures.assert_tmp_empty(spool)
        new_messages.extend(added)

    expected_messages = case.expected.get("messages", [])
    assert len(new_messages) == len(expected_messages), f"{case.name}: {len(new_messages)} messages stored"
    for message_id, expected in zip(new_messages, expected_messages):
        check_message(case, spool, message_id, expected)


def run_case_cgi(context, name):
    case = Case(context, name)
    spool = context.make_spool()
    key_file = harness.write_key_file(context, case.key)
    binary = harness.responder_binary()

    def send(request):
        status, _, answer, log = harness.run_cgi(binary, spool, request["body"], request["content_type"],
                                                 extra_env={"MAILGUN_SIGNING_KEY_FILE": key_file})
        return status, f"{answer!r}\n{log}"

    run_case(case, spool, send)


def check_message(case, spool, message_id, expected):
    unknown = set(expected) - MESSAGE_KEYS
    assert not unknown, f"{case.name}: expectations this test does not check: {sorted(unknown)}"
    meta = captures.check_message_files(spool, message_id)
    check_utf8_text(spool, message_id, meta)

    for name in ("subject", "recipient", "sender", "from"):
        if name in expected:
            assert meta[name] == expected[name], f"{case.name}: meta.json {name} {meta[name]!r}, expected {expected[name]!r}"
    if "text" in expected:
        check_text(case, spool, message_id, meta, expected["text"])
    if "raw_sha256" in expected:
        raw = captures.read_file(spool, message_id, "message.eml")
        assert captures.sha256(raw) == expected["raw_sha256"], f"{case.name}: message.eml is not the message sent"
    check_headers(case, meta, expected)
    if "attachments" in expected:
        check_attachments(case, meta, expected["attachments"])
    if "nested_attachment_not_top_level" in expected:
        nested = expected["nested_attachment_not_top_level"]
        for part in top_level_attachments(meta):
            message = f"{case.name}: {nested['name']} of the embedded message is listed as a top-level attachment"
            assert part["filename"] != nested["name"], message
            assert part["sha256"] != nested["sha256"], message
    if "should_also_extract" in expected:
        check_extracted(case, meta, expected["should_also_extract"])
    if "announced_attachments" in expected:
        check_announced(case, meta, expected["announced_attachments"])
    if "attachment_count_declared" in expected:
        declared = meta.get("attachment_count_declared")
        assert declared == expected["attachment_count_declared"], \
            f"{case.name}: attachment_count_declared {declared!r} in meta.json"
    for field in expected.get("missing_attachment_fields", []):
        assert any(field in defect for defect in meta["defects"]), \
            f"{case.name}: no defect names the missing field {field}: {meta['defects']}"


def check_utf8_text(spool, message_id, meta):
    """Spooled text is valid UTF-8 without C1 control characters (what a mislabelled
    windows-1252 text turns into when decoded as ISO-8859-1)."""
    strings = [meta["subject"] or "", meta["from"] or ""]
    strings += [value for _, value in meta["headers"]]
    strings += [part["filename"] or "" for part in meta["parts"]]
    for text in strings:
        assert not C1_CONTROLS & set(text), f"C1 control character in {text!r}"
    for part in captures.parts_with_role(meta, "body-plain", "body-html"):
        data = captures.read_file(spool, message_id, part["file"])
        text = data.decode("utf-8")  # raises when the body is not UTF-8
        assert not C1_CONTROLS & set(text), f"C1 control character in {part['file']}"


def check_text(case, spool, message_id, meta, expected_text):
    plain = captures.parts_with_role(meta, "body-plain")
    if expected_text is None:
        for part in plain:
            assert captures.read_file(spool, message_id, part["file"]).strip() == b"", \
                f"{case.name}: a text body was stored for a message without one"
        return
    assert len(plain) == 1, f"{case.name}: {len(plain)} body-plain parts in meta.json"
    text = captures.read_file(spool, message_id, plain[0]["file"]).decode("utf-8")
    assert captures.lf(text) == expected_text, f"{case.name}: text body {text!r}, expected {expected_text!r}"


def check_headers(case, meta, expected):
    headers = [tuple(pair) for pair in meta["headers"]]
    expected_pairs = [tuple(pair) for pair in expected.get("headers_contain", [])]
    for name, value in expected_pairs:
        assert (name, value) in headers, f"{case.name}: header {name}: {value} missing from meta.json"
    # A header sent several times keeps its order.
    for name in {name for name, _ in expected_pairs}:
        stored_values = [value for stored_name, value in headers if stored_name == name]
        expected_values = [value for expected_name, value in expected_pairs if expected_name == name]
        assert [value for value in stored_values if value in expected_values] == expected_values, \
            f"{case.name}: {name} headers in meta.json: {stored_values}"
    if "headers_received_count" in expected:
        received = [value for name, value in headers if name.lower() == "received"]
        assert len(received) == expected["headers_received_count"], \
            f"{case.name}: {len(received)} Received headers in meta.json"


def top_level_attachments(meta):
    """Attachments of the message itself, not of a message or TNEF container inside it."""
    containers = {part["path"] for part in meta["parts"]
                  if part["content_type"] in ("message/rfc822", "application/ms-tnef")}
    return [part for part in captures.parts_with_role(meta, *ATTACHMENT_ROLES)
            if part["parent"] not in containers]


def check_attachments(case, meta, expected_attachments):
    stored = top_level_attachments(meta)
    names = [part["filename"] for part in stored]
    assert sorted(names) == sorted(item["name"] for item in expected_attachments), \
        f"{case.name}: attachments {names}, expected {[item['name'] for item in expected_attachments]}"
    for item in expected_attachments:
        unknown = set(item) - ATTACHMENT_KEYS
        assert not unknown, f"{case.name}: attachment expectations this test does not check: {sorted(unknown)}"
        part = next(part for part in stored if part["filename"] == item["name"])
        label = f"{case.name}: {item['name']}"
        assert part["size"] == item["size"], f"{label}: size {part['size']}, expected {item['size']}"
        assert part["sha256"] == item["sha256"], f"{label}: sha256 differs"
        assert part["content_type"] == item["content_type"], f"{label}: content type {part['content_type']}"
        if "content_id" in item:
            assert part["content_id"] == item["content_id"], f"{label}: content id {part['content_id']!r}"
        if item.get("inline"):
            assert part["role"] == "inline", f"{label}: role {part['role']}, expected inline"
        else:
            assert part["role"] in ("attachment", "message"), f"{label}: role {part['role']}, expected attachment"
        if "source_field" in item:
            assert part["path"] == item["source_field"], f"{label}: from field {part['path']!r}"


def check_extracted(case, meta, expected_files):
    extracted = captures.parts_with_role(meta, "extracted")
    containers = {part["path"] for part in meta["parts"] if part["content_type"] == "application/ms-tnef"}
    names = [part["filename"] for part in extracted]
    assert sorted(names) == sorted(item["name"] for item in expected_files), \
        f"{case.name}: extracted files {names}"
    for item in expected_files:
        part = next(part for part in extracted if part["filename"] == item["name"])
        label = f"{case.name}: extracted {item['name']}"
        assert part["size"] == item["size"], f"{label}: size {part['size']}"
        assert part["sha256"] == item["sha256"], f"{label}: sha256 differs"
        assert part["content_type"] == item["content_type"], f"{label}: content type {part['content_type']}"
        assert part["parent"] in containers, f"{label}: parent {part['parent']!r} is not the TNEF part"


def check_announced(case, meta, expected_announced):
    sent = json.loads(case.load("fields.json")["attachments"])
    announced = meta.get("announced_attachments")
    assert isinstance(announced, list), f"{case.name}: no announced_attachments in meta.json"
    assert meta.get("attachments_not_included") is True, f"{case.name}: attachments_not_included is not true"
    assert len(announced) == len(expected_announced), f"{case.name}: {len(announced)} announced attachments"
    for stored, item, original in zip(announced, expected_announced, sent):
        for key in ("name", "content_type", "size"):
            assert stored.get(key) == item[key], f"{case.name}: announced {key} {stored.get(key)!r}, expected {item[key]!r}"
        assert stored.get("url") == original["url"], f"{case.name}: announced url {stored.get('url')!r}"
    assert captures.parts_with_role(meta, *ATTACHMENT_ROLES) == [], \
        f"{case.name}: attachment files were created for attachments that were not sent"


# One test per case folder, named for what the case is about.
CASE_TESTS = {
    "01-signature-key-mismatch": "test_api_key_signature_rejected",
    "03-signature-json-object": "test_event_webhook_not_stored",
    "04-mime-url-without-body-mime": "test_parsed_fields_on_mime_url",
    "05-store-notify-attachments-json": "test_store_notify_attachment_urls",
    "06-duplicate-body-mime-field": "test_duplicate_body_mime_rejected",
    "08-body-mime-not-utf8": "test_latin1_body_mime_stored",
    "10-form-parts-odd-filenames": "test_odd_form_filenames_kept",
    "11-attachment-count-mismatch": "test_attachment_count_mismatch_recorded",
    "12-attachments-out-of-order": "test_attachments_out_of_order",
    "14-nonascii-form-fields": "test_nonascii_form_fields",
    "16-rfc2231-continuation-encoded-word": "test_rfc2231_continuation_encoded_word",
    "17-encoded-word-filename-with-slash": "test_encoded_word_filename_with_slash",
    "19-rfc2231-mislabelled-charset": "test_mislabelled_filename_charset",
    "21-path-traversal-filenames": "test_path_traversal_filenames_contained",
    "23-single-part-attachment": "test_single_part_attachment",
    "24-forwarded-rfc822-attachment": "test_forwarded_message_attachment",
    "25-missing-final-boundary": "test_missing_final_boundary",
    "27-latin1-label-cp1252-bytes": "test_cp1252_bytes_in_latin1_text",
    "29-base64-cte-on-multipart": "test_base64_encoded_multipart",
    "31-tnef-winmail-dat": "test_tnef_attachments_extracted",
}


def case_names():
    return sorted(name for name in os.listdir(harness.CASES)
                  if os.path.isfile(os.path.join(harness.CASES, name, "request.json")))


def test_every_case_has_a_test(context):
    harness.require_shared()
    untested = [name for name in case_names() if name not in CASE_TESTS]
    assert not untested, f"case folders without a test in {__file__}: {untested}"
    missing = [test for test in CASE_TESTS.values() if not callable(globals().get(test))]
    assert not missing, f"tests named in CASE_TESTS but not defined: {missing}"


def test_api_key_signature_rejected(context):
    run_case_cgi(context, "01-signature-key-mismatch")


def test_event_webhook_not_stored(context):
    run_case_cgi(context, "03-signature-json-object")


def test_parsed_fields_on_mime_url(context):
    run_case_cgi(context, "04-mime-url-without-body-mime")


def test_store_notify_attachment_urls(context):
    run_case_cgi(context, "05-store-notify-attachments-json")


def test_duplicate_body_mime_rejected(context):
    run_case_cgi(context, "06-duplicate-body-mime-field")


def test_latin1_body_mime_stored(context):
    run_case_cgi(context, "08-body-mime-not-utf8")


def test_odd_form_filenames_kept(context):
    run_case_cgi(context, "10-form-parts-odd-filenames")


def test_attachment_count_mismatch_recorded(context):
    run_case_cgi(context, "11-attachment-count-mismatch")


def test_attachments_out_of_order(context):
    run_case_cgi(context, "12-attachments-out-of-order")


def test_nonascii_form_fields(context):
    run_case_cgi(context, "14-nonascii-form-fields")


def test_rfc2231_continuation_encoded_word(context):
    run_case_cgi(context, "16-rfc2231-continuation-encoded-word")


def test_encoded_word_filename_with_slash(context):
    run_case_cgi(context, "17-encoded-word-filename-with-slash")


def test_mislabelled_filename_charset(context):
    run_case_cgi(context, "19-rfc2231-mislabelled-charset")


def test_path_traversal_filenames_contained(context):
    run_case_cgi(context, "21-path-traversal-filenames")


def test_single_part_attachment(context):
    run_case_cgi(context, "23-single-part-attachment")


def test_forwarded_message_attachment(context):
    run_case_cgi(context, "24-forwarded-rfc822-attachment")


def test_missing_final_boundary(context):
    run_case_cgi(context, "25-missing-final-boundary")


def test_cp1252_bytes_in_latin1_text(context):
    run_case_cgi(context, "27-latin1-label-cp1252-bytes")


def test_base64_encoded_multipart(context):
    run_case_cgi(context, "29-base64-cte-on-multipart")


def test_tnef_attachments_extracted(context):
    run_case_cgi(context, "31-tnef-winmail-dat")


def test_all_cases_through_nginx(context):
    """Every case through nginx and spawn-fcgi, into one spool (the cases' tokens differ)."""
    harness.require_shared()
    if not harness.is_root():
        raise harness.Skipped("needs root to start nginx and switch the responder to nobody")
    cases = [Case(context, name) for name in case_names()]
    keys = {case.key for case in cases}
    assert len(keys) == 1, f"the cases use different signing keys: {keys}"
    spool = context.make_spool()
    key_file = harness.write_key_file(context, keys.pop())
    server = nginx_server.start(context, harness.responder_binary(), spool, key_file=key_file)

    def send(request):
        status, _, answer = server.post(request["content_type"], request["body"], path=request["path"])
        return status, repr(answer)

    failures = []
    for case in cases:
        try:
            run_case(case, spool, send)
        except AssertionError as error:
            failures.append(f"{case.name}: {error}")
    assert not failures, "cases that failed through nginx:\n" + "\n".join(failures)
