#!/bin/sh
# Starts mailgun-spool as FastCGI processes behind nginx (nginx/mailgun-spool.conf).
#
# Run it as root: spawn-fcgi creates the unix socket, gives it to nginx's user with mode
# 0600 so that no other local user can post to the responder, then starts the processes
# as the unprivileged user that owns the spool. Every setting below can be overridden from
# the environment; the defaults are the installed paths (make install puts this script
# beside the binary with @PREFIX@ replaced).
#
# Stop the processes by the pids in MAILGUN_SPOOL_PID_FILE (one per line); each finishes
# the request in progress on SIGTERM.
set -eu

binary=${MAILGUN_SPOOL_BINARY:-@PREFIX@/lib/mailgun-spool/mailgun-spool}
socket=${MAILGUN_SPOOL_SOCKET:-/run/mailgun-spool/fcgi.sock}
pid_file=${MAILGUN_SPOOL_PID_FILE:-/run/mailgun-spool/spawn-fcgi.pid}
# Each process serves one request at a time, so this is the number of requests handled
# in parallel. nginx queues the others on the socket.
processes=${MAILGUN_SPOOL_PROCESSES:-4}
# The responder's own user and group: the spool belongs to them.
user=${MAILGUN_SPOOL_USER:-mailgun-spool}
group=${MAILGUN_SPOOL_GROUP:-mailgun-spool}
# The user nginx's worker processes run as (www-data on Debian, nginx on Red Hat).
socket_user=${MAILGUN_SPOOL_SOCKET_USER:-www-data}
socket_group=${MAILGUN_SPOOL_SOCKET_GROUP:-$socket_user}

# The responder reads its configuration from these variables, which spawn-fcgi passes on.
export MAILGUN_SPOOL_DIR="${MAILGUN_SPOOL_DIR:-/var/spool/mailgun-spool}"
export MAILGUN_SIGNING_KEY_FILE="${MAILGUN_SIGNING_KEY_FILE:-/etc/mailgun-spool/signing-key}"
# spawn-fcgi connects the processes' standard error to /dev/null, so the default log
# target is syslog. Set an absolute file path to log to a file instead.
export MAILGUN_SPOOL_LOG="${MAILGUN_SPOOL_LOG:-syslog}"

if [ ! -x "$binary" ]; then
    echo "spawn-fcgi.sh: $binary is missing or not executable; set MAILGUN_SPOOL_BINARY" >&2
    exit 1
fi
mkdir -p "$(dirname "$socket")" "$(dirname "$pid_file")"

if [ "$(id -u)" -eq 0 ]; then
    exec spawn-fcgi -s "$socket" -M 0600 -U "$socket_user" -G "$socket_group" \
        -u "$user" -g "$group" -F "$processes" -P "$pid_file" -- "$binary"
fi

# Without root the socket and the processes stay with the calling user, which must then
# be the user nginx's workers run as (a development setup).
exec spawn-fcgi -s "$socket" -M 0600 -F "$processes" -P "$pid_file" -- "$binary"
