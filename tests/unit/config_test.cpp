#include "config.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "spool_limits.h"
#include "test_support.h"

using mgspool::ConfigResult;
using mgspool::load_config;

TEST_CASE("config defaults") {
  ConfigResult result = load_config({"MAILGUN_SPOOL_DIR=/var/spool/x", "MAILGUN_SIGNING_KEY=k"}, {});
  REQUIRE(result.config);
  CHECK(result.config->spool_dir == "/var/spool/x");
  CHECK(result.config->signing_key == "k");
  CHECK(result.config->max_request_bytes == mgspool::k_default_max_request_bytes);
  CHECK(result.config->max_request_bytes >= 40ULL * 1000 * 1000);
  CHECK(result.config->max_age_seconds == 12 * 60 * 60);
  CHECK_FALSE(result.config->insecure);
  CHECK(result.config->log_target == "stderr");
}

TEST_CASE("config flags override environment") {
  ConfigResult result = load_config({"MAILGUN_SPOOL_DIR=/a", "MAILGUN_MAX_AGE_SECONDS=10"},
                                    {"--spool", "/b", "--max-age-seconds=0", "--max-request-bytes", "1000",
                                     "--insecure", "--log", "syslog"});
  REQUIRE(result.config);
  CHECK(result.config->spool_dir == "/b");
  CHECK(result.config->max_age_seconds == 0);
  CHECK(result.config->max_request_bytes == 1000);
  CHECK(result.config->insecure);
  CHECK(result.config->log_target == "syslog");
}

TEST_CASE("config rejects invalid values") {
  CHECK_FALSE(load_config({}, {}).config);
  CHECK_FALSE(load_config({"MAILGUN_SPOOL_DIR=/a", "MAILGUN_MAX_REQUEST_BYTES=12MB"}, {}).config);
  CHECK_FALSE(load_config({"MAILGUN_SPOOL_DIR=/a", "MAILGUN_MAX_REQUEST_BYTES=-1"}, {}).config);
  CHECK_FALSE(load_config({"MAILGUN_SPOOL_DIR=/a", "MAILGUN_MAX_AGE_SECONDS= 5"}, {}).config);
  CHECK_FALSE(load_config({"MAILGUN_SPOOL_DIR=/a", "MAILGUN_SPOOL_LOG=relative.log"}, {}).config);
  CHECK_FALSE(load_config({"MAILGUN_SPOOL_DIR=/a"}, {"--no-such-flag"}).config);
  CHECK_FALSE(load_config({"MAILGUN_SPOOL_DIR=/a"}, {"--spool"}).config);
}

TEST_CASE("config help and version") {
  CHECK(load_config({}, {"--help"}).show_help);
  CHECK(load_config({}, {"--version"}).show_version);
  CHECK(mgspool::usage_text().find("--key-file") != std::string::npos);
}

TEST_CASE("config key file") {
  mgspool::testing::ScratchDirectory scratch;
  std::filesystem::path key_path = scratch.path() / "key";
  std::ofstream(key_path) << "secret-key\n";

  ConfigResult result = load_config({"MAILGUN_SPOOL_DIR=/a", "MAILGUN_SIGNING_KEY=other",
                                     "MAILGUN_SIGNING_KEY_FILE=" + key_path.string()},
                                    {});
  REQUIRE(result.config);
  CHECK(result.config->signing_key == "secret-key");

  ConfigResult missing = load_config({"MAILGUN_SPOOL_DIR=/a", "MAILGUN_SIGNING_KEY_FILE=/nonexistent/key"}, {});
  REQUIRE(missing.config);
  CHECK_FALSE(missing.config->signing_key);
  CHECK(missing.config->key_error.find("/nonexistent/key") != std::string::npos);
}

TEST_CASE("key file read again after a change") {
  mgspool::testing::ScratchDirectory scratch;
  std::filesystem::path key_path = scratch.path() / "key";

  ConfigResult result = load_config({"MAILGUN_SPOOL_DIR=/a", "MAILGUN_SIGNING_KEY_FILE=" + key_path.string()}, {});
  REQUIRE(result.config);
  mgspool::Config config = *result.config;
  CHECK_FALSE(config.signing_key);

  std::ofstream(key_path) << "first-key\n";
  mgspool::refresh_signing_key(config);
  CHECK(config.signing_key == "first-key");
  CHECK(config.key_error.empty());

  // A rotated key arrives as a new file under the same name.
  std::filesystem::path next_path = scratch.path() / "key.next";
  std::ofstream(next_path) << "second-key\n";
  std::filesystem::rename(next_path, key_path);
  mgspool::refresh_signing_key(config);
  CHECK(config.signing_key == "second-key");

  // A key that was read once survives the file going away.
  std::filesystem::remove(key_path);
  mgspool::refresh_signing_key(config);
  CHECK(config.signing_key == "second-key");
}

TEST_CASE("key file must be a small regular file") {
  mgspool::testing::ScratchDirectory scratch;
  std::filesystem::path fifo = scratch.path() / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::filesystem::path large = scratch.path() / "large";
  std::ofstream(large) << std::string(mgspool::k_max_key_file_bytes + 1, 'k');
  std::filesystem::path folder = scratch.path() / "folder";
  std::filesystem::create_directory(folder);

  for (const std::filesystem::path& path : {fifo, large, folder}) {
    CAPTURE(path);
    // A FIFO without a writer would block an ordinary open; this must return at once.
    ConfigResult result = load_config({"MAILGUN_SPOOL_DIR=/a", "MAILGUN_SIGNING_KEY_FILE=" + path.string()}, {});
    REQUIRE(result.config);
    CHECK_FALSE(result.config->signing_key);
    CHECK_FALSE(result.config->key_error.empty());
  }
}

TEST_CASE("config bounds the freshness window") {
  CHECK(load_config({"MAILGUN_SPOOL_DIR=/a", "MAILGUN_MAX_AGE_SECONDS=3153600000"}, {}).config);
  CHECK_FALSE(load_config({"MAILGUN_SPOOL_DIR=/a", "MAILGUN_MAX_AGE_SECONDS=9223372036854775800"}, {}).config);
}
