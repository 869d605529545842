// Reading the address fields of a message someone else built (To, Cc, Bcc, From of a raw
// message handed to the API), as opposed to parse_mailbox, which reads one address a person
// typed.
#pragma once

#include <string_view>
#include <vector>

#include "base/status.h"
#include "mail/address.h"

namespace magnetic::mail {

// Parses an RFC 5322 address-list field value: mailboxes separated by commas, each as
// parse_mailbox takes it, plus what messages carry: folding (unfolded first), comments in
// parentheses (dropped, nested or not), and groups ("Team: a@example.com, b@example.com;"),
// whose members are returned and whose names are dropped; an empty group gives no address.
// Fails (kInvalidArgument) on an unterminated quote, comment or angle bracket, or on a mailbox
// parse_mailbox refuses; the message says which mailbox (1-based) and why.
Result<std::vector<Mailbox>> parse_address_list(std::string_view value);

}  // namespace magnetic::mail
