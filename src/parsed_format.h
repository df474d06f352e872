// Mailgun's parsed format and store() notifications: the JSON-valued fields that describe
// headers, inline images and attachments. Odd values are kept and recorded as defects,
// never fatal, because refusing the request would only make Mailgun retry the same bytes.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "part_record.h"

namespace mgspool {

// Reads message-headers (a JSON list of [name, value] pairs) into a header list. A value
// that is not a string is kept as its JSON text; anything unreadable becomes a defect.
HeaderList headers_from_message_headers(const std::string& json_text, std::vector<std::string>& defects);

// Applies content-id-map ({"<cid>": "attachment-N", ...}) to the stored attachments: each
// mapped part gets its content_id and the role "inline". Duplicate keys are recorded.
void apply_content_id_map(const std::string& json_text, std::vector<PartRecord>& parts,
                          std::vector<std::string>& defects);

// Compares attachment-count with the attachment-N files that arrived; a difference is
// recorded in defects and in extra ("attachment_count_declared", "missing_attachment_fields").
void check_attachment_count(const std::string& count_text, const std::vector<PartRecord>& parts,
                            std::vector<std::string>& defects, nlohmann::ordered_json& extra);

// Reads the attachments field of a store() notification (a JSON list of {url, content-type,
// name, size}) into "announced_attachments" and sets "attachments_not_included" in extra.
void record_announced_attachments(const std::string& json_text, std::vector<std::string>& defects,
                                  nlohmann::ordered_json& extra);

}  // namespace mgspool
