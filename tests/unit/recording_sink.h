// A FieldSink for tests: records every field with its whole value and the largest piece
// that append() received.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "form.h"

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

  std::vector<RecordedField> fields;
  std::size_t largest_piece = 0;

 private:
  bool m_open = false;
};

}  // namespace mgspool::testing
