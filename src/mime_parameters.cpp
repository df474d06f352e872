#include "mime_parameters.h"

#include <map>

#include "ascii.h"
#include "charset.h"
#include "header_text.h"

namespace mgspool {

namespace {

// Continuation numbers above this are treated as junk; real names need a handful.
constexpr unsigned k_max_parameter_section = 9999;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_blank(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_blank(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

// Splits "filename*0*" into its name, section and extended flag.
void split_parameter_name(std::string_view written, MimeParameter& parameter) {
  std::string lower = to_lower_ascii(trim(written));
  std::size_t star = lower.find('*');
  if (star == std::string::npos) {
    parameter.name = lower;
    return;
  }
  std::string_view rest = std::string_view(lower).substr(star + 1);
  parameter.name = lower.substr(0, star);
  if (rest.empty()) {
    parameter.extended = true;
    return;
  }
  std::size_t digits = 0;
  unsigned long section = 0;
  while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9' && section <= k_max_parameter_section) {
    section = section * 10 + static_cast<unsigned long>(rest[digits] - '0');
    ++digits;
  }
  bool well_formed = digits > 0 && section <= k_max_parameter_section &&
                     (digits == rest.size() || (digits + 1 == rest.size() && rest[digits] == '*'));
  if (!well_formed) {
    parameter.name = lower;  // matches no name a caller asks for
    return;
  }
  parameter.section = static_cast<unsigned>(section);
  parameter.extended = digits + 1 == rest.size();
}

// Reads a quoted string starting after its opening quote; returns the offset after it.
std::size_t read_quoted(std::string_view text, std::size_t position, std::string& value) {
  while (position < text.size()) {
    char c = text[position];
    if (c == '"') {
      return position + 1;
    }
    if (c == '\\' && position + 1 < text.size() && (text[position + 1] == '"' || text[position + 1] == '\\')) {
      value.push_back(text[position + 1]);
      position += 2;
      continue;
    }
    value.push_back(c);
    ++position;
  }
  return position;
}

std::string unfold(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c != '\r' && c != '\n') {
      out.push_back(c);
    }
  }
  return out;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_digit_value(text[i + 1]) >= 0 && hex_digit_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_digit_value(text[i + 1]) * 16 + hex_digit_value(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

struct ExtendedValue {
  std::string charset;
  std::string encoded;
};

// Splits charset'language'text; a value without both quotes is all text.
ExtendedValue split_extended_value(std::string_view value) {
  std::size_t first = value.find('\'');
  std::size_t second = first == std::string_view::npos ? std::string_view::npos : value.find('\'', first + 1);
  if (second == std::string_view::npos) {
    return {"", std::string(value)};
  }
  return {std::string(trim(value.substr(0, first))), std::string(value.substr(second + 1))};
}

std::string convert_declared(const std::string& bytes, const std::string& charset, std::string_view fallback_charset) {
  if (!charset.empty()) {
    if (auto converted = convert_to_utf8(bytes, effective_charset(charset))) {
      return *converted;
    }
  }
  return decode_unlabelled_bytes(bytes, fallback_charset);
}

std::string join_sections(const std::map<unsigned, const MimeParameter*>& sections, std::string_view fallback_charset) {
  std::string charset;
  std::string joined;
  bool any_extended = false;
  bool first = true;
  for (const auto& [section, parameter] : sections) {
    if (parameter->extended) {
      any_extended = true;
      if (first) {
        ExtendedValue split = split_extended_value(parameter->value);
        charset = split.charset;
        joined += percent_decode(split.encoded);
      } else {
        joined += percent_decode(parameter->value);
      }
    } else {
      joined += parameter->value;
    }
    first = false;
  }
  if (any_extended) {
    return convert_declared(joined, charset, fallback_charset);
  }
  return joined;
}

}  // namespace

std::string leading_token(std::string_view header_value) {
  std::string text = unfold(header_value);
  std::string_view token = trim(std::string_view(text).substr(0, text.find(';')));
  if (token.find('=') != std::string_view::npos) {
    return {};
  }
  return to_lower_ascii(token);
}

std::vector<MimeParameter> parse_mime_parameters(std::string_view header_value) {
  std::string text = unfold(header_value);
  std::vector<MimeParameter> parameters;

  std::size_t position = text.find(';');
  std::string_view first_segment = std::string_view(text).substr(0, position);
  if (first_segment.find('=') != std::string_view::npos) {
    position = 0;  // no leading token: the value starts with a parameter
  }

  while (position < text.size()) {
    while (position < text.size() && (is_blank(text[position]) || text[position] == ';')) {
      ++position;
    }
    std::size_t equals = text.find_first_of("=;", position);
    if (equals == std::string::npos) {
      break;
    }
    if (text[equals] == ';') {
      position = equals;  // a token without a value
      continue;
    }

    MimeParameter parameter;
    split_parameter_name(std::string_view(text).substr(position, equals - position), parameter);
    position = equals + 1;
    while (position < text.size() && is_blank(text[position])) {
      ++position;
    }
    if (position < text.size() && text[position] == '"') {
      position = read_quoted(text, position + 1, parameter.value);
      std::size_t next = text.find(';', position);
      position = next == std::string::npos ? text.size() : next;
    } else {
      std::size_t next = text.find(';', position);
      std::size_t end = next == std::string::npos ? text.size() : next;
      parameter.value = std::string(trim(std::string_view(text).substr(position, end - position)));
      position = end;
    }
    if (!parameter.name.empty()) {
      parameters.push_back(std::move(parameter));
    }
  }
  return parameters;
}

std::optional<std::string> decode_mime_parameter(const std::vector<MimeParameter>& parameters,
                                                 std::string_view name, std::string_view fallback_charset) {
  const MimeParameter* plain = nullptr;
  const MimeParameter* extended = nullptr;
  std::map<unsigned, const MimeParameter*> sections;  // the first of each number wins
  for (const MimeParameter& parameter : parameters) {
    if (parameter.name != name) {
      continue;
    }
    if (parameter.section) {
      sections.emplace(*parameter.section, &parameter);
    } else if (parameter.extended) {
      extended = extended != nullptr ? extended : &parameter;
    } else {
      plain = plain != nullptr ? plain : &parameter;
    }
  }

  std::string value;
  if (extended != nullptr) {
    ExtendedValue split = split_extended_value(extended->value);
    value = convert_declared(percent_decode(split.encoded), split.charset, fallback_charset);
  } else if (!sections.empty()) {
    value = join_sections(sections, fallback_charset);
  } else if (plain != nullptr) {
    value = plain->value;
  } else {
    return std::nullopt;
  }
  return decode_encoded_words(value, fallback_charset);
}

}  // namespace mgspool
