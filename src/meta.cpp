#include "meta.h"

#include "charset.h"

namespace mgspool {

namespace {

nlohmann::ordered_json optional_text(const std::optional<std::string>& value) {
  if (!value) {
    return nullptr;
  }
  return sanitize_utf8(*value);
}

nlohmann::ordered_json part_json(const PartRecord& part) {
  nlohmann::ordered_json json;
  json["file"] = part.file;
  json["role"] = part.role;
  json["filename"] = optional_text(part.filename);
  json["filename_sent"] = optional_text(part.filename_sent);
  json["content_type"] = sanitize_utf8(part.content_type);
  json["charset"] = optional_text(part.charset);
  json["size"] = part.size;
  json["sha256"] = part.sha256;
  json["content_id"] = optional_text(part.content_id);
  json["path"] = sanitize_utf8(part.path);
  json["parent"] = optional_text(part.parent);
  return json;
}

nlohmann::ordered_json pairs_json(const std::vector<std::pair<std::string, std::string>>& pairs) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& [name, value] : pairs) {
    list.push_back(nlohmann::ordered_json::array({sanitize_utf8(name), sanitize_utf8(value)}));
  }
  return list;
}

}  // namespace

nlohmann::ordered_json first_field_or_null(const std::vector<TextField>& fields, const std::string& name) {
  for (const TextField& field : fields) {
    if (field.name == name) {
      return sanitize_utf8(field.value);
    }
  }
  return nullptr;
}

nlohmann::ordered_json build_meta_json(const MessageMeta& meta) {
  nlohmann::ordered_json json;
  json["schema_version"] = k_meta_schema_version;
  json["id"] = meta.id;
  json["received_at"] = meta.received_at;
  json["format"] = meta.format;
  for (const char* name : {"recipient", "sender", "from", "subject", "timestamp", "token"}) {
    json[name] = first_field_or_null(meta.fields, name);
  }

  std::vector<std::pair<std::string, std::string>> fields;
  for (const TextField& field : meta.fields) {
    fields.emplace_back(field.name, field.value);
  }
  json["fields"] = pairs_json(fields);
  json["headers"] = pairs_json(meta.headers);

  json["defects"] = nlohmann::ordered_json::array();
  for (const std::string& defect : meta.defects) {
    json["defects"].push_back(sanitize_utf8(defect));
  }
  json["parts"] = nlohmann::ordered_json::array();
  for (const PartRecord& part : meta.parts) {
    json["parts"].push_back(part_json(part));
  }
  for (const auto& [key, value] : meta.extra.items()) {
    json[key] = value;
  }
  return json;
}

}  // namespace mgspool
