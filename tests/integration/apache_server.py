"""Apache 2.4 started from a throwaway configuration for one test.

The configuration is a minimal httpd.conf written from scratch. It loads only the modules
that the shipped snippet needs, listens on 127.0.0.1 only, and Includes a copy of one of
apache/*.conf in which the installed paths are replaced by the test's own.

Apache is started as root in the foreground and drops to WEB_USER for its workers, as on a
Debian server; it is stopped by pid when the test closes.
"""
import os
import pwd
import shutil
import subprocess
import tempfile

import harness

APACHE_BINARY = "/usr/sbin/apache2"
MODULES_DIR = "/usr/lib/apache2/modules"

# The user Debian's Apache runs as; mod_fcgid and mod_cgid run the responder as this user.
WEB_USER = "www-data"
WEB_GROUP = "www-data"

# What the shipped snippets name, and what a test puts in their place.
INSTALLED_LIBDIR = "@PREFIX@/lib/mailgun-spool"
INSTALLED_SPOOL = "/var/spool/mailgun-spool"
INSTALLED_KEY_FILE = "/etc/mailgun-spool/signing-key"
INSTALLED_SOCKET = "/run/mailgun-spool/fcgi.sock"

# Modules per snippet, on top of the ones every configuration loads. unixd and log_config
# are built into Debian's apache2 binary, so they have no LoadModule line.
BASE_MODULES = ["mpm_event", "authz_core", "mime", "alias", "env"]
SNIPPET_MODULES = {
    "mailgun-spool-fcgid.conf": ["fcgid"],
    "mailgun-spool-proxy-fcgi.conf": ["proxy", "proxy_fcgi"],
    "mailgun-spool-cgid.conf": ["cgid"],
}


def require_apache(snippet):
    """Raises Skipped when Apache, a module the snippet needs, or root is missing."""
    if not harness.is_root():
        raise harness.Skipped("needs root to start Apache with an unprivileged worker user")
    if not os.access(APACHE_BINARY, os.X_OK):
        raise harness.Skipped(f"{APACHE_BINARY} is missing: install apache2 (make deps)")
    for module in BASE_MODULES + SNIPPET_MODULES[snippet]:
        if not os.path.exists(module_path(module)):
            raise harness.Skipped(f"{module_path(module)} is missing: install the Apache module (make deps)")
    try:
        pwd.getpwnam(WEB_USER)
    except KeyError:
        raise harness.Skipped(f"user {WEB_USER} is missing") from None


def module_path(module):
    return os.path.join(MODULES_DIR, f"mod_{module}.so")


def snippet_text(snippet, binary_dir, spool, key_file="", socket_path=""):
    """Returns the shipped snippet with the installed paths replaced by the test's."""
    with open(os.path.join(harness.ROOT, "apache", snippet), encoding="utf-8") as file:
        text = file.read()
    replacements = [(INSTALLED_LIBDIR, binary_dir), (INSTALLED_SPOOL, spool),
                    (INSTALLED_KEY_FILE, key_file), (INSTALLED_SOCKET, socket_path)]
    for installed, own in replacements:
        if installed in text:
            assert own, f"{snippet} names {installed}, but the test gave no path for it"
            text = text.replace(installed, own)
    assert "@PREFIX@" not in text, f"{snippet} has a @PREFIX@ outside {INSTALLED_LIBDIR}"
    return text


class ApacheServer:
    """A running Apache: its port, folder and logs."""

    def __init__(self, folder, port):
        self.folder = folder
        self.port = port

    def post(self, content_type, body, path="/mailgun/inbound", chunked=False, timeout_seconds=180):
        return harness.http_request(self.port, "POST", path, body=body, content_type=content_type,
                                    chunked=chunked, timeout_seconds=timeout_seconds)

    def error_log(self):
        path = os.path.join(self.folder, "error.log")
        if not os.path.exists(path):
            return ""
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()


def short_socket_folder(context):
    """Returns a new folder under /tmp for unix sockets, removed when the test closes.
    Socket paths are limited to about 100 bytes, which the test folder's path can exceed."""
    folder = tempfile.mkdtemp(prefix="mgs-", dir="/tmp")
    os.chmod(folder, 0o755)
    context.on_close(lambda: shutil.rmtree(folder, ignore_errors=True))
    return folder


def start(context, snippet, snippet_body, extra_directives=""):
    """Writes a configuration that Includes snippet_body, starts Apache and waits until it
    listens. extra_directives go after the Include, in server context."""
    folder = context.path("apache")
    os.mkdir(folder)
    os.chmod(folder, 0o755)
    os.mkdir(os.path.join(folder, "htdocs"))
    port = harness.free_port()

    snippet_copy = os.path.join(folder, snippet)
    with open(snippet_copy, "w", encoding="utf-8") as file:
        file.write(snippet_body)
    config = os.path.join(folder, "httpd.conf")
    with open(config, "w", encoding="utf-8") as file:
        file.write(config_text(folder, short_socket_folder(context), port, snippet, snippet_copy,
                               extra_directives))

    checked = subprocess.run([APACHE_BINARY, "-f", config, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, f"apache2 -t rejected {config}:\n{checked.stdout}{checked.stderr}"

    process = context.start([APACHE_BINARY, "-f", config, "-DFOREGROUND"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context.on_close(lambda: harness.stop_pid_file(os.path.join(folder, "httpd.pid")))
    server = ApacheServer(folder, port)
    try:
        harness.wait_for_port(port)
    except AssertionError:
        raise AssertionError(f"Apache (pid {process.pid}) did not start:\n{server.error_log()}") from None
    return server


def config_text(folder, socket_folder, port, snippet, snippet_copy, extra_directives):
    modules = "\n".join(f"LoadModule {module}_module {module_path(module)}"
                        for module in BASE_MODULES + SNIPPET_MODULES[snippet])
    module_state = ""
    if "fcgid" in SNIPPET_MODULES[snippet]:
        module_state += f"FcgidIPCDir {socket_folder}/fcgid\nFcgidProcessTableFile {folder}/fcgid_shm\n"
    if "cgid" in SNIPPET_MODULES[snippet]:
        module_state += f"ScriptSock {socket_folder}/cgid.sock\n"
    return f"""ServerRoot {folder}
{modules}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
User {WEB_USER}
Group {WEB_GROUP}
PidFile {folder}/httpd.pid
DefaultRuntimeDir {folder}
Mutex file:{folder} default
ErrorLog {folder}/error.log
LogLevel info
TypesConfig /dev/null
DocumentRoot {folder}/htdocs
{module_state}
Include {snippet_copy}
{extra_directives}
"""


def spawn_fcgi_binary():
    path = shutil.which("spawn-fcgi")
    if path is None:
        raise harness.Skipped("spawn-fcgi is missing: install it (make deps)")
    return path
