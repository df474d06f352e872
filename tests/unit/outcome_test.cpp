#include "outcome.h"

#include <doctest/doctest.h>

#include <cerrno>

using mgspool::Outcome;
using mgspool::status_for;

TEST_CASE("status for every outcome") {
  struct Row {
    Outcome outcome;
    int status;
  };
  const Row rows[] = {
      {Outcome::stored, 200},
      {Outcome::already_stored, 200},
      {Outcome::signature_missing, 403},
      {Outcome::signature_mismatch, 403},
      {Outcome::signature_stale, 403},
      {Outcome::method_not_allowed, 405},
      {Outcome::invalid_content_length, 406},
      {Outcome::request_too_large, 406},
      {Outcome::malformed_request, 406},
      {Outcome::unsupported_media_type, 406},
      {Outcome::event_webhook, 406},
      {Outcome::body_truncated, 500},
      {Outcome::no_signing_key, 500},
      {Outcome::local_failure, 500},
      {Outcome::published_not_synced, 500},
      {Outcome::below_free_space, 503},
  };
  for (const Row& row : rows) {
    CAPTURE(mgspool::reason_for(row.outcome));
    CHECK(status_for(row.outcome) == row.status);
  }
}

TEST_CASE("errno failures are retryable") {
  const int errors[] = {ENOSPC, EDQUOT, EIO, EROFS, EACCES, EMFILE, ENOMEM, EEXIST};
  for (int error : errors) {
    CAPTURE(error);
    Outcome outcome = mgspool::outcome_for_errno(error);
    CHECK(status_for(outcome) == 500);
  }
}
