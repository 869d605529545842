// Identifiers that are unique across nodes without coordination.
#pragma once

#include <cstdint>
#include <string>

namespace magnetic {

// A sortable 26-character id: 48 bits of milliseconds since the epoch, then 80 random bits,
// in Crockford base32 (lower case). Random bits come from OpenSSL's CSPRNG, so two nodes
// never need to agree on a counter.
std::string new_id();

// n random bytes as lower-case base32 (8 characters per 5 bytes), for tokens in URLs and
// VERP addresses: unguessable, and safe in a local part and a URL path.
std::string random_token(size_t bytes = 10);

}  // namespace magnetic
