#include "event_webhook.h"

#include <doctest/doctest.h>
#include <fcntl.h>

#include <string>

#include "file_io.h"
#include "signature.h"
#include "test_support.h"

using mgspool::EventWebhookKind;
using mgspool::inspect_event_webhook;

namespace {

const std::string k_signature_hex = "f3b0d6ad86650aba246df4903377d5278db44330586d942d3b6b83616dfdd7a4";

std::string webhook_with_timestamp(const std::string& timestamp_json) {
  return R"({"signature": {"timestamp": )" + timestamp_json +
         R"(, "token": "abcdef0123456789", "signature": ")" + k_signature_hex +
         R"("}, "event-data": {"event": "delivered", "signature": {"timestamp": 1}}})";
}

}  // namespace

TEST_CASE("event webhook string timestamp") {
  auto body = inspect_event_webhook(webhook_with_timestamp(R"("1700000000")"));
  CHECK(body.kind == EventWebhookKind::signed_event);
  CHECK(body.timestamp == "1700000000");
  CHECK(body.token == "abcdef0123456789");
  CHECK(body.signature == k_signature_hex);
  // The extracted fields verify like a form's (signed with "test-key").
  CHECK(mgspool::verify_signature("test-key", body.timestamp, body.token, body.signature, 1700000000, 0) ==
        mgspool::SignatureCheck::valid);
}

TEST_CASE("event webhook integer timestamp") {
  auto body = inspect_event_webhook(webhook_with_timestamp("1700000000"));
  CHECK(body.kind == EventWebhookKind::signed_event);
  CHECK(body.timestamp == "1700000000");
}

TEST_CASE("event webhook float timestamp unusable") {
  CHECK(inspect_event_webhook(webhook_with_timestamp("1700000000.0")).kind == EventWebhookKind::signature_unusable);
  CHECK(inspect_event_webhook(webhook_with_timestamp("1.7e9")).kind == EventWebhookKind::signature_unusable);
}

TEST_CASE("event webhook other timestamp types") {
  const char* values[] = {"null", "true", "[1700000000]", R"({"t": 1})"};
  for (const char* value : values) {
    CAPTURE(value);
    CHECK(inspect_event_webhook(webhook_with_timestamp(value)).kind == EventWebhookKind::signature_unusable);
  }
}

TEST_CASE("event webhook negative timestamp passed on") {
  // The shape check belongs to verify_signature, which rejects the sign.
  auto body = inspect_event_webhook(webhook_with_timestamp("-5"));
  CHECK(body.kind == EventWebhookKind::signed_event);
  CHECK(body.timestamp == "-5");
}

TEST_CASE("event webhook missing fields") {
  CHECK(inspect_event_webhook(R"({"signature": {"timestamp": "1", "token": "t"}})").kind ==
        EventWebhookKind::signature_unusable);
  CHECK(inspect_event_webhook(R"({"signature": {}})").kind == EventWebhookKind::signature_unusable);
  CHECK(inspect_event_webhook(R"({"signature": {"timestamp": "1", "token": 5, "signature": "s"}})").kind ==
        EventWebhookKind::signature_unusable);
}

TEST_CASE("event webhook repeated fields") {
  CHECK(inspect_event_webhook(
            R"({"signature": {"timestamp": "1", "timestamp": "2", "token": "t", "signature": "s"}})")
            .kind == EventWebhookKind::signature_unusable);
  CHECK(inspect_event_webhook(R"({"signature": {"timestamp": "1", "token": "t", "signature": "s"},)"
                              R"( "signature": {"timestamp": "1", "token": "t", "signature": "s"}})")
            .kind == EventWebhookKind::signature_unusable);
}

TEST_CASE("event webhook missing signature object") {
  CHECK(inspect_event_webhook(R"({"event-data": {"event": "delivered"}})").kind == EventWebhookKind::malformed);
  CHECK(inspect_event_webhook(R"({"signature": "abc"})").kind == EventWebhookKind::malformed);
  CHECK(inspect_event_webhook(R"({"event-data": {"signature": {"timestamp": "1", "token": "t", "signature": "s"}}})")
            .kind == EventWebhookKind::malformed);
}

TEST_CASE("event webhook array body") {
  CHECK(inspect_event_webhook(R"([{"signature": {"timestamp": "1", "token": "t", "signature": "s"}}])").kind ==
        EventWebhookKind::malformed);
  CHECK(inspect_event_webhook("42").kind == EventWebhookKind::malformed);
  CHECK(inspect_event_webhook(R"("text")").kind == EventWebhookKind::malformed);
}

TEST_CASE("event webhook invalid JSON") {
  const char* bodies[] = {"", "{", "{\"signature\": }", "not json", "{} trailing", "{\"a\": \"\xff\"}"};
  for (const char* text : bodies) {
    CAPTURE(text);
    CHECK(inspect_event_webhook(text).kind == EventWebhookKind::not_json);
  }
}

TEST_CASE("event webhook deep nesting") {
  std::string deep(100000, '[');
  deep = R"({"x": )" + deep + std::string(100000, ']') + "}";
  CHECK(inspect_event_webhook(deep).kind == EventWebhookKind::malformed);
}

TEST_CASE("event webhook file read from start") {
  mgspool::testing::ScratchDirectory scratch;
  std::filesystem::path path = scratch.path() / "body.json";
  mgspool::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  REQUIRE(fd.valid());
  mgspool::write_all(fd.get(), webhook_with_timestamp("1700000000"), path.string());

  auto body = mgspool::inspect_event_webhook_file(fd.get());
  CHECK(body.kind == EventWebhookKind::signed_event);
  CHECK(body.token == "abcdef0123456789");
}
