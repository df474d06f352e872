"""Token memory across processes: records stay for the retention time and are pruned after
it, at most once an hour, also when every request is a new CGI process."""
import os
import time
import urllib.parse

import harness

KEY = "token-memory-key"
EIGHT_DAYS_SECONDS = 8 * 24 * 60 * 60
TWO_HOURS_SECONDS = 2 * 60 * 60


def post(spool, token):
    timestamp = str(int(time.time()))
    body = urllib.parse.urlencode([("subject", "Tokens"), ("body-plain", "Hi\n"), ("timestamp", timestamp),
                                   ("token", token), ("signature", harness.sign(KEY, timestamp, token))]).encode()
    status, _, _, log = harness.run_cgi(harness.responder_binary(), spool, body, "application/x-www-form-urlencoded",
                                        extra_env={"MAILGUN_SIGNING_KEY": KEY})
    assert status == 200, log
    return log


def age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_old_tokens_pruned_hourly(context):
    spool = context.make_spool()
    post(spool, "old-token")
    tokens = os.path.join(spool, "private", "tokens")
    records = os.listdir(tokens)
    assert len(records) == 1
    old_record = os.path.join(tokens, records[0])
    last_prune = os.path.join(spool, "private", "last-prune")
    assert os.path.exists(last_prune)

    # A prune ran within the hour: the old record stays although it is past the retention.
    age(old_record, EIGHT_DAYS_SECONDS)
    post(spool, "second-token")
    assert os.path.exists(old_record)

    # The last prune is two hours old: this request prunes, and the old record goes.
    age(last_prune, TWO_HOURS_SECONDS)
    post(spool, "third-token")
    assert not os.path.exists(old_record)
    assert len(os.listdir(tokens)) == 2

    # A forgotten token is stored again; a remembered one is not.
    assert "already stored" in post(spool, "third-token")
    assert "reason=\"stored\"" in post(spool, "old-token")
    assert len(harness.messages_in(spool)) == 4
