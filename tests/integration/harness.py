"""Shared helpers for the integration tests: paths, temporary folders, the responder run as
an unprivileged user, signing, request bodies and HTTP posting.

Everything a test starts is registered with its TestContext and stopped by pid in close(),
also when the test fails. Servers listen on 127.0.0.1 only.
"""
import grp
import hashlib
import hmac
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
BUILT_BINARY = os.path.join(BUILD, "mailgun-spool")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
SAMPLES = os.path.join(SHARED, "mailgun-samples")
CASES = os.path.join(SHARED, "cases")

# The user and group the responder runs as in tests, as it would in production.
RESPONDER_USER = "nobody"
RESPONDER_GROUP = "nogroup"

# A run's scratch space lives under /tmp, not build/, because the unprivileged responder
# must be able to reach it whatever the permissions of the checkout's parent folders.
_run_root = None


class Skipped(Exception):
    """Raised by a test that cannot run here; the runner reports it by name with the reason."""


def run_root():
    global _run_root
    if _run_root is None:
        _run_root = tempfile.mkdtemp(prefix="mailgun-spool-it-")
        os.chmod(_run_root, 0o755)
    return _run_root


def remove_run_root(keep):
    """Removes this run's scratch space, unless a test failed: then it contains the evidence."""
    global _run_root
    if _run_root is not None and not keep:
        shutil.rmtree(_run_root, ignore_errors=True)
        _run_root = None


def is_root():
    return os.geteuid() == 0


def shared_available():
    return os.path.isdir(SAMPLES) and os.path.isdir(CASES)


def require_shared():
    if not shared_available():
        raise Skipped(f"needs the shared samples at {SHARED}, which are missing")


def responder_binary():
    """Returns a copy of the built responder that the unprivileged user can execute."""
    if not os.path.exists(BUILT_BINARY):
        raise AssertionError(f"{BUILT_BINARY} is missing: run make first")
    folder = os.path.join(run_root(), "bin")
    copy = os.path.join(folder, "mailgun-spool")
    if not os.path.exists(copy) or os.path.getmtime(copy) < os.path.getmtime(BUILT_BINARY):
        os.makedirs(folder, exist_ok=True)
        os.chmod(folder, 0o755)
        shutil.copy2(BUILT_BINARY, copy + ".new")
        os.chmod(copy + ".new", 0o755)
        os.replace(copy + ".new", copy)
    return copy


def as_responder_user(command):
    """Prefixes command so that it runs as the unprivileged responder user when we are root."""
    if not is_root():
        return list(command)
    return ["setpriv", f"--reuid={RESPONDER_USER}", f"--regid={RESPONDER_GROUP}", "--clear-groups",
            "--"] + list(command)


def chown_to_responder(path):
    if is_root():
        os.chown(path, pwd.getpwnam(RESPONDER_USER).pw_uid, grp.getgrnam(RESPONDER_GROUP).gr_gid)


class TestContext:
    """One test's temporary folder and the processes it started."""

    def __init__(self, name, parent=None):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=name.replace(".", "-") + "-", dir=parent or run_root())
        os.chmod(self.dir, 0o755)
        self._cleanups = []
        self._keep = False

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def on_close(self, function):
        self._cleanups.append(function)

    def start(self, command, **kwargs):
        """Starts a process in its own process group and stops it (by pid) in close()."""
        process = subprocess.Popen(command, start_new_session=True, **kwargs)
        self.on_close(lambda: stop_process_group(process.pid))
        return process

    def keep_on_failure(self):
        self._keep = True
        print(f"  kept {self.dir} for inspection")

    def close(self):
        for function in reversed(self._cleanups):
            try:
                function()
            except Exception as error:  # noqa: BLE001 - cleanup must go on
                print(f"  cleanup failed: {error}")
        if not self._keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def make_spool(self, name="spool"):
        """Creates an empty spool folder owned by the responder user."""
        spool = self.path(name)
        os.mkdir(spool, 0o750)
        chown_to_responder(spool)
        return spool


def stop_process_group(pid, timeout_seconds=10):
    """Sends SIGTERM to the process group led by pid, then SIGKILL if it is still there."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            finished = pid
        if finished == pid:
            break
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_pid_file(pid_file, timeout_seconds=10):
    """Stops a daemon (nginx, Apache, spawn-fcgi) by the pid it wrote, waiting for it to go."""
    try:
        with open(pid_file) as file:
            pid = int(file.read().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, timeout_seconds=15):
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout_seconds} s")


def wait_for_path(path, timeout_seconds=15):
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {timeout_seconds} s")


def sign(key, timestamp, token):
    """Returns Mailgun's signature: lowercase hex HMAC-SHA256 of timestamp + token."""
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def read_capture(path):
    """Splits a captured request (headers, blank line, body) into (content_type, body)."""
    with open(path, "rb") as file:
        data = file.read()
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = data.partition(separator)
        if found:
            break
    content_type = ""
    for line in head.splitlines()[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-type":
            content_type = value.strip()
    return content_type, body


def http_request(port, method, path, body=b"", content_type=None, chunked=False, timeout_seconds=120,
                 headers=None):
    """Sends one request to 127.0.0.1:port; returns (status, headers dict, body bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_seconds)
    request_headers = dict(headers or {})
    if content_type:
        request_headers["Content-Type"] = content_type
    if chunked:
        request_headers["Transfer-Encoding"] = "chunked"
        connection.putrequest(method, path)
        for name, value in request_headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        piece_bytes = 64 * 1024
        for offset in range(0, len(body), piece_bytes):
            piece = body[offset:offset + piece_bytes]
            connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        connection.send(b"0\r\n\r\n")
    else:
        connection.request(method, path, body=body, headers=request_headers)
    response = connection.getresponse()
    data = response.read()
    result = (response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    connection.close()
    return result


def run_cgi(binary, spool, body, content_type, method="POST", extra_env=None, content_length=None,
            timeout_seconds=60):
    """Runs the responder once as plain CGI; returns (status, headers, body, stderr text)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": method,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)) if content_length is None else content_length,
        "SCRIPT_NAME": "/mailgun",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "MAILGUN_SPOOL_DIR": spool,
    }
    if content_length == "":
        del env["CONTENT_LENGTH"]
    env.update(extra_env or {})
    completed = subprocess.run(as_responder_user([binary]), input=body, env=env, capture_output=True,
                               timeout=timeout_seconds)
    return parse_cgi_output(completed.stdout) + (completed.stderr.decode("utf-8", "replace"),)


def parse_cgi_output(output):
    head, _, body = output.partition(b"\r\n\r\n")
    if not _:
        head, _, body = output.partition(b"\n\n")
    headers = {}
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(headers.get("status", "200").split()[0])
    return status, headers, body


def messages_in(spool, folder="new"):
    """Returns the sorted message IDs in spool/folder."""
    path = os.path.join(spool, folder)
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def read_meta(spool, message_id, folder="new"):
    with open(os.path.join(spool, folder, message_id, "meta.json"), encoding="utf-8") as file:
        return json.load(file)


def file_sha256(path):
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def build_case_requests(context, case_name, now=None):
    """Builds a shared case's request bodies with its own tool; returns a list of dicts with
    name, body, content_type, expect_status and the case's signing key."""
    require_shared()
    case_dir = os.path.join(CASES, case_name)
    out = context.path("case-" + case_name)
    now = int(time.time()) if now is None else now
    subprocess.run([sys.executable, os.path.join(CASES, "_tools", "build_request.py"), case_dir, "--out", out,
                    "--now", str(now)], check=True, capture_output=True)
    with open(os.path.join(case_dir, "request.json")) as file:
        description = json.load(file)
    requests = []
    for index, request in enumerate(description["requests"], start=1):
        stem = os.path.join(out, f"{index}-{request['name']}")
        with open(stem + ".body", "rb") as file:
            body = file.read()
        with open(stem + ".headers") as file:
            header_line = file.read().strip()
        content_type = header_line.split(":", 1)[1].strip() if ":" in header_line else header_line
        requests.append({"name": request["name"], "body": body, "content_type": content_type,
                         "expect_status": request["expect_status"], "key": description["signing_key"]})
    return requests


# Request building, used by the tests that make their own requests and by tests/demo/run-demo.

class FilePart:
    """A file part of a multipart/form-data body."""

    def __init__(self, filename, content_type, data):
        self.filename = filename
        self.content_type = content_type
        self.data = data


def signed_fields(key, timestamp=None, token=None):
    """Returns the timestamp, token and signature fields, signed with key; the timestamp
    defaults to now and the token to a random one."""
    timestamp = str(int(time.time())) if timestamp is None else str(timestamp)
    token = os.urandom(25).hex() if token is None else token
    return [("timestamp", timestamp), ("token", token), ("signature", sign(key, timestamp, token))]


def encode_urlencoded(pairs):
    """Returns (content_type, body) of an application/x-www-form-urlencoded form; values
    may be str or bytes."""
    import urllib.parse
    body = urllib.parse.urlencode([(name, value) for name, value in pairs]).encode("ascii")
    return "application/x-www-form-urlencoded", body


def encode_multipart(pairs, boundary=None):
    """Returns (content_type, body) of a multipart/form-data form; a value is str, bytes
    or a FilePart."""
    boundary = boundary or "----mailgun-spool-" + os.urandom(12).hex()
    pieces = []
    for name, value in pairs:
        pieces.append(f"--{boundary}\r\n".encode())
        if isinstance(value, FilePart):
            pieces.append(f'Content-Disposition: form-data; name="{name}"; filename="{value.filename}"\r\n'
                          .encode("utf-8"))
            pieces.append(f"Content-Type: {value.content_type}\r\n\r\n".encode())
            pieces.append(value.data)
        else:
            pieces.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode("utf-8"))
            pieces.append(value if isinstance(value, bytes) else value.encode("utf-8"))
        pieces.append(b"\r\n")
    pieces.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(pieces)


def write_key_file(context, key, name="signing-key"):
    """Writes key to a file in the test folder that only the responder user can read."""
    path = context.path(name)
    with open(path, "w") as file:
        file.write(key + "\n")
    os.chmod(path, 0o400)
    chown_to_responder(path)
    return path
