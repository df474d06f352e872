// Reads the signature fields of the input as a multipart/form-data body with a fixed
// boundary, from a memfd: the first pass every unsigned request goes through. Values must
// stay capped and the input may never make it throw anything but a malformed request.
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "file_io.h"
#include "fuzz_support.h"
#include "request_error.h"
#include "signature_fields.h"
#include "spool_limits.h"

using namespace mgspool;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  UniqueFd body(memfd_create("signature-body", MFD_CLOEXEC));
  fuzzing::check(body.valid(), "memfd_create failed");
  write_all(body.get(), std::string_view(reinterpret_cast<const char*>(data), size), "fuzz body");

  SignatureFields fields;
  try {
    fields = read_multipart_signature_fields(body.get(), "multipart/form-data; boundary=fuzz-boundary");
  } catch (const RequestError& error) {
    fuzzing::fail("unexpected RequestError", error.what());
  }
  for (const std::string* value : {&fields.timestamp, &fields.token, &fields.signature}) {
    fuzzing::check(value->size() <= k_max_signature_field_bytes + 1, "a value is longer than the cap", *value);
    fuzzing::check(value->size() <= size, "a value is longer than the body", *value);
  }
  fuzzing::check(fields.timestamp_count >= 0 && fields.token_count >= 0 && fields.signature_count >= 0,
                 "a negative field count");
  return 0;
}
