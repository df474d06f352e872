"""Starts nginx with the shipped site snippet and the responder under the shipped
spawn-fcgi script, both on 127.0.0.1 and inside one folder, for the integration tests and
for `make demo`.

The nginx configuration is made from nginx/mailgun-spool.conf with only the socket path
replaced. As root, nginx's workers run as www-data, the socket belongs to www-data with
mode 0600, and the responder runs as nobody:nogroup. Without root everything runs as the
calling user. Both servers are registered with the folder's on_close and stopped by pid.
"""
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time

import harness

SNIPPET = os.path.join(harness.ROOT, "nginx", "mailgun-spool.conf")
SPAWN_SCRIPT = os.path.join(harness.ROOT, "nginx", "spawn-fcgi.sh")
SHIPPED_SOCKET = "unix:/run/mailgun-spool/fcgi.sock"
NGINX_WORKER_USER = "www-data"
NGINX_BINARY = "/usr/sbin/nginx"

# prctl option that makes orphaned descendants our children, so that the responder
# processes spawn-fcgi leaves behind can be reaped here after they stop.
_PR_SET_CHILD_SUBREAPER = 36


class Server:
    """A running nginx + responder pair."""

    def __init__(self, folder, port, spool, log_file, socket_path):
        self.folder = folder
        self.socket_path = socket_path
        self.port = port
        self.spool = spool
        self.log_file = log_file

    def url(self, path="/mailgun/inbound"):
        return f"http://127.0.0.1:{self.port}{path}"

    def post(self, content_type, body, path="/mailgun/inbound", chunked=False, timeout_seconds=120):
        return harness.http_request(self.port, "POST", path, body, content_type, chunked=chunked,
                                    timeout_seconds=timeout_seconds)

    def responder_log(self):
        with open(self.log_file, encoding="utf-8", errors="replace") as file:
            return file.read()

    def nginx_error_log(self):
        with open(os.path.join(self.folder, "error.log"), encoding="utf-8", errors="replace") as file:
            return file.read()


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def start(context, binary, spool, key_file=None, extra_env=None, processes=4):
    """Starts the responder (binary, serving spool) and nginx in context's folder; returns a
    Server once a GET through nginx reaches the responder. context needs path() and on_close()."""
    if not os.path.exists(NGINX_BINARY):
        raise harness.Skipped(f"{NGINX_BINARY} is missing (apt-get install nginx-light)")
    become_subreaper()
    folder = context.path("nginx")
    os.makedirs(folder)
    os.chmod(folder, 0o755)
    # A unix socket path may have at most 107 bytes, too few for a test folder's path.
    socket_folder = tempfile.mkdtemp(prefix="mailgun-spool-socket-")
    os.chmod(socket_folder, 0o755)
    context.on_close(lambda: shutil.rmtree(socket_folder, ignore_errors=True))
    socket_path = os.path.join(socket_folder, "fcgi.sock")
    log_file = os.path.join(folder, "responder.log")
    open(log_file, "a").close()
    os.chmod(log_file, 0o640)
    harness.chown_to_responder(log_file)

    start_responder(context, folder, binary, spool, socket_path, log_file, key_file, extra_env, processes)
    port = start_nginx(context, folder, socket_path)
    server = Server(folder, port, spool, log_file, socket_path)
    wait_until_ready(server)
    return server


def start_responder(context, folder, binary, spool, socket_path, log_file, key_file, extra_env, processes):
    pid_file = os.path.join(folder, "spawn-fcgi.pid")
    context.on_close(lambda: stop_pid_list(pid_file))
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "MAILGUN_SPOOL_BINARY": binary,
        "MAILGUN_SPOOL_SOCKET": socket_path,
        "MAILGUN_SPOOL_PID_FILE": pid_file,
        "MAILGUN_SPOOL_PROCESSES": str(processes),
        "MAILGUN_SPOOL_USER": harness.RESPONDER_USER,
        "MAILGUN_SPOOL_GROUP": harness.RESPONDER_GROUP,
        "MAILGUN_SPOOL_SOCKET_USER": NGINX_WORKER_USER,
        "MAILGUN_SPOOL_DIR": spool,
        "MAILGUN_SPOOL_LOG": log_file,
    }
    if key_file:
        env["MAILGUN_SIGNING_KEY_FILE"] = key_file
    env.update(extra_env or {})
    completed = subprocess.run(["sh", SPAWN_SCRIPT], env=env, capture_output=True, text=True, timeout=30)
    if completed.returncode != 0:
        raise AssertionError(f"{SPAWN_SCRIPT} failed with exit status {completed.returncode}: "
                             f"{completed.stderr.strip()}")
    harness.wait_for_path(socket_path)


def start_nginx(context, folder, socket_path):
    with open(SNIPPET) as file:
        snippet = file.read()
    if SHIPPED_SOCKET not in snippet:
        raise AssertionError(f"{SNIPPET} no longer contains fastcgi_pass {SHIPPED_SOCKET}")
    snippet_copy = os.path.join(folder, "mailgun-spool.conf")
    with open(snippet_copy, "w") as file:
        file.write(snippet.replace(SHIPPED_SOCKET, "unix:" + socket_path))

    port = harness.free_port()
    config = os.path.join(folder, "nginx.conf")
    with open(config, "w") as file:
        file.write(nginx_config(folder, port, snippet_copy))
    error_log = os.path.join(folder, "error.log")
    test = subprocess.run([NGINX_BINARY, "-t", "-q", "-e", error_log, "-p", folder, "-c", config],
                          capture_output=True, text=True)
    if test.returncode != 0:
        raise AssertionError(f"nginx rejected {config}: {test.stderr.strip()}")

    process = context.start([NGINX_BINARY, "-e", error_log, "-p", folder, "-c", config],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    harness.wait_for_port(port)
    if process.poll() is not None:
        raise AssertionError(f"nginx exited with status {process.returncode}; see {error_log}")
    return port


def nginx_config(folder, port, snippet_copy):
    user_line = f"user {NGINX_WORKER_USER};" if harness.is_root() else ""
    temp_paths = "\n".join(f"    {kind}_temp_path {os.path.join(folder, kind + '-temp')};"
                           for kind in ("client_body", "fastcgi", "proxy", "uwsgi", "scgi"))
    return f"""# Made by tests/integration/nginx_server.py for one test run.
{user_line}
daemon off;
master_process on;
worker_processes 2;
pid {os.path.join(folder, "nginx.pid")};
error_log {os.path.join(folder, "error.log")} info;
events {{
    worker_connections 256;
}}
http {{
    access_log {os.path.join(folder, "access.log")};
{temp_paths}
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        include {snippet_copy};
    }}
}}
"""


def wait_until_ready(server, timeout_seconds=15):
    """Waits until a GET through nginx gets the responder's 405."""
    deadline = time.monotonic() + timeout_seconds
    last = None
    while time.monotonic() < deadline:
        try:
            status, _, body = harness.http_request(server.port, "GET", "/mailgun/inbound", timeout_seconds=5)
            if status == 405:
                return
            last = f"status {status}: {body[:200]!r}"
        except OSError as error:
            last = str(error)
        time.sleep(0.1)
    raise AssertionError(f"the responder behind nginx did not answer GET with 405 within "
                         f"{timeout_seconds} s (last: {last})")


def stop_pid_list(pid_file, timeout_seconds=10):
    """Stops every process listed in pid_file (one pid a line, as spawn-fcgi -F writes it)."""
    try:
        with open(pid_file) as file:
            pids = [int(line) for line in file.read().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        if is_responder(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_seconds
    remaining = list(pids)
    while remaining and time.monotonic() < deadline:
        remaining = [pid for pid in remaining if not has_exited(pid)]
        time.sleep(0.05)
    for pid in remaining:
        if is_responder(pid):
            os.kill(pid, signal.SIGKILL)
            has_exited(pid)


def is_responder(pid):
    """Tells whether pid is still a running mailgun-spool process (and not a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            command = file.read().split(b"\0")[0]
    except OSError:
        return False
    return os.path.basename(command) == b"mailgun-spool"


def has_exited(pid):
    """Reaps pid when it is our child (we are a subreaper) and tells whether it is gone."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == pid
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True

