// application/x-www-form-urlencoded decoding, one byte at a time so that any split of the
// body into pieces gives the same fields.
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "ascii.h"
#include "file_io.h"
#include "form.h"
#include "request_error.h"
#include "spool_limits.h"

namespace mgspool {

namespace {

}  // namespace

UrlencodedDecoder::UrlencodedDecoder(FieldSink& sink) : m_sink(sink) {
  m_value_buffer.reserve(k_io_buffer_bytes);
}

void UrlencodedDecoder::feed(std::string_view bytes) {
  for (char byte : bytes) {
    decode_byte(byte);
  }
}

void UrlencodedDecoder::finish() {
  end_pair();
}

void UrlencodedDecoder::decode_byte(char byte) {
  if (!m_escape.empty()) {
    int low_nibble = hex_digit_value(byte);
    if (low_nibble >= 0 && m_escape.size() == 1) {
      m_escape.push_back(byte);
      return;
    }
    if (low_nibble >= 0) {
      int high_nibble = hex_digit_value(m_escape[1]);
      m_escape.clear();
      emit_byte(static_cast<char>(high_nibble * 16 + low_nibble));
      return;
    }
    // Not an escape after all: keep "%" or "%X" as sent and read this byte afresh, so
    // "%%41" still decodes its second escape.
    flush_escape();
  }

  switch (byte) {
    case '&':
      end_pair();
      break;
    case '=':
      if (m_part == Part::name) {
        m_pair_started = true;
        start_value();
      } else {
        emit_byte(byte);
      }
      break;
    case '+':
      emit_byte(' ');
      break;
    case '%':
      m_pair_started = true;
      m_escape.push_back(byte);
      break;
    default:
      emit_byte(byte);
      break;
  }
}

void UrlencodedDecoder::emit_byte(char byte) {
  m_pair_started = true;
  if (m_part == Part::name) {
    if (m_name.size() >= k_max_field_name_bytes) {
      throw RequestError(Outcome::malformed_request,
                         "urlencoded form: a field name is longer than " +
                             std::to_string(k_max_field_name_bytes) + " bytes");
    }
    m_name.push_back(byte);
    return;
  }

  m_value_buffer.push_back(byte);
  if (m_value_buffer.size() >= k_io_buffer_bytes) {
    flush_value();
  }
}

void UrlencodedDecoder::flush_escape() {
  std::string pending;
  pending.swap(m_escape);
  for (char byte : pending) {
    emit_byte(byte);
  }
}

void UrlencodedDecoder::start_value() {
  if (m_field_count >= k_max_form_fields) {
    throw RequestError(Outcome::malformed_request,
                       "urlencoded form: more than " + std::to_string(k_max_form_fields) + " fields");
  }
  ++m_field_count;

  FieldHead head;
  head.name.swap(m_name);
  m_sink.begin_field(head);
  m_part = Part::value;
}

void UrlencodedDecoder::end_pair() {
  flush_escape();
  if (m_part == Part::name) {
    if (!m_pair_started) {
      return;  // an empty pair, as in "a=1&&b=2" or a trailing '&'
    }
    start_value();
  }

  flush_value();
  m_sink.end_field();
  m_part = Part::name;
  m_pair_started = false;
}

void UrlencodedDecoder::flush_value() {
  if (m_value_buffer.empty()) {
    return;
  }
  m_sink.append(m_value_buffer);
  m_value_buffer.clear();
}

void parse_urlencoded_file(int fd, FieldSink& sink) {
  UrlencodedDecoder decoder(sink);
  read_chunks(fd, "urlencoded request body", [&](std::string_view chunk) { decoder.feed(chunk); });
  decoder.finish();
}

}  // namespace mgspool
