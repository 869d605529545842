// VERP envelope senders: every recipient's mail goes out with its own MAIL FROM,
// bounce+<token>@<bounce domain>, so that a bounce coming back names the recipient it is about
// even when the bounce itself is unreadable.
//
// The token is the recipient's row in the message spool (base 36) and a tag of 8 base-32
// characters, the start of HMAC-SHA256(key, row), so that nobody can make up a token that makes
// us suppress an address of their choosing. Both parts are lower case: some MTAs lower-case the
// local parts they return mail to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace magnetic::feedback {

// The local part's prefix; report_parser.h finds tokens after it.
inline constexpr std::string_view kVerpPrefix = "bounce+";

// "bounce+<token>@<domain>" for the recipient in spool row `row`.
std::string verp_address(int64_t row, std::string_view domain, std::string_view key);

// The token of `row` alone.
std::string verp_token(int64_t row, std::string_view key);

// The row a token stands for, if its tag is right (any case). nullopt for anything else.
std::optional<int64_t> verp_row(std::string_view token, std::string_view key);

// The token of an address bounce+<token>@<domain> whose domain is `domain` (any case); "" when
// the address is not one of ours.
std::string verp_token_of(std::string_view address, std::string_view domain);

}  // namespace magnetic::feedback
