"""The systemd units as make install puts them: checked with systemd-analyze, and their
service started by hand the way systemd would start it, because systemd is not the init
system here. A listening unix socket is passed as standard input, the configuration comes
from the unit's Environment= lines, and requests arrive through a FastCGI client written
below (the server side is the real responder).
"""
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import apache_server
import fastcgi_client
import harness
import test_apache
import test_install

KEY = "systemd-test-key"
UNIT_NAMES = ["mailgun-spool.socket", "mailgun-spool.service", "mailgun-spool@.service"]

def fastcgi_request(socket_path, params, body):
    """Sends one FastCGI responder request; returns (status, headers, body) of the response."""
    return harness.parse_cgi_output(fastcgi_client.post(socket_path, params, body))


def post_params(content_type, body, with_length=True):
    params = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": content_type,
        "SCRIPT_NAME": "/mailgun/inbound",
        "REQUEST_URI": "/mailgun/inbound",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    if with_length:
        params["CONTENT_LENGTH"] = str(len(body))
    return params


def installed_units(context):
    """Installs into a DESTDIR and returns (destdir, {unit name: text})."""
    destdir = test_install.install_tree(context)
    unit_dir = destdir + test_install.PREFIX + "/lib/systemd/system"
    units = {}
    for name in UNIT_NAMES:
        with open(os.path.join(unit_dir, name), encoding="utf-8") as file:
            units[name] = file.read()
    return destdir, units


def unit_settings(text, name):
    """Returns every value of setting name in a unit file, in order."""
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(name + "=")]


def require_systemd_analyze():
    if shutil.which("systemd-analyze") is None:
        raise harness.Skipped("systemd-analyze is missing: install systemd (make deps)")


def test_systemd_units_verify(context):
    require_systemd_analyze()
    destdir, units = installed_units(context)

    # systemd-analyze checks that ExecStart= names an executable, so the copies checked here
    # point into the DESTDIR tree; everything else is as installed.
    folder = context.path("units")
    os.mkdir(folder)
    for name, text in units.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as file:
            file.write(text.replace("ExecStart=/", f"ExecStart={destdir}/"))
    paths = [os.path.join(folder, name) for name in UNIT_NAMES] + [os.path.join(folder, "mailgun-spool@2.service")]
    # Documentation=man:mailgun-spool(8) must resolve to the installed man page.
    environment = dict(os.environ, MANPATH=destdir + test_install.PREFIX + "/share/man")
    verified = subprocess.run(["systemd-analyze", "verify"] + paths, capture_output=True, text=True,
                              env=environment, cwd=folder)
    assert verified.returncode == 0, f"systemd-analyze verify failed:\n{verified.stdout}{verified.stderr}"
    assert verified.stderr.strip() == "", f"systemd-analyze verify warned:\n{verified.stderr}"

    # 1.0 on systemd's scale of 0 (safe) to 10 (exposed); the threshold is given in tenths.
    security = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", "--threshold=10",
                               os.path.join(folder, "mailgun-spool.service")], capture_output=True, text=True,
                              env=environment, cwd=folder)
    assert security.returncode == 0, f"exposure above 1.0:\n{security.stdout}{security.stderr}"


def test_systemd_template_matches_service(context):
    # The template must run the responder exactly as the socket-activated service does.
    _, units = installed_units(context)

    def service_section(text):
        lines = [line for line in text.splitlines() if line and not line.startswith("#")]
        return lines[lines.index("[Service]"):lines.index("[Install]")]

    service = service_section(units["mailgun-spool.service"])
    template = service_section(units["mailgun-spool@.service"])
    assert template == service[:2] + ["Sockets=mailgun-spool.socket"] + service[2:], (
        f"the [Service] sections differ beyond Sockets=:\n{service}\n{template}")
    assert unit_settings(units["mailgun-spool.socket"], "ListenStream") == ["/run/mailgun-spool/fcgi.sock"]
    assert unit_settings(units["mailgun-spool.service"], "StandardInput") == ["socket"]
    assert unit_settings(units["mailgun-spool.service"], "User") == ["mailgun-spool"]


def service_command(context, destdir, service_text, spool, key, log_file):
    """Returns (argv, environment) for the service's ExecStart= with its Environment= lines,
    the spool and credential directory replaced by the test's own."""
    exec_start = unit_settings(service_text, "ExecStart")
    assert len(exec_start) == 1, f"ExecStart= lines: {exec_start}"
    argv = [destdir + part if index == 0 else part for index, part in enumerate(exec_start[0].split())]

    # LoadCredential= copies the key into a directory only the service user can read (%d).
    credentials = context.path("credentials")
    os.mkdir(credentials, 0o500)
    with open(os.path.join(credentials, "signing-key"), "w") as file:
        file.write(key + "\n")
    os.chmod(os.path.join(credentials, "signing-key"), 0o400)
    harness.chown_to_responder(os.path.join(credentials, "signing-key"))
    harness.chown_to_responder(credentials)

    environment = {"PATH": "/usr/bin:/bin", "MAILGUN_SPOOL_LOG": log_file}
    for setting in unit_settings(service_text, "Environment"):
        name, _, value = setting.partition("=")
        value = value.replace("/var/spool/mailgun-spool", spool).replace("%d", credentials)
        environment[name] = value
    assert environment.get("MAILGUN_SPOOL_DIR") == spool, f"Environment= of the unit: {environment}"
    assert environment.get("MAILGUN_SIGNING_KEY_FILE", "").startswith(credentials), environment
    return argv, environment


def listening_socket(path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)
    return listener


def start_service_by_hand(context, argv, environment, listener):
    """Starts one responder process with the listening socket as standard input, as
    StandardInput=socket does, under the unprivileged test user."""
    process = context.start(harness.as_responder_user(argv), stdin=listener.fileno(), env=environment,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return process


def wait_for_exit(process, timeout_seconds=20):
    try:
        return process.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"responder pid {process.pid} still running {timeout_seconds} s after SIGTERM") from None


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.read()


def test_systemd_service_by_hand(context):
    destdir, units = installed_units(context)
    spool = context.make_spool()
    log_file = context.path("responder.log")
    open(log_file, "w").close()
    harness.chown_to_responder(log_file)
    argv, environment = service_command(context, destdir, units["mailgun-spool.service"], spool, KEY, log_file)

    socket_folder = apache_server.short_socket_folder(context)
    socket_path = os.path.join(socket_folder, "fcgi.sock")
    listener = listening_socket(socket_path)
    context.on_close(listener.close)
    first = start_service_by_hand(context, argv, environment, listener)

    content_type, body = test_apache.signed_message_form(KEY, "through the socket")
    status, _, answer = fastcgi_request(socket_path, post_params(content_type, body), body)
    assert status == 200, f"expected 200, got {status} {answer!r}\n{read_text(log_file)}"
    assert len(harness.messages_in(spool)) == 1, f"spool has {harness.messages_in(spool)}"

    # Without CONTENT_LENGTH the body ends with the FastCGI input stream.
    content_type, body = test_apache.signed_message_form(KEY, "no content length")
    status, _, answer = fastcgi_request(socket_path, post_params(content_type, body, with_length=False), body)
    assert status == 200, f"no CONTENT_LENGTH: expected 200, got {status} {answer!r}\n{read_text(log_file)}"
    assert len(harness.messages_in(spool)) == 2, f"spool has {harness.messages_in(spool)}"

    # A second process on the same socket, as mailgun-spool@2.service runs: after the first
    # one stops, the second serves the next request.
    second = start_service_by_hand(context, argv, environment, listener)
    first.send_signal(signal.SIGTERM)
    assert wait_for_exit(first) == 0, f"first responder exited with {first.returncode}"
    content_type, body = test_apache.signed_message_form(KEY, "second process")
    status, _, answer = fastcgi_request(socket_path, post_params(content_type, body), body)
    assert status == 200, f"second process: expected 200, got {status} {answer!r}\n{read_text(log_file)}"
    assert len(harness.messages_in(spool)) == 3, f"spool has {harness.messages_in(spool)}"
    stored_by = {harness.read_meta(spool, message_id)["subject"]: message_id
                 for message_id in harness.messages_in(spool)}
    assert f"-{second.pid}-" in stored_by["second process"], f"not stored by pid {second.pid}: {stored_by}"

    second.send_signal(signal.SIGTERM)
    assert wait_for_exit(second) == 0, f"second responder exited with {second.returncode}"
    log = read_text(log_file)
    assert log.count("status=200") == 3, f"expected three status=200 lines in the log:\n{log}"


def test_systemd_syscalls_within_filter(context):
    # Every system call the responder makes while serving requests must pass the unit's
    # SystemCallFilter=, which systemd would otherwise answer with EPERM.
    require_systemd_analyze()
    strace = shutil.which("strace")
    if strace is None:
        raise harness.Skipped("strace is missing: install strace to check the system call filter")
    destdir, units = installed_units(context)
    allowed, denied = system_call_filter(units["mailgun-spool.service"])

    spool = context.make_spool()
    log_file = context.path("responder.log")
    open(log_file, "w").close()
    harness.chown_to_responder(log_file)
    argv, environment = service_command(context, destdir, units["mailgun-spool.service"], spool, KEY, log_file)
    socket_path = os.path.join(apache_server.short_socket_folder(context), "fcgi.sock")
    listener = listening_socket(socket_path)
    context.on_close(listener.close)

    trace = context.path("strace.out")
    user = harness.RESPONDER_USER if harness.is_root() else None
    command = [strace, "-f", "-qq", "-o", trace] + (["-u", user] if user else []) + argv
    process = context.start(command, stdin=listener.fileno(), env=environment, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    content_type, body = test_apache.signed_message_form(KEY, "traced", os.urandom(1024 * 1024))
    status, _, answer = fastcgi_request(socket_path, post_params(content_type, body), body)
    assert status == 200, f"expected 200, got {status} {answer!r}\n{read_text(log_file)}"
    status, _, _ = fastcgi_request(socket_path, post_params(content_type, body), body)
    assert status == 200, f"retry: expected 200, got {status}"

    # SIGTERM goes to the traced responder; strace exits when it does.
    for responder_pid in traced_children(process.pid):
        os.kill(responder_pid, signal.SIGTERM)
    wait_for_exit(process)
    used = traced_system_calls(trace, argv[0])
    served = bool({"accept", "accept4"} & used) and bool({"fsync", "fdatasync"} & used)
    assert served, f"the trace does not cover serving a request: {sorted(used)}"
    outside = sorted(name for name in used if name in denied or name not in allowed)
    assert outside == [], f"system calls the unit's SystemCallFilter= would reject: {outside}"


def traced_children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as file:
        children = [int(child) for child in file.read().split()]
    assert children, f"strace (pid {pid}) has no child process"
    return children


def system_call_filter(service_text):
    """Returns (allowed, denied) system call names for the unit's SystemCallFilter= lines,
    with the groups expanded by systemd-analyze."""
    allowed, denied = set(), set()
    for setting in unit_settings(service_text, "SystemCallFilter"):
        target = denied if setting.startswith("~") else allowed
        for item in setting.lstrip("~").split():
            target |= expand_system_call_group(item) if item.startswith("@") else {item}
    return allowed, denied


def expand_system_call_group(group):
    listed = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", group], capture_output=True,
                            text=True, check=True).stdout
    names = set()
    for line in listed.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        names |= expand_system_call_group(item) if item.startswith("@") else {item}
    return names


def traced_system_calls(trace, binary):
    """Returns the system call names in an strace -f output, from the execve of binary on."""
    names = set()
    started = False
    with open(trace, encoding="utf-8", errors="replace") as file:
        for line in file:
            if not started:
                started = f'execve("{binary}"' in line
                continue
            match = re.match(r"\d+\s+(?:<\.\.\. )?([a-z0-9_]+)(?:\(| resumed>)", line)
            if match:
                names.add(match.group(1))
    assert started, f"no execve of {binary} in {trace}"
    return names


def test_systemd_memory_below_limit(context):
    # MemoryMax= must leave room for the largest request the responder accepts. The heaviest
    # kind measured so far is a raw MIME message (body-mime) with a large base64 attachment,
    # so one CGI run with such a body near the 64 MiB maximum is measured here.
    _, units = installed_units(context)
    memory_max = unit_settings(units["mailgun-spool.service"], "MemoryMax")
    assert len(memory_max) == 1 and re.fullmatch(r"\d+[MG]", memory_max[0]), f"MemoryMax= is {memory_max}"
    limit_bytes = int(memory_max[0][:-1]) << (20 if memory_max[0].endswith("M") else 30)

    binary = harness.responder_binary()
    spool = context.make_spool()
    key_file = harness.write_key_file(context, KEY)
    message = (b"From: sender@example.com\r\nTo: inbox@example.org\r\nSubject: near the maximum\r\n"
               b"MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(os.urandom(45 * 1024 * 1024)))
    content_type, body = harness.encode_multipart([("recipient", "inbox@example.org"), ("body-mime", message)]
                                                  + harness.signed_fields(KEY))
    body_file = context.path("body")
    with open(body_file, "wb") as file:
        file.write(body)
    body_length = len(body)

    environment = {"PATH": "/usr/bin:/bin", "REQUEST_METHOD": "POST", "CONTENT_TYPE": content_type,
                   "CONTENT_LENGTH": str(body_length), "MAILGUN_SPOOL_DIR": spool,
                   "MAILGUN_SIGNING_KEY_FILE": key_file}
    # GNU time measures the responder alone. The wait4 figure of a child of this process would
    # also count the pages of this test's own large buffers, copied into the child at fork.
    peak_file = context.path("peak-kilobytes")
    command = ["/usr/bin/time", "-f", "%M", "-o", peak_file] + harness.as_responder_user([binary])
    with open(body_file, "rb") as stdin, open(context.path("answer"), "wb") as stdout:
        subprocess.run(command, stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL, env=environment, check=False)
    with open(context.path("answer"), "rb") as file:
        status, _, answer = harness.parse_cgi_output(file.read())
    assert status == 200, f"expected 200, got {status} {answer!r}"

    with open(peak_file) as file:
        peak_bytes = int(file.read().split()[-1]) * 1024
    assert peak_bytes < limit_bytes // 2, (f"peak resident size {peak_bytes >> 20} MiB for a {body_length >> 20} MiB "
                                           f"request leaves less than half of MemoryMax={memory_max[0]} free")
