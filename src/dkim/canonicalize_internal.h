// Building blocks shared by the signer and the public canonicalization functions: they append
// into a caller's buffer so the signer can reuse one per-thread buffer. Not for other modules.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace magnetic::dkim {

struct MessageParts;

void append_header_relaxed(std::string& out, std::string_view name, std::string_view value);
void append_body_relaxed(std::string& out, std::string_view body);
// split_message() into an existing MessageParts, reusing its vector's capacity.
Status split_message_into(std::string_view message, MessageParts& parts);
std::string base64_encode(std::string_view bytes);

}  // namespace magnetic::dkim
