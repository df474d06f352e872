#include "request_handler.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "log.h"
#include "signature.h"
#include "spool.h"
#include "test_support.h"
#include "token_store.h"

namespace fs = std::filesystem;
using mgspool::Outcome;

namespace {

constexpr const char* k_key = "unit-test-signing-key";

class FakeRequest : public mgspool::RequestIo {
 public:
  std::map<std::string, std::string> params;
  std::string body;
  std::string response;
  std::size_t offset = 0;

  std::optional<std::string> param(const char* name) const override {
    auto found = params.find(name);
    return found == params.end() ? std::nullopt : std::optional<std::string>(found->second);
  }

  std::size_t read_body(char* buffer, std::size_t size) override {
    std::size_t count = std::min(size, body.size() - offset);
    std::memcpy(buffer, body.data() + offset, count);
    offset += count;
    return count;
  }

  void write_response(std::string_view bytes) override { response.append(bytes); }
};

std::string percent_encode(const std::string& value) {
  static constexpr char k_hex_digits[] = "0123456789ABCDEF";
  std::string encoded;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
      encoded.push_back(static_cast<char>(c));
    } else {
      encoded += '%';
      encoded += k_hex_digits[c >> 4];
      encoded += k_hex_digits[c & 15];
    }
  }
  return encoded;
}

std::string now_text() {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// A urlencoded route POST of the parsed format, signed with key.
FakeRequest signed_post(const std::string& token, const std::string& key = k_key,
                        const std::string& extra_fields = "") {
  std::string timestamp = now_text();
  FakeRequest request;
  request.params["REQUEST_METHOD"] = "POST";
  request.params["CONTENT_TYPE"] = "application/x-www-form-urlencoded";
  request.body = "recipient=inbox%40mg.example.com&sender=alice%40example.net&subject=Hello&"
                 "body-plain=Hi+there%0A&Received=one&Received=two&timestamp=" +
                 timestamp + "&token=" + percent_encode(token) +
                 "&signature=" + mgspool::hmac_sha256_hex(key, timestamp + token) + extra_fields;
  request.params["CONTENT_LENGTH"] = std::to_string(request.body.size());
  return request;
}

struct Fixture {
  mgspool::testing::ScratchDirectory scratch;
  mgspool::Config config;
  std::unique_ptr<mgspool::Spool> spool;
  std::unique_ptr<mgspool::TokenStore> tokens;

  Fixture() {
    config.spool_dir = (scratch.path() / "spool").string();
    config.signing_key = k_key;
    config.max_request_bytes = 1024 * 1024;
    config.max_age_seconds = 600;
    config.min_free_bytes = 0;
    std::string ignored;
    mgspool::log_open("/dev/null", ignored);
    spool = std::make_unique<mgspool::Spool>(config.spool_dir);
    tokens = std::make_unique<mgspool::TokenStore>(spool->private_fd(), 7 * 24 * 3600);
  }

  Outcome run(FakeRequest& request) {
    mgspool::RequestHandler handler(config, spool.get(), tokens.get(), "");
    return handler.handle(request).outcome;
  }

  std::vector<std::string> entries(const char* folder) const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(fs::path(config.spool_dir) / folder)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }
};

}  // namespace

TEST_CASE("handler stores a signed parsed post") {
  Fixture fixture;
  FakeRequest request = signed_post("token-one");
  CHECK(fixture.run(request) == Outcome::stored);
  CHECK(request.response.rfind("Status: 200", 0) == 0);

  auto messages = fixture.entries("new");
  REQUIRE(messages.size() == 1);
  CHECK(fixture.entries("tmp").empty());
  fs::path folder = fs::path(fixture.config.spool_dir) / "new" / messages[0];
  auto meta = nlohmann::json::parse(mgspool::testing::read_file(folder / "meta.json"));
  CHECK(meta["schema_version"] == 1);
  CHECK(meta["id"] == messages[0]);
  CHECK(meta["format"] == "parsed");
  CHECK(meta["subject"] == "Hello");
  CHECK(meta["token"] == "token-one");
  CHECK(meta["fields"][3] == nlohmann::json::array({"Received", "one"}));
  CHECK(meta["fields"][4] == nlohmann::json::array({"Received", "two"}));
  REQUIRE(meta["parts"].size() == 1);
  CHECK(meta["parts"][0]["role"] == "body-plain");
  CHECK(mgspool::testing::read_file(folder / meta["parts"][0]["file"].get<std::string>()) == "Hi there\n");
  CHECK_FALSE(fs::exists(folder / "request.body"));
}

TEST_CASE("handler replay stores once") {
  Fixture fixture;
  FakeRequest first = signed_post("token-replay");
  FakeRequest second = signed_post("token-replay");
  CHECK(fixture.run(first) == Outcome::stored);
  CHECK(fixture.run(second) == Outcome::already_stored);
  CHECK(second.response.rfind("Status: 200", 0) == 0);
  CHECK(fixture.entries("new").size() == 1);
  CHECK(fixture.entries("tmp").empty());
}

TEST_CASE("handler concurrent same token stores once") {
  Fixture fixture;
  constexpr int k_children = 4;
  std::vector<pid_t> children;
  for (int i = 0; i < k_children; ++i) {
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      FakeRequest request = signed_post("token-race");
      Outcome outcome = fixture.run(request);
      _exit(outcome == Outcome::stored || outcome == Outcome::already_stored ? 0 : 1);
    }
    children.push_back(child);
  }
  for (pid_t child : children) {
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(fixture.entries("new").size() == 1);
  CHECK(fixture.entries("tmp").empty());
}

TEST_CASE("handler rejects other methods") {
  Fixture fixture;
  FakeRequest request;
  request.params["REQUEST_METHOD"] = "GET";
  CHECK(fixture.run(request) == Outcome::method_not_allowed);
  CHECK(request.response.rfind("Status: 405", 0) == 0);
  CHECK(request.response.find("Allow: POST\r\n") != std::string::npos);
}

TEST_CASE("handler signature failures") {
  Fixture fixture;
  FakeRequest wrong_key = signed_post("token-a", "some-other-key");
  CHECK(fixture.run(wrong_key) == Outcome::signature_mismatch);
  CHECK(wrong_key.response.rfind("Status: 403", 0) == 0);

  FakeRequest repeated = signed_post("token-b", k_key, "&token=token-b");
  CHECK(fixture.run(repeated) == Outcome::signature_missing);

  FakeRequest unsigned_request;
  unsigned_request.params["REQUEST_METHOD"] = "POST";
  unsigned_request.params["CONTENT_TYPE"] = "application/x-www-form-urlencoded";
  unsigned_request.body = "subject=hi";
  CHECK(fixture.run(unsigned_request) == Outcome::signature_missing);

  FakeRequest stale;
  stale.params["REQUEST_METHOD"] = "POST";
  stale.params["CONTENT_TYPE"] = "application/x-www-form-urlencoded";
  stale.body = "timestamp=1368728697&token=t&signature=" + mgspool::hmac_sha256_hex(k_key, "1368728697t");
  CHECK(fixture.run(stale) == Outcome::signature_stale);

  CHECK(fixture.entries("new").empty());
  CHECK(fixture.entries("tmp").empty());
}

TEST_CASE("handler without key answers 500") {
  Fixture fixture;
  fixture.config.signing_key.reset();
  FakeRequest request = signed_post("token-c");
  CHECK(fixture.run(request) == Outcome::no_signing_key);
  CHECK(request.response.rfind("Status: 500", 0) == 0);
  CHECK(request.response.find(k_key) == std::string::npos);

  fixture.config.insecure = true;
  FakeRequest insecure = signed_post("token-c", "any-key");
  CHECK(fixture.run(insecure) == Outcome::stored);
}

TEST_CASE("handler rejects repeated body-mime") {
  Fixture fixture;
  FakeRequest request = signed_post("token-d", k_key, "&body-mime=Subject%3A+a%0D%0A%0D%0Aa&body-mime=b");
  CHECK(fixture.run(request) == Outcome::malformed_request);
  CHECK(request.response.rfind("Status: 406", 0) == 0);
  CHECK(fixture.entries("new").empty());
  CHECK(fixture.entries("tmp").empty());
}

TEST_CASE("handler truncated body publishes nothing") {
  Fixture fixture;
  FakeRequest request = signed_post("token-e");
  request.params["CONTENT_LENGTH"] = std::to_string(request.body.size() + 100);
  CHECK(fixture.run(request) == Outcome::body_truncated);
  CHECK(request.response.rfind("Status: 500", 0) == 0);
  CHECK(fixture.entries("new").empty());
  CHECK(fixture.entries("tmp").empty());

  FakeRequest retry = signed_post("token-e");
  CHECK(fixture.run(retry) == Outcome::stored);
}

TEST_CASE("handler content type and length checks") {
  Fixture fixture;
  FakeRequest text = signed_post("token-f");
  text.params["CONTENT_TYPE"] = "text/plain";
  CHECK(fixture.run(text) == Outcome::unsupported_media_type);

  FakeRequest bad_length = signed_post("token-f");
  bad_length.params["CONTENT_LENGTH"] = "12abc";
  CHECK(fixture.run(bad_length) == Outcome::invalid_content_length);

  FakeRequest too_large = signed_post("token-f");
  too_large.params["CONTENT_LENGTH"] = std::to_string(fixture.config.max_request_bytes + 1);
  CHECK(fixture.run(too_large) == Outcome::request_too_large);
  CHECK(too_large.offset == 0);

  FakeRequest no_length = signed_post("token-f");
  no_length.params.erase("CONTENT_LENGTH");
  CHECK(fixture.run(no_length) == Outcome::stored);
}

TEST_CASE("handler below free space reserve") {
  Fixture fixture;
  fixture.config.min_free_bytes = UINT64_MAX;
  FakeRequest request = signed_post("token-g");
  CHECK(fixture.run(request) == Outcome::below_free_space);
  CHECK(request.response.rfind("Status: 503", 0) == 0);
  CHECK(fixture.entries("new").empty());
}

TEST_CASE("handler event webhook") {
  Fixture fixture;
  std::string timestamp = now_text();
  std::string signature = mgspool::hmac_sha256_hex(k_key, timestamp + "tok");
  FakeRequest valid;
  valid.params["REQUEST_METHOD"] = "POST";
  valid.params["CONTENT_TYPE"] = "application/json";
  valid.body = R"({"signature": {"timestamp": ")" + timestamp + R"(", "token": "tok", "signature": ")" + signature +
               R"("}, "event-data": {"event": "delivered"}})";
  CHECK(fixture.run(valid) == Outcome::event_webhook);
  CHECK(valid.response.rfind("Status: 406", 0) == 0);

  FakeRequest forged = valid;
  forged.offset = 0;
  forged.response.clear();
  forged.body.replace(forged.body.find(signature), 64, std::string(64, '0'));
  CHECK(fixture.run(forged) == Outcome::signature_mismatch);
  CHECK(fixture.entries("new").empty());
  CHECK(fixture.entries("tmp").empty());
}

TEST_CASE("handler stores raw mime") {
  Fixture fixture;
  std::string mime = "From: a@example.net\r\nTo: b@example.com\r\nSubject: Raw\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n\r\nBody line\r\n";
  FakeRequest request = signed_post("token-h", k_key, "&body-mime=" + percent_encode(mime));
  CHECK(fixture.run(request) == Outcome::stored);
  auto messages = fixture.entries("new");
  REQUIRE(messages.size() == 1);
  fs::path folder = fs::path(fixture.config.spool_dir) / "new" / messages[0];
  CHECK(mgspool::testing::read_file(folder / "message.eml") == mime);
  auto meta = nlohmann::json::parse(mgspool::testing::read_file(folder / "meta.json"));
  CHECK(meta["format"] == "mime");
  bool has_subject = false;
  for (const auto& header : meta["headers"]) {
    has_subject = has_subject || (header[0] == "Subject" && header[1] == "Raw");
  }
  CHECK(has_subject);
  for (const auto& field : meta["fields"]) {
    CHECK(field[0] != "body-mime");
    CHECK(field[0] != "body-plain");
  }
}

TEST_CASE("handler legacy event webhook form") {
  Fixture fixture;
  FakeRequest event = signed_post("token-event");
  // A form-encoded event webhook: an event field and no message.
  std::string timestamp = now_text();
  event.body = "event=delivered&recipient=alice%40example.net&timestamp=" + timestamp +
               "&token=token-event&signature=" + mgspool::hmac_sha256_hex(k_key, timestamp + "token-event");
  event.params["CONTENT_LENGTH"] = std::to_string(event.body.size());
  CHECK(fixture.run(event) == Outcome::event_webhook);
  CHECK(event.response.rfind("Status: 406", 0) == 0);
  CHECK(fixture.entries("new").empty());
  CHECK(fixture.entries("tmp").empty());

  // A route POST whose message happens to carry an "event" field is still stored.
  FakeRequest message = signed_post("token-message", k_key, "&event=party");
  CHECK(fixture.run(message) == Outcome::stored);
}

TEST_CASE("handler names unique across form and mime") {
  // A file sent beside body-mime and an attachment inside it share a name as sent; the safe
  // names of one message must still differ.
  Fixture fixture;
  std::string timestamp = now_text();
  std::string mime = "Subject: Names\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=in\r\n\r\n"
                     "--in\r\nContent-Type: text/plain\r\n\r\nHi\r\n"
                     "--in\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\n"
                     "%PDF-1.4\r\n--in--\r\n";
  auto field = [](const std::string& name, const std::string& value) {
    return "--out\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
  };
  FakeRequest request;
  request.params["REQUEST_METHOD"] = "POST";
  request.params["CONTENT_TYPE"] = "multipart/form-data; boundary=out";
  request.body = field("body-mime", mime) +
                 "--out\r\nContent-Disposition: form-data; name=\"attachment-1\"; filename=\"a.pdf\"\r\n"
                 "Content-Type: application/pdf\r\n\r\n%PDF-1.4 beside\r\n" +
                 field("timestamp", timestamp) + field("token", "token-names") +
                 field("signature", mgspool::hmac_sha256_hex(k_key, timestamp + "token-names")) + "--out--\r\n";
  request.params["CONTENT_LENGTH"] = std::to_string(request.body.size());
  REQUIRE(fixture.run(request) == Outcome::stored);

  auto messages = fixture.entries("new");
  REQUIRE(messages.size() == 1);
  auto meta = nlohmann::json::parse(
      mgspool::testing::read_file(fs::path(fixture.config.spool_dir) / "new" / messages[0] / "meta.json"));
  std::vector<std::string> names;
  for (const auto& part : meta["parts"]) {
    if (part["filename"].is_string()) {
      names.push_back(part["filename"].get<std::string>());
    }
  }
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"a (2).pdf", "a.pdf"});
}
