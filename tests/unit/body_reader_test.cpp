#include "body_reader.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "file_io.h"
#include "request_error.h"
#include "test_support.h"

namespace {

// A request whose body is a string handed out in pieces of a fixed size.
class StringIo : public mgspool::RequestIo {
 public:
  StringIo(std::string body, std::size_t piece_bytes) : m_body(std::move(body)), m_piece_bytes(piece_bytes) {}

  std::optional<std::string> param(const char*) const override { return std::nullopt; }

  std::size_t read_body(char* buffer, std::size_t size) override {
    std::size_t count = std::min({size, m_piece_bytes, m_body.size() - m_offset});
    std::memcpy(buffer, m_body.data() + m_offset, count);
    m_offset += count;
    return count;
  }

  void write_response(std::string_view) override {}

 private:
  std::string m_body;
  std::size_t m_piece_bytes;
  std::size_t m_offset = 0;
};

mgspool::Outcome outcome_of_length(const char* text, std::uint64_t max) {
  try {
    mgspool::parse_content_length(std::string(text), max);
  } catch (const mgspool::RequestError& error) {
    return error.outcome();
  }
  return mgspool::Outcome::stored;
}

std::string read_back(int fd) {
  std::string contents(static_cast<std::size_t>(::lseek(fd, 0, SEEK_END)), '\0');
  REQUIRE(::pread(fd, contents.data(), contents.size(), 0) == static_cast<ssize_t>(contents.size()));
  return contents;
}

}  // namespace

TEST_CASE("content length parsing") {
  using mgspool::Outcome;
  CHECK(mgspool::parse_content_length(std::nullopt, 10) == std::nullopt);
  CHECK(mgspool::parse_content_length(std::string(), 10) == std::nullopt);
  CHECK(mgspool::parse_content_length(std::string("7"), 10) == 7u);
  CHECK(mgspool::parse_content_length(std::string("10"), 10) == 10u);
  CHECK(outcome_of_length("11", 10) == Outcome::request_too_large);
  CHECK(outcome_of_length("12abc", 100) == Outcome::invalid_content_length);
  CHECK(outcome_of_length("-1", 100) == Outcome::invalid_content_length);
  CHECK(outcome_of_length(" 5", 100) == Outcome::invalid_content_length);
  CHECK(outcome_of_length("0x10", 100) == Outcome::invalid_content_length);
  CHECK(outcome_of_length("99999999999999999999999", 100) == Outcome::invalid_content_length);
}

TEST_CASE("body copy with content length") {
  mgspool::testing::ScratchDirectory scratch;
  mgspool::UniqueFd fd(::open((scratch.path() / "body").c_str(), O_RDWR | O_CREAT | O_EXCL, 0600));
  REQUIRE(fd.valid());
  StringIo io("hello world, and more than was announced", 3);

  CHECK(mgspool::copy_body_to_file(io, fd.get(), 11, 100) == 11);
  CHECK(read_back(fd.get()) == "hello world");
}

TEST_CASE("body copy to end of input") {
  mgspool::testing::ScratchDirectory scratch;
  mgspool::UniqueFd fd(::open((scratch.path() / "body").c_str(), O_RDWR | O_CREAT | O_EXCL, 0600));
  StringIo io(std::string(70000, 'x'), 1000);

  CHECK(mgspool::copy_body_to_file(io, fd.get(), std::nullopt, 100000) == 70000);
  CHECK(read_back(fd.get()) == std::string(70000, 'x'));
}

TEST_CASE("body shorter than content length") {
  mgspool::testing::ScratchDirectory scratch;
  mgspool::UniqueFd fd(::open((scratch.path() / "body").c_str(), O_RDWR | O_CREAT | O_EXCL, 0600));
  StringIo io("short", 2);
  try {
    mgspool::copy_body_to_file(io, fd.get(), 100, 1000);
    FAIL("a short body was accepted");
  } catch (const mgspool::RequestError& error) {
    CHECK(error.outcome() == mgspool::Outcome::body_truncated);
  }
}

TEST_CASE("body without length above maximum") {
  mgspool::testing::ScratchDirectory scratch;
  mgspool::UniqueFd fd(::open((scratch.path() / "body").c_str(), O_RDWR | O_CREAT | O_EXCL, 0600));
  StringIo io(std::string(5000, 'y'), 512);
  try {
    mgspool::copy_body_to_file(io, fd.get(), std::nullopt, 4096);
    FAIL("a body above the maximum was accepted");
  } catch (const mgspool::RequestError& error) {
    CHECK(error.outcome() == mgspool::Outcome::request_too_large);
  }
}
