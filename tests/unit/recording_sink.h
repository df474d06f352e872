// A FieldSink for tests: records every field with its whole value and the largest piece
// that append() received.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "form.h"
#include "signature.h"

namespace mgspool::testing {

struct RecordedField {
  FieldHead head;
  std::string value;
};

class RecordingSink : public FieldSink {
 public:
  void begin_field(const FieldHead& head) override {
    CHECK_FALSE(m_open);
    m_open = true;
    fields.push_back(RecordedField{head, {}});
  }

  void append(std::string_view bytes) override {
    REQUIRE(m_open);
    largest_piece = std::max(largest_piece, bytes.size());
    fields.back().value.append(bytes);
  }

  void end_field() override {
    CHECK(m_open);
    m_open = false;
  }

  // Returns the values of every field with this name, in request order.
  std::vector<std::string> values_of(std::string_view name) const {
    std::vector<std::string> values;
    for (const RecordedField& field : fields) {
      if (field.head.name == name) {
        values.push_back(field.value);
      }
    }
    return values;
  }

  // Checks that the form carries each signature field once and that they verify under key
  // at the time now_seconds (the freshness check is off).
  void check_signed_with(std::string_view key, std::int64_t now_seconds) const {
    auto timestamps = values_of("timestamp");
    auto tokens = values_of("token");
    auto signatures = values_of("signature");
    REQUIRE(timestamps.size() == 1);
    REQUIRE(tokens.size() == 1);
    REQUIRE(signatures.size() == 1);
    CHECK(verify_signature(key, timestamps[0], tokens[0], signatures[0], now_seconds, 0) == SignatureCheck::valid);
  }

  std::vector<RecordedField> fields;
  std::size_t largest_piece = 0;

 private:
  bool m_open = false;
};

}  // namespace mgspool::testing
