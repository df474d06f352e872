// Parses the input as a multipart/form-data body with a fixed boundary, from a memfd, and
// checks the sink's call order. RequestError is the expected way to reject a body.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "file_io.h"
#include "form.h"
#include "fuzz_support.h"
#include "request_error.h"

using namespace mgspool;

namespace {

constexpr std::string_view k_content_type = "multipart/form-data; boundary=fuzz-boundary";

class CheckingSink : public FieldSink {
 public:
  void begin_field(const FieldHead&) override {
    fuzzing::check(!field_open, "begin_field while a field is open");
    field_open = true;
  }
  void append(std::string_view bytes) override {
    fuzzing::check(field_open, "append outside a field", bytes);
    value_bytes += bytes.size();
  }
  void end_field() override {
    fuzzing::check(field_open, "end_field without begin_field");
    field_open = false;
  }

  bool field_open = false;
  std::size_t value_bytes = 0;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzzing::initialize_gmime();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  UniqueFd body(memfd_create("multipart-body", MFD_CLOEXEC));
  fuzzing::check(body.valid(), "memfd_create failed");
  write_all(body.get(), std::string_view(reinterpret_cast<const char*>(data), size), "fuzz body");

  CheckingSink sink;
  try {
    parse_multipart_file(body.get(), k_content_type, sink);
  } catch (const RequestError& error) {
    // A memfd does not fail to read, so only a malformed body, or one without its closing
    // delimiter (taken as cut short), may be rejected.
    fuzzing::check(error.outcome() == Outcome::malformed_request || error.outcome() == Outcome::body_truncated,
                   "unexpected RequestError", error.what());
    return 0;
  }
  fuzzing::check(!sink.field_open, "parse ended with a field open");
  // Values are copied as sent or decoded (base64, quoted-printable), which only shrinks them.
  fuzzing::check(sink.value_bytes <= size, "values are longer than the body");
  return 0;
}
