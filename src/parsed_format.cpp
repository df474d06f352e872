#include "parsed_format.h"

#include <charconv>
#include <map>
#include <set>

#include "charset.h"
#include "spool_limits.h"

namespace mgspool {

namespace {

using Json = nlohmann::json;

// Returns true when arrays and objects in text nest deeper than max_depth. nlohmann-json
// parses without recursion but serialises and copies recursively, so a value nested 100,000
// levels deep would overflow the stack when it is written to meta.json.
bool nests_deeper_than(const std::string& text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return true;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

std::optional<Json> parse_json(const std::string& text, const std::string& field, std::vector<std::string>& defects) {
  if (nests_deeper_than(text, k_max_json_depth)) {
    defects.push_back("the field " + field + " nests deeper than " + std::to_string(k_max_json_depth) +
                      " levels; it is kept as text in fields");
    return std::nullopt;
  }
  Json value = Json::parse(text, nullptr, false);
  if (value.is_discarded()) {
    defects.push_back("the field " + field + " is not valid JSON; it is kept as text in fields");
    return std::nullopt;
  }
  return value;
}

std::string strip_angle_brackets(std::string text) {
  if (text.size() >= 2 && text.front() == '<' && text.back() == '>') {
    return text.substr(1, text.size() - 2);
  }
  return text;
}

}  // namespace

HeaderList headers_from_message_headers(const std::string& json_text, std::vector<std::string>& defects) {
  HeaderList headers;
  std::optional<Json> parsed = parse_json(json_text, "message-headers", defects);
  if (!parsed) {
    return headers;
  }
  if (!parsed->is_array()) {
    defects.push_back("the field message-headers is not a JSON list");
    return headers;
  }
  for (const Json& entry : *parsed) {
    if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string()) {
      defects.push_back("message-headers has an entry that is not a [name, value] pair: " +
                        entry.dump(-1, ' ', false, Json::error_handler_t::replace).substr(0, 200));
      continue;
    }
    std::string name = entry[0].get<std::string>();
    if (entry[1].is_string()) {
      headers.emplace_back(name, entry[1].get<std::string>());
    } else {
      defects.push_back("message-headers has a value for " + name + " that is not a string; its JSON text is kept");
      headers.emplace_back(name, entry[1].dump(-1, ' ', false, Json::error_handler_t::replace));
    }
  }
  return headers;
}

void apply_content_id_map(const std::string& json_text, std::vector<PartRecord>& parts,
                          std::vector<std::string>& defects) {
  // Duplicate keys are legal JSON text but lost by an ordinary parse, so keys are counted
  // through the parser callback first.
  std::map<std::string, int> key_counts;
  int depth = 0;
  Json::parser_callback_t count_keys = [&](int callback_depth, Json::parse_event_t event, Json& parsed) {
    depth = callback_depth;
    if (event == Json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      ++key_counts[parsed.get<std::string>()];
    }
    return true;
  };
  if (nests_deeper_than(json_text, k_max_json_depth)) {
    defects.push_back("the field content-id-map nests deeper than " + std::to_string(k_max_json_depth) +
                      " levels; it is kept as text in fields");
    return;
  }
  Json map = Json::parse(json_text, count_keys, false);
  if (map.is_discarded() || !map.is_object()) {
    defects.push_back("the field content-id-map is not a JSON object; it is kept as text in fields");
    return;
  }
  for (const auto& [key, count] : key_counts) {
    if (count > 1) {
      defects.push_back("content-id-map has the key \"" + key + "\" " + std::to_string(count) + " times");
    }
  }
  for (const auto& [content_id, target] : map.items()) {
    if (!target.is_string()) {
      defects.push_back("content-id-map maps \"" + content_id + "\" to a value that is not a field name");
      continue;
    }
    std::string bare_id = strip_angle_brackets(content_id);
    bool found = false;
    for (PartRecord& part : parts) {
      if (part.path == target.get<std::string>() && part.role == "attachment") {
        found = true;
        if (!bare_id.empty()) {
          part.content_id = bare_id;
          part.role = "inline";
        }
      }
    }
    if (!found) {
      defects.push_back("content-id-map names " + target.get<std::string>() + ", which did not arrive as a file");
    }
  }
}

void check_attachment_count(const std::string& count_text, const std::vector<PartRecord>& parts,
                            std::vector<std::string>& defects, nlohmann::ordered_json& extra) {
  int declared = 0;
  auto [end, error] = std::from_chars(count_text.data(), count_text.data() + count_text.size(), declared);
  if (error != std::errc() || end != count_text.data() + count_text.size() || declared < 0) {
    defects.push_back("attachment-count \"" + sanitize_utf8(count_text.substr(0, 40)) + "\" is not a number");
    return;
  }
  std::set<std::string> arrived;
  for (const PartRecord& part : parts) {
    if (part.role == "attachment" || part.role == "inline") {
      arrived.insert(part.path);
    }
  }
  nlohmann::ordered_json missing = nlohmann::ordered_json::array();
  for (int number = 1; number <= declared && number <= 10000; ++number) {
    std::string field = "attachment-" + std::to_string(number);
    if (arrived.count(field) == 0) {
      missing.push_back(field);
      defects.push_back("attachment-count is " + std::to_string(declared) + " but the field " + field +
                        " is missing");
    }
  }
  if (static_cast<std::size_t>(declared) != arrived.size()) {
    if (missing.empty()) {
      defects.push_back("attachment-count is " + std::to_string(declared) + " but " +
                        std::to_string(arrived.size()) + " attachment files arrived");
    }
    extra["attachment_count_declared"] = declared;
    extra["missing_attachment_fields"] = missing;
  }
}

void record_announced_attachments(const std::string& json_text, std::vector<std::string>& defects,
                                  nlohmann::ordered_json& extra) {
  nlohmann::ordered_json announced = nlohmann::ordered_json::array();
  std::optional<Json> parsed = parse_json(json_text, "attachments", defects);
  if (parsed && parsed->is_array()) {
    for (const Json& entry : *parsed) {
      if (!entry.is_object()) {
        defects.push_back("the attachments field has an entry that is not an object");
        continue;
      }
      nlohmann::ordered_json item;
      item["name"] = entry.contains("name") ? entry["name"] : Json(nullptr);
      item["content_type"] = entry.contains("content-type") ? entry["content-type"] : Json(nullptr);
      item["size"] = entry.contains("size") ? entry["size"] : Json(nullptr);
      item["url"] = entry.contains("url") ? entry["url"] : Json(nullptr);
      announced.push_back(item);
    }
  } else if (parsed) {
    defects.push_back("the attachments field is not a JSON list");
  }
  extra["announced_attachments"] = announced;
  extra["attachments_not_included"] = !announced.empty();
}

}  // namespace mgspool
