// Feeds UrlencodedDecoder the input (after its first byte) in two pieces split where the
// first byte says, and checks the sink's call order and that the split changes nothing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "form.h"
#include "fuzz_support.h"
#include "request_error.h"

using namespace mgspool;

namespace {

// Records the fields and checks begin_field, append, end_field arrive in that order.
class CheckingSink : public FieldSink {
 public:
  void begin_field(const FieldHead& head) override {
    fuzzing::check(!field_open, "begin_field while a field is open", head.name);
    fuzzing::check(head.name.size() <= k_max_field_name_bytes, "field name longer than the limit", head.name);
    field_open = true;
    fields.push_back(head.name + '=');
  }
  void append(std::string_view bytes) override {
    fuzzing::check(field_open, "append outside a field", bytes);
    fuzzing::check(!bytes.empty() && bytes.size() <= k_io_buffer_bytes, "append piece size out of range", bytes);
    fields.back().append(bytes);
  }
  void end_field() override {
    fuzzing::check(field_open, "end_field without begin_field");
    field_open = false;
  }

  std::vector<std::string> fields;
  bool field_open = false;
};

// Decodes body fed as two pieces cut at split. Returns "name=value" per field, ending in
// "<RequestError>" when the decoder threw.
std::vector<std::string> decode(std::string_view body, std::size_t split) {
  CheckingSink sink;
  try {
    UrlencodedDecoder decoder(sink);
    decoder.feed(body.substr(0, split));
    decoder.feed(body.substr(split));
    decoder.finish();
  } catch (const RequestError&) {
    sink.fields.push_back("<RequestError>");
    return sink.fields;
  }
  fuzzing::check(!sink.field_open, "finish left a field open");
  return sink.fields;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::size_t split = body.empty() ? 0 : data[0] * body.size() / 255;

  std::vector<std::string> whole = decode(body, body.size());
  std::vector<std::string> pieces = decode(body, split);
  fuzzing::check(whole == pieces, "splitting the body changed the fields", body);
  return 0;
}
