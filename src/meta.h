// meta.json: the description of one stored message, the spool's public contract.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "field_collector.h"
#include "part_record.h"

namespace mgspool {

inline constexpr int k_meta_schema_version = 1;
inline constexpr const char* k_meta_file = "meta.json";

struct MessageMeta {
  std::string id;
  std::string received_at;  // RFC 3339 UTC
  std::string format;       // "mime", "parsed" or "notify"
  std::vector<TextField> fields;
  HeaderList headers;
  std::vector<std::string> defects;
  std::vector<PartRecord> parts;
  // Additions for particular formats (announced attachments of a store() notification,
  // the declared attachment count), merged in after the standard keys.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

// Builds the JSON document. Every string is valid UTF-8: invalid bytes in field values and
// headers become U+FFFD (the raw bytes survive in the stored files).
nlohmann::ordered_json build_meta_json(const MessageMeta& meta);

// Returns the first value of a field, as UTF-8, or null when the field is absent.
nlohmann::ordered_json first_field_or_null(const std::vector<TextField>& fields, const std::string& name);

}  // namespace mgspool
