// The first pass over a form: the signature fields alone, found without building the form.
//
// The signature is checked before anything is written or parsed in full, so that an
// unsigned request costs little. This pass keeps only the timestamp, token and signature
// values, each capped, and never hands the body to GMime, whose parser builds every header
// and part in memory whatever the request holds.
#pragma once

#include <string>
#include <string_view>

namespace mgspool {

struct SignatureFields {
  std::string timestamp;  // as sent; cut one byte past k_max_signature_field_bytes
  std::string token;
  std::string signature;
  int timestamp_count = 0;  // how often each non-file field occurred
  int token_count = 0;
  int signature_count = 0;
  bool closed = true;  // multipart only: the closing delimiter was seen

  // Returns true when each of the three fields occurred exactly once.
  bool complete() const { return timestamp_count == 1 && token_count == 1 && signature_count == 1; }
};

// Reads the signature fields of a multipart/form-data body in the file behind fd, given the
// request's Content-Type. Lines are read in chunks and at most a few kilobytes of any line
// or header block are kept. A delimiter is "--" and the boundary followed by white space
// only, as GMime reads one. Throws RequestError(malformed_request) when the Content-Type has no
// boundary, and RequestError on a failed read.
SignatureFields read_multipart_signature_fields(int fd, std::string_view content_type);

// Reads the signature fields of an application/x-www-form-urlencoded body in the file.
SignatureFields read_urlencoded_signature_fields(int fd);

}  // namespace mgspool
