#include "parsed_format.h"

#include <doctest/doctest.h>

#include <algorithm>

using mgspool::PartRecord;

namespace {

PartRecord attachment(const char* field) {
  PartRecord part;
  part.path = field;
  part.role = "attachment";
  return part;
}

bool has_defect_containing(const std::vector<std::string>& defects, const std::string& text) {
  return std::any_of(defects.begin(), defects.end(),
                     [&](const std::string& defect) { return defect.find(text) != std::string::npos; });
}

}  // namespace

TEST_CASE("message-headers pairs in order") {
  std::vector<std::string> defects;
  auto headers = mgspool::headers_from_message_headers(
      R"([["Received", "a"], ["X-Test", "1"], ["Received", "b"]])", defects);
  REQUIRE(headers.size() == 3);
  CHECK(headers[0] == std::pair<std::string, std::string>("Received", "a"));
  CHECK(headers[1] == std::pair<std::string, std::string>("X-Test", "1"));
  CHECK(headers[2] == std::pair<std::string, std::string>("Received", "b"));
  CHECK(defects.empty());
}

TEST_CASE("message-headers non-string value kept") {
  std::vector<std::string> defects;
  auto headers = mgspool::headers_from_message_headers(
      R"([["Content-Type", ["multipart/alternative", {"boundary": "x"}]]])", defects);
  REQUIRE(headers.size() == 1);
  CHECK(headers[0].first == "Content-Type");
  CHECK(headers[0].second == R"(["multipart/alternative",{"boundary":"x"}])");
  CHECK(defects.size() == 1);
}

TEST_CASE("message-headers invalid JSON recorded") {
  std::vector<std::string> defects;
  CHECK(mgspool::headers_from_message_headers("[[", defects).empty());
  CHECK(defects.size() == 1);
  CHECK(mgspool::headers_from_message_headers(R"({"a": "b"})", defects).empty());
  CHECK(defects.size() == 2);
}

TEST_CASE("content-id-map marks inline parts") {
  std::vector<PartRecord> parts = {attachment("attachment-1"), attachment("attachment-2"),
                                   attachment("attachment-3")};
  std::vector<std::string> defects;
  mgspool::apply_content_id_map(
      R"({"": "attachment-1", "": "attachment-2", "<logo@example.net>": "attachment-3"})", parts, defects);
  CHECK(parts[0].role == "attachment");
  CHECK_FALSE(parts[0].content_id);
  CHECK(parts[1].role == "attachment");
  CHECK(parts[2].role == "inline");
  CHECK(parts[2].content_id == "logo@example.net");
  CHECK(has_defect_containing(defects, "key \"\" 2 times"));
}

TEST_CASE("content-id-map names missing file") {
  std::vector<PartRecord> parts = {attachment("attachment-1")};
  std::vector<std::string> defects;
  mgspool::apply_content_id_map(R"({"<a@x>": "attachment-1", "<b@x>": "attachment-7"})", parts, defects);
  CHECK(parts[0].content_id == "a@x");
  CHECK(has_defect_containing(defects, "attachment-7"));
}

TEST_CASE("attachment count mismatch recorded") {
  std::vector<PartRecord> parts = {attachment("attachment-1"), attachment("attachment-2")};
  std::vector<std::string> defects;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  mgspool::check_attachment_count("5", parts, defects, extra);
  CHECK(extra["attachment_count_declared"] == 5);
  CHECK(extra["missing_attachment_fields"] ==
        nlohmann::ordered_json::array({"attachment-3", "attachment-4", "attachment-5"}));
  CHECK(defects.size() == 3);
}

TEST_CASE("attachment count that matches") {
  std::vector<PartRecord> parts = {attachment("attachment-1")};
  std::vector<std::string> defects;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  mgspool::check_attachment_count("1", parts, defects, extra);
  CHECK(defects.empty());
  CHECK_FALSE(extra.contains("attachment_count_declared"));
  mgspool::check_attachment_count("many", parts, defects, extra);
  CHECK(defects.size() == 1);
}

TEST_CASE("announced attachments recorded") {
  std::vector<std::string> defects;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  mgspool::record_announced_attachments(
      R"([{"url": "https://example.com/a/0", "content-type": "application/pdf", "name": "a.pdf", "size": 58211}])",
      defects, extra);
  REQUIRE(extra["announced_attachments"].size() == 1);
  CHECK(extra["announced_attachments"][0]["name"] == "a.pdf");
  CHECK(extra["announced_attachments"][0]["content_type"] == "application/pdf");
  CHECK(extra["announced_attachments"][0]["size"] == 58211);
  CHECK(extra["announced_attachments"][0]["url"] == "https://example.com/a/0");
  CHECK(extra["attachments_not_included"] == true);
  CHECK(defects.empty());
}

TEST_CASE("deeply nested JSON kept as text") {
  std::string deep = "[[\"X-Deep\", " + std::string(100000, '[') + std::string(100000, ']') + "]]";
  std::vector<std::string> defects;
  CHECK(mgspool::headers_from_message_headers(deep, defects).empty());
  REQUIRE(defects.size() == 1);
  CHECK(defects[0].find("nests deeper") != std::string::npos);

  std::vector<PartRecord> parts = {attachment("attachment-1")};
  mgspool::apply_content_id_map("{\"a\": " + std::string(50000, '{') + std::string(50000, '}') + "}", parts, defects);
  CHECK(defects.size() == 2);

  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  mgspool::record_announced_attachments("[{\"name\": " + std::string(50000, '[') + std::string(50000, ']') + "}]",
                                        defects, extra);
  CHECK(defects.size() == 3);
  CHECK(extra["announced_attachments"].empty());

  // Brackets inside strings do not count.
  std::vector<std::string> quiet;
  auto headers = mgspool::headers_from_message_headers("[[\"X-Text\", \"" + std::string(100, '[') + "\"]]", quiet);
  CHECK(headers.size() == 1);
  CHECK(quiet.empty());
}
