"""make install and make uninstall into a staging folder (DESTDIR), the installed responder
run once as CGI, and the man page's rendering."""
import os
import shutil
import subprocess

import harness
import test_apache

KEY = "install-test-key"
PREFIX = "/usr/local"

# Every file make install puts under DESTDIR, relative to PREFIX.
EXPECTED_FILES = [
    "lib/mailgun-spool/installed-folders",
    "lib/mailgun-spool/mailgun-spool",
    "lib/mailgun-spool/spawn-fcgi.sh",
    "lib/systemd/system/mailgun-spool.service",
    "lib/systemd/system/mailgun-spool.socket",
    "lib/systemd/system/mailgun-spool@.service",
    "share/doc/mailgun-spool/examples/apache/mailgun-spool-cgid.conf",
    "share/doc/mailgun-spool/examples/apache/mailgun-spool-fcgid.conf",
    "share/doc/mailgun-spool/examples/apache/mailgun-spool-proxy-fcgi.conf",
    "share/doc/mailgun-spool/examples/systemd/mailgun-spool.service",
    "share/doc/mailgun-spool/examples/systemd/mailgun-spool.socket",
    "share/doc/mailgun-spool/examples/systemd/mailgun-spool@.service",
    "share/man/man8/mailgun-spool.8",
]


def run_make(target, destdir, prefix=PREFIX):
    """Runs make target with DESTDIR and PREFIX; never rebuilds the responder, so the test
    installs the binary the other tests ran."""
    harness.responder_binary()  # fails with a clear message when build/mailgun-spool is missing
    completed = subprocess.run(["make", "-s", "-o", "build/mailgun-spool", target, f"DESTDIR={destdir}",
                                f"PREFIX={prefix}"], cwd=harness.ROOT, capture_output=True, text=True)
    assert completed.returncode == 0, f"make {target} failed:\n{completed.stdout}{completed.stderr}"
    return completed


def files_under(folder):
    found = []
    for parent, _, names in os.walk(folder):
        found += [os.path.relpath(os.path.join(parent, name), folder) for name in names]
    return sorted(found)


def folders_under(folder):
    found = []
    for parent, names, _ in os.walk(folder):
        found += [os.path.relpath(os.path.join(parent, name), folder) for name in names]
    return sorted(found)


def install_tree(context):
    """Installs into a fresh DESTDIR that the responder user can traverse; returns it."""
    destdir = context.path("destdir")
    os.mkdir(destdir)
    os.chmod(destdir, 0o755)
    run_make("install", destdir)
    return destdir


def test_install_puts_expected_files(context):
    destdir = install_tree(context)
    prefix_dir = destdir + PREFIX

    installed = [name for name in files_under(prefix_dir) if "/examples/nginx/" not in name]
    assert installed == EXPECTED_FILES, f"installed files: {installed}"
    nginx_examples = sorted(os.listdir(os.path.join(prefix_dir, "share/doc/mailgun-spool/examples/nginx")))
    repository_nginx = sorted(name for name in os.listdir(os.path.join(harness.ROOT, "nginx"))
                              if name.endswith((".conf", ".sh")))
    assert nginx_examples == repository_nginx, f"nginx examples {nginx_examples} != {repository_nginx}"

    binary = os.path.join(prefix_dir, "lib/mailgun-spool/mailgun-spool")
    assert os.stat(binary).st_mode & 0o777 == 0o755, f"{binary} mode {oct(os.stat(binary).st_mode)}"

    for name in files_under(prefix_dir):
        if name.endswith("/mailgun-spool"):
            continue
        with open(os.path.join(prefix_dir, name), encoding="utf-8") as file:
            assert "@PREFIX@" not in file.read(), f"{name} still contains @PREFIX@"

    for unit in ("mailgun-spool.service", "mailgun-spool@.service"):
        with open(os.path.join(prefix_dir, "lib/systemd/system", unit), encoding="utf-8") as file:
            exec_start = [line for line in file.read().splitlines() if line.startswith("ExecStart=")]
        assert exec_start == [f"ExecStart={PREFIX}/lib/mailgun-spool/mailgun-spool"], f"{unit}: {exec_start}"


def test_installed_binary_stores_message(context):
    destdir = install_tree(context)
    binary = destdir + PREFIX + "/lib/mailgun-spool/mailgun-spool"
    spool = context.make_spool()
    key_file = harness.write_key_file(context, KEY)

    content_type, body = test_apache.signed_message_form(KEY, "installed binary")
    status, _, answer, log = harness.run_cgi(binary, spool, body, content_type,
                                             extra_env={"MAILGUN_SIGNING_KEY_FILE": key_file})
    assert status == 200, f"installed binary answered {status} {answer!r}; log: {log}"
    messages = harness.messages_in(spool)
    assert len(messages) == 1, f"spool has {messages}"
    assert harness.read_meta(spool, messages[0])["subject"] == "installed binary"


def test_uninstall_leaves_nothing(context):
    destdir = install_tree(context)
    run_make("uninstall", destdir)
    assert files_under(destdir) == [], f"left behind: {files_under(destdir)}"
    assert folders_under(destdir) == [], f"folders left behind: {folders_under(destdir)}"


def test_uninstall_keeps_existing_folders(context):
    # Folders that were there before make install, and files of other programs in them, stay.
    destdir = context.path("destdir")
    man8 = destdir + PREFIX + "/share/man/man8"
    os.makedirs(man8)
    other_page = os.path.join(man8, "other.8")
    open(other_page, "w").close()
    empty_unit_dir = destdir + PREFIX + "/lib/systemd/system"
    os.makedirs(empty_unit_dir)

    run_make("install", destdir)
    run_make("install", destdir)  # a second install must not forget what the first created
    run_make("uninstall", destdir)

    assert files_under(destdir) == [os.path.relpath(other_page, destdir)], f"files: {files_under(destdir)}"
    expected_folders = sorted(["usr", "usr/local", "usr/local/lib", "usr/local/lib/systemd",
                               "usr/local/lib/systemd/system", "usr/local/share", "usr/local/share/man",
                               "usr/local/share/man/man8"])
    assert folders_under(destdir) == expected_folders, f"folders: {folders_under(destdir)}"


def test_man_page_renders(context):
    for tool in ("groff", "man"):
        if shutil.which(tool) is None:
            raise harness.Skipped(f"{tool} is missing: install groff-base and man-db")
    page = os.path.join(harness.ROOT, "docs", "mailgun-spool.8")
    checked = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True, text=True)
    assert checked.returncode == 0, f"groff failed: {checked.stderr}"
    assert checked.stderr == "", f"groff warnings: {checked.stderr}"

    rendered = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", "MANWIDTH": "80", "MANPAGER": "cat", "LANG": "C.UTF-8"})
    assert rendered.returncode == 0, f"man -l failed: {rendered.stderr}"
    for section in ("NAME", "SYNOPSIS", "OPTIONS", "ENVIRONMENT", "SPOOL FORMAT", "STATUS CODES", "FILES",
                    "EXAMPLES"):
        assert f"\n{section}\n" in rendered.stdout, f"section {section} missing from the rendered page"
