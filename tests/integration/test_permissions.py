"""Who may read the spool: the responder's own user writes it, an account in the spool's
group reads messages and moves them from new/ to cur/, and any other account can do
neither. The spool is created by the install -d line that the man page and the service
unit document. Also: started as root, the responder stores nothing.

Throwaway system accounts are created with groupadd and useradd and deleted again when
the test closes, so these tests need root.
"""
import os
import pwd
import stat
import subprocess
import sys
import textwrap

import harness
import test_apache

KEY = "permissions-test-key"
# The system's Python, which other users can run; the test runner's own may sit in root's home.
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def require_root():
    if not harness.is_root():
        raise harness.Skipped("needs root to create throwaway users and groups")


def run_checked(command):
    completed = subprocess.run(command, capture_output=True, text=True)
    assert completed.returncode == 0, f"{' '.join(command)} failed: {completed.stderr}"


def create_accounts(context):
    """Creates a group, a responder user whose primary group it is, a consumer in the group
    and an outsider; returns their names. All are removed again in on_close."""
    suffix = os.urandom(3).hex()
    group = f"mgs-spool-{suffix}"
    users = {"responder": f"mgs-resp-{suffix}", "consumer": f"mgs-read-{suffix}", "outsider": f"mgs-out-{suffix}",
             "web": f"mgs-web-{suffix}"}

    run_checked(["groupadd", "--system", group])
    context.on_close(lambda: subprocess.run(["groupdel", group], capture_output=True))
    common = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    run_checked(common + ["--gid", group, users["responder"]])
    run_checked(common + ["--user-group", "--groups", group, users["consumer"]])
    run_checked(common + ["--user-group", users["outsider"]])
    # Like www-data under mod_fcgid: a primary group of its own, and a member of the spool's.
    run_checked(common + ["--user-group", "--groups", group, users["web"]])
    for user in users.values():
        # userdel removes the user's own group too (USERGROUPS_ENAB), but not the shared one.
        context.on_close(lambda user=user: subprocess.run(["userdel", user], capture_output=True))
    return group, users


def as_user(user, command):
    """Runs command as user with the user's own groups, as a login would set them."""
    return ["setpriv", f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}", "--init-groups", "--"] + command


def python_as(user, code):
    return subprocess.run(as_user(user, [PYTHON, "-c", textwrap.dedent(code)]), capture_output=True,
                          text=True)


def store_message_as(context, responder, spool, log_file=None):
    """Runs the responder once as CGI as the responder user; returns the new message ID."""
    key_file = context.path("signing-key")
    with open(key_file, "w") as file:
        file.write(KEY + "\n")
    os.chmod(key_file, 0o400)
    os.chown(key_file, pwd.getpwnam(responder).pw_uid, 0)

    content_type, body = test_apache.signed_message_form(KEY, "permissions")
    environment = {"PATH": "/usr/bin:/bin", "REQUEST_METHOD": "POST", "CONTENT_TYPE": content_type,
                   "CONTENT_LENGTH": str(len(body)), "MAILGUN_SPOOL_DIR": spool,
                   "MAILGUN_SIGNING_KEY_FILE": key_file}
    if log_file:
        environment["MAILGUN_SPOOL_LOG"] = log_file
    completed = subprocess.run(as_user(responder, [harness.responder_binary()]), input=body, env=environment,
                               capture_output=True, timeout=60)
    status, _, answer = harness.parse_cgi_output(completed.stdout)
    assert status == 200, f"responder answered {status} {answer!r}: {completed.stderr.decode(errors='replace')}"
    messages = harness.messages_in(spool)
    assert len(messages) == 1, f"spool has {messages}"
    return messages[0]


def documented_spool(context, owner, group):
    """Creates the spool with the documented line:
    install -d -o mailgun-spool -g mailgun-spool -m 2750 /var/spool/mailgun-spool"""
    spool = context.path("spool")
    run_checked(["install", "-d", "-o", owner, "-g", group, "-m", "2750", spool])
    return spool


def test_permissions_group_member_reads_and_moves(context):
    require_root()
    group, users = create_accounts(context)
    spool = documented_spool(context, users["responder"], group)
    message_id = store_message_as(context, users["responder"], spool)

    message_dir = os.path.join(spool, "new", message_id)
    info = os.stat(message_dir)
    assert stat.S_IMODE(info.st_mode) == 0o2770, f"{message_dir} mode {oct(stat.S_IMODE(info.st_mode))}"
    for name in os.listdir(message_dir):
        file_info = os.stat(os.path.join(message_dir, name))
        assert stat.S_IMODE(file_info.st_mode) == 0o640, f"{name} mode {oct(stat.S_IMODE(file_info.st_mode))}"
        assert file_info.st_gid == info.st_gid, f"{name} is not in the spool's group"

    consumer = python_as(users["consumer"], f"""
        import json, os
        with open({os.path.join(message_dir, "meta.json")!r}) as file:
            assert json.load(file)["subject"] == "permissions"
        os.rename({message_dir!r}, {os.path.join(spool, "cur", message_id)!r})
    """)
    assert consumer.returncode == 0, f"the consumer could not read or move the message: {consumer.stderr}"
    assert harness.messages_in(spool) == [], "the message is still in new/"
    assert harness.messages_in(spool, "cur") == [message_id], "the message did not arrive in cur/"


def test_permissions_web_server_user_in_group(context):
    require_root()
    group, users = create_accounts(context)
    spool = documented_spool(context, users["web"], group)
    message_id = store_message_as(context, users["web"], spool)
    message_dir = os.path.join(spool, "new", message_id)

    group_id = os.stat(spool).st_gid
    for folder in ("tmp", "new", "cur", os.path.join("new", message_id)):
        info = os.stat(os.path.join(spool, folder))
        assert info.st_gid == group_id, f"{folder} is not in the spool's group"
        assert info.st_mode & stat.S_ISGID, f"{folder} lost its set-group-ID bit"
    consumer = python_as(users["consumer"], f"""
        import os
        open({os.path.join(message_dir, "meta.json")!r}).read()
        os.rename({message_dir!r}, {os.path.join(spool, "cur", message_id)!r})
    """)
    assert consumer.returncode == 0, f"the consumer could not read or move the message: {consumer.stderr}"


def test_permissions_responder_outside_group_warns(context):
    require_root()
    group, users = create_accounts(context)
    spool = documented_spool(context, users["outsider"], group)
    log_file = context.path("responder.log")
    open(log_file, "w").close()
    os.chown(log_file, pwd.getpwnam(users["outsider"]).pw_uid, 0)
    store_message_as(context, users["outsider"], spool, log_file)
    with open(log_file) as file:
        log = file.read()
    assert "is not in group" in log, log
    assert "usermod -a -G" in log


def test_permissions_outsider_cannot_read(context):
    require_root()
    group, users = create_accounts(context)
    spool = documented_spool(context, users["responder"], group)
    message_id = store_message_as(context, users["responder"], spool)
    message_dir = os.path.join(spool, "new", message_id)

    checks = {
        "read meta.json": f"open({os.path.join(message_dir, 'meta.json')!r}).read()",
        "list new/": f"import os; os.listdir({os.path.join(spool, 'new')!r})",
        "list the spool": f"import os; os.listdir({spool!r})",
        "move to cur/": f"import os; os.rename({message_dir!r}, {os.path.join(spool, 'cur', message_id)!r})",
    }
    for action, code in checks.items():
        outsider = python_as(users["outsider"], code)
        assert outsider.returncode != 0, f"an account outside the group could {action}"
        assert "PermissionError" in outsider.stderr, f"{action}: failed for another reason: {outsider.stderr}"
    assert harness.messages_in(spool) == [message_id], "the message moved"


def test_permissions_root_stores_nothing(context):
    require_root()
    spool = context.path("spool")
    os.mkdir(spool, 0o750)
    log_file = context.path("responder.log")
    key_file = context.path("signing-key")
    with open(key_file, "w") as file:
        file.write(KEY + "\n")

    content_type, body = test_apache.signed_message_form(KEY, "as root")
    environment = {"PATH": "/usr/bin:/bin", "REQUEST_METHOD": "POST", "CONTENT_TYPE": content_type,
                   "CONTENT_LENGTH": str(len(body)), "MAILGUN_SPOOL_DIR": spool,
                   "MAILGUN_SIGNING_KEY_FILE": key_file, "MAILGUN_SPOOL_LOG": log_file}
    completed = subprocess.run([harness.responder_binary()], input=body, env=environment, capture_output=True,
                               timeout=60)
    status, _, _ = harness.parse_cgi_output(completed.stdout)
    assert status == 500, f"running as root answered {status}"
    assert completed.returncode == 1, f"running as root exited with {completed.returncode}"
    assert harness.messages_in(spool) == [], "a message was stored by a responder running as root"
    assert os.listdir(spool) == [], f"the responder created {os.listdir(spool)} as root"

    logged = completed.stderr.decode(errors="replace")
    if os.path.exists(log_file):
        with open(log_file, encoding="utf-8", errors="replace") as file:
            logged += file.read()
    assert "refusing to run as root" in logged, f"the log does not say why: {logged!r}"
