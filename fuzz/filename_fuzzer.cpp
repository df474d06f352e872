// Decodes a sent attachment name from a fuzzed Content-Disposition and Content-Type, then
// makes safe names from it, and checks every name against the rules a safe name must meet.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "filename.h"
#include "fuzz_support.h"

using namespace mgspool;

namespace {

constexpr std::array<const char*, 7> k_fallback_charsets = {"", "utf-8", "windows-1251", "iso-2022-jp",
                                                            "shift_jis", "koi8-r", "no-such-charset"};
constexpr std::array<const char*, 4> k_content_types = {"application/octet-stream", "image/png", "message/rfc822",
                                                        "text/plain; charset=utf-8"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  const char* fallback_charset = input.PickValueInArray(k_fallback_charsets);
  const char* allocated_type = input.PickValueInArray(k_content_types);
  std::string disposition = input.ConsumeRandomLengthString();
  std::string content_type = input.ConsumeRandomLengthString();
  std::string subject = input.ConsumeRemainingBytesAsString();

  std::optional<std::string> sent = decode_sent_filename(disposition, content_type, fallback_charset);
  fuzzing::check(!sent || fuzzing::is_strict_utf8(*sent), "decoded sent name is not UTF-8", sent.value_or(""));

  // The same name twice exercises the " (2)" rule. R4 uses the Subject when the name is empty.
  SafeNameAllocator names;
  std::string first = names.allocate(sent, allocated_type, 1, subject);
  std::string second = names.allocate(sent, allocated_type, 2, subject);
  std::string unnamed = names.allocate(std::nullopt, content_type, 3);
  for (const std::string& name : {first, second, unnamed}) {
    fuzzing::check_safe_name(name);
  }
  fuzzing::check(first != second, "a repeated name was handed out twice", first);
  return 0;
}
