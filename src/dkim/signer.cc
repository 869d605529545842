// DKIM signing: relaxed/relaxed, rsa-sha256 and ed25519-sha256.
//
// Strategy, per message: split the header block once into views (no copies), pick the signed
// fields from the bottom up, hash the relaxed body, write the folded DKIM-Signature up to
// "b=", canonicalize that very text as the last hashed field (so the hash matches whatever the
// folding did), sign, and append the folded b= value. The buffers and OpenSSL contexts live
// per thread and keep their capacity, so a worker signing thousands of messages allocates
// little beyond the returned field.
#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstring>
#include <ctime>

#include "dkim/canonicalize_internal.h"
#include "dkim/signer.h"

namespace magnetic::dkim {
namespace {

constexpr size_t kLineWidth = 78;  // RFC 5322 2.1.1: lines should stay within 78 characters

// Fetched once: EVP_sha256() would make OpenSSL look the implementation up on every use.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

// Setting a signing context up costs 3 to 5 us (provider lookups), copying a ready one about
// 0.3 us, so each thread keeps one initialized context per recently used key and signs on a
// copy. A template holds a reference to its key: the pointer cannot be reused for another key
// while cached, and a dropped key is freed once evicted or when the thread ends.
constexpr size_t kCachedKeys = 4;

struct SignTemplate {
  EVP_PKEY* pkey = nullptr;
  EVP_MD_CTX* ctx = nullptr;
};

struct ThreadState {
  EVP_MD_CTX* hash = EVP_MD_CTX_new();
  EVP_MD_CTX* sign = EVP_MD_CTX_new();
  SignTemplate templates[kCachedKeys];
  size_t next_victim = 0;
  MessageParts parts;
  std::string canonical;  // relaxed body, then the header hash input
  std::string signature;
  std::vector<const HeaderField*> chosen;  // per h= entry; nullptr: signed as absent
  std::vector<std::string_view> h_names;   // per h= entry, lower case

  ThreadState() { parts.fields.reserve(32); }
  ~ThreadState() {
    EVP_MD_CTX_free(hash);
    EVP_MD_CTX_free(sign);
    for (SignTemplate& t : templates) EVP_MD_CTX_free(t.ctx);
  }
};

ThreadState& thread_state() {
  thread_local ThreadState state;
  return state;
}

std::string openssl_error(const char* what) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  return std::string(what) + ": " + buf;
}

Status sha256(ThreadState& ts, std::string_view data, unsigned char (&digest)[32]) {
  unsigned int len = 0;
  if (EVP_DigestInit_ex2(ts.hash, sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(ts.hash, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ts.hash, digest, &len) != 1 || len != 32) {
    return Status::internal(openssl_error("SHA-256"));
  }
  return Status::ok();
}

// The initialized signing context for this key, made on first use in this thread.
const EVP_MD_CTX* signing_template(ThreadState& ts, EVP_PKEY* pkey, const char* md_name) {
  for (const SignTemplate& t : ts.templates) {
    if (t.pkey == pkey) return t.ctx;
  }
  SignTemplate& slot = ts.templates[ts.next_victim];
  ts.next_victim = (ts.next_victim + 1) % kCachedKeys;
  EVP_MD_CTX_free(slot.ctx);
  slot = {};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestSignInit_ex(ctx, nullptr, md_name, nullptr, nullptr, pkey, nullptr) != 1) {
    EVP_MD_CTX_free(ctx);
    return nullptr;
  }
  slot = {pkey, ctx};
  return ctx;
}

// Signs per the key's algorithm into ts.signature (raw bytes).
Status sign_into(ThreadState& ts, const DkimKey& key, std::string_view hash_input) {
  if (!key.pkey()) return Status::invalid("no key");

  // rsa-sha256 signs the input itself (OpenSSL hashes and pads); ed25519-sha256 signs the
  // 32-byte SHA-256 digest with pure Ed25519, which takes no digest of its own (RFC 8463 3).
  unsigned char digest[32];
  const char* md_name = "SHA256";
  std::string_view data = hash_input;
  if (key.algorithm() == Algorithm::kEd25519Sha256) {
    if (Status s = sha256(ts, hash_input, digest); !s) return s;
    md_name = nullptr;
    data = std::string_view(reinterpret_cast<const char*>(digest), sizeof digest);
  }

  const EVP_MD_CTX* ready = signing_template(ts, key.pkey(), md_name);
  if (!ready || EVP_MD_CTX_copy_ex(ts.sign, ready) != 1) {
    return Status::internal(openssl_error("signature init"));
  }
  size_t len = static_cast<size_t>(EVP_PKEY_get_size(key.pkey()));
  ts.signature.resize(len);
  if (EVP_DigestSign(ts.sign, reinterpret_cast<unsigned char*>(ts.signature.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return Status::internal(openssl_error("signature"));
  }
  ts.signature.resize(len);
  return Status::ok();
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

// A field name as written may carry WSP before the colon ("Subject :"); it still names Subject.
std::string_view trim_name(std::string_view name) {
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
  while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) name.remove_prefix(1);
  return name;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

// Tag values we write must not end a tag early or break the field.
bool plain_tag_value(std::string_view v) {
  for (unsigned char c : v) {
    if (c <= ' ' || c >= 0x7f || c == ';') return false;
  }
  return true;
}

// RFC 5322 ftext: printable ASCII except colon.
bool valid_field_name(std::string_view n) {
  if (n.empty()) return false;
  for (unsigned char c : n) {
    if (c < 33 || c > 126 || c == ':') return false;
  }
  return true;
}

// Appends pieces to a header field, breaking lines before a piece that would pass the width.
// A break writes CRLF SP; where the piece wanted a space before it, that space is the one the
// break replaces, so unfolding gives back the unbroken text.
class Folder {
 public:
  Folder(std::string& out, size_t column) : out_(out), column_(column) {}

  // room_after: columns that must stay free after the piece on the same line.
  void put(std::string_view piece, bool space_before, size_t room_after = 0) {
    size_t need = piece.size() + (space_before ? 1 : 0) + room_after;
    if (column_ + need > kLineWidth && column_ > 1) {
      out_.append("\r\n ");
      column_ = 1;
    } else if (space_before) {
      out_.push_back(' ');
      ++column_;
    }
    out_.append(piece);
    column_ += piece.size();
  }

  // A long base64 value, filling each line to the width; FWS may sit anywhere inside it.
  void put_wrapped(std::string_view value) {
    while (!value.empty()) {
      if (column_ >= kLineWidth) {
        out_.append("\r\n ");
        column_ = 1;
      }
      size_t n = std::min(kLineWidth - column_, value.size());
      out_.append(value.substr(0, n));
      column_ += n;
      value.remove_prefix(n);
    }
  }

  size_t column() const { return column_; }

 private:
  std::string& out_;
  size_t column_;
};

}  // namespace

Result<Algorithm> parse_algorithm(std::string_view name) {
  if (name == "rsa" || name == "rsa-sha256") return Algorithm::kRsaSha256;
  if (name == "ed25519" || name == "ed25519-sha256") return Algorithm::kEd25519Sha256;
  return Status::invalid("unknown DKIM algorithm '" + std::string(name) + "' (rsa or ed25519)");
}

Result<std::string> sign_header_hash_input(const DkimKey& key, std::string_view hash_input) {
  ThreadState& ts = thread_state();
  if (Status s = sign_into(ts, key, hash_input); !s) return s;
  return base64_encode(ts.signature);
}

Result<DkimSigner> DkimSigner::create(SignerOptions options, DkimKey key) {
  if (!key.pkey()) return Status::invalid("DKIM signer needs a key");
  if (options.domain.empty() || !plain_tag_value(options.domain)) {
    return Status::invalid("DKIM domain '" + options.domain +
                           "' must be a non-empty ASCII name (use the A-label of an IDN)");
  }
  if (options.selector.empty() || !plain_tag_value(options.selector)) {
    return Status::invalid("DKIM selector '" + options.selector + "' must be non-empty ASCII");
  }
  if (!options.identity.empty()) {
    // RFC 6376 3.5: the i= domain is d= or one of its subdomains.
    std::string_view id = options.identity;
    std::string_view id_domain =
        id.substr(id.find('@') == std::string_view::npos ? id.size() : id.find('@') + 1);
    std::string d = lower(options.domain), idd = lower(id_domain);
    bool within = idd == d || (idd.size() > d.size() && idd.ends_with("." + d));
    if (!plain_tag_value(id) || !within) {
      return Status::invalid("DKIM identity '" + options.identity +
                             "' must be ASCII, with d= or a subdomain after the @");
    }
  }
  std::string_view sep = options.header_separator;
  size_t colon = sep.find(':');
  if (colon == std::string_view::npos || sep.find(':', colon + 1) != std::string_view::npos ||
      sep.find_first_not_of(" :") != std::string_view::npos) {
    return Status::invalid("h= separator must be a colon with optional spaces");
  }

  bool has_from = false;
  for (const std::string& name : options.headers) {
    if (!valid_field_name(name)) return Status::invalid("bad header name '" + name + "' for h=");
    if (iequals(name, "from")) has_from = true;
  }
  if (!has_from) return Status::invalid("h= must include From (RFC 6376 5.4)");

  DkimSigner signer;
  signer.lower_headers_.reserve(options.headers.size());
  for (const std::string& name : options.headers) signer.lower_headers_.push_back(lower(name));
  signer.options_ = std::move(options);
  signer.key_ = std::move(key);
  return signer;
}

Result<std::string> DkimSigner::sign(std::string_view message) const {
  ThreadState& ts = thread_state();

  // 1. The header block, once.
  if (Status s = split_message_into(message, ts.parts); !s) return s;
  const std::vector<HeaderField>& fields = ts.parts.fields;

  // 2. Which field each h= entry signs: the n-th mention of a name takes the n-th field of
  // that name from the bottom.
  ts.chosen.clear();
  ts.h_names.clear();
  bool from_signed = false;
  for (size_t i = 0; i < lower_headers_.size(); ++i) {
    const std::string& name = lower_headers_[i];
    size_t skip = 0;
    for (size_t j = 0; j < i; ++j) skip += lower_headers_[j] == name;
    const HeaderField* found = nullptr;
    for (size_t k = fields.size(); k-- > 0;) {
      if (!iequals(trim_name(fields[k].name), name)) continue;
      if (skip == 0) {
        found = &fields[k];
        break;
      }
      --skip;
    }
    if (!found && !options_.sign_absent_headers) continue;
    if (found && name == "from") from_signed = true;
    ts.chosen.push_back(found);
    ts.h_names.push_back(name);
  }
  // TODO: a message with two From fields is signed (the bottom one) instead of refused;
  // RFC 5322 allows one and receivers applying DMARC reject such mail, so the mail builder
  // should never produce it, but raw messages from the API are not checked here.
  if (!from_signed) return Status::invalid("message has no From field to sign");

  // 3. bh=
  ts.canonical.clear();
  append_body_relaxed(ts.canonical, ts.parts.body);
  unsigned char body_digest[32];
  if (Status s = sha256(ts, ts.canonical, body_digest); !s) return s;
  std::string bh = base64_encode({reinterpret_cast<const char*>(body_digest), 32});

  // 4. The field up to "b=", folded.
  bool ed25519 = key_.algorithm() == Algorithm::kEd25519Sha256;
  std::string out;
  out.reserve(512);
  out.append("DKIM-Signature:");
  Folder fold(out, out.size());
  fold.put("v=1;", true);
  fold.put(ed25519 ? "a=ed25519-sha256;" : "a=rsa-sha256;", true);
  fold.put("c=relaxed/relaxed;", true);
  fold.put("d=" + options_.domain + ";", true);
  if (!options_.identity.empty()) fold.put("i=" + options_.identity + ";", true);
  if (options_.add_query_method) fold.put("q=dns/txt;", true);
  fold.put("s=" + options_.selector + ";", true);
  if (options_.add_timestamp) {
    long t = options_.timestamp ? *options_.timestamp : static_cast<long>(std::time(nullptr));
    fold.put("t=" + std::to_string(t) + ";", true);
  }

  // h= goes name by name so a long list can break after a separator (h= allows FWS there).
  // A separator ending in a space gives that space to the break; a bare ":" gets one added.
  std::string_view sep = options_.header_separator;
  bool sep_space_after = sep.back() == ' ';
  std::string_view sep_core = sep.substr(0, sep.find_last_not_of(' ') + 1);
  std::string piece = "h=";
  for (size_t i = 0; i < ts.h_names.size(); ++i) {
    bool last = i + 1 == ts.h_names.size();
    piece.append(ts.h_names[i]);
    piece.append(last ? std::string_view(";") : sep_core);
    fold.put(piece, i == 0 || sep_space_after);
    piece.clear();
  }

  // "b=" keeps the start of its value on its line, so no break falls right after "=".
  fold.put("bh=" + bh + ";", true);
  fold.put("b=", true, 16);

  // 5. The header hash input: the chosen fields, then this field with b= empty, no CRLF.
  ts.canonical.clear();
  for (size_t i = 0; i < ts.chosen.size(); ++i) {
    if (ts.chosen[i]) append_header_relaxed(ts.canonical, ts.chosen[i]->name, ts.chosen[i]->value);
  }
  constexpr size_t kNameLen = sizeof("DKIM-Signature:") - 1;
  append_header_relaxed(ts.canonical, "dkim-signature", std::string_view(out).substr(kNameLen));
  ts.canonical.resize(ts.canonical.size() - 2);

  // 6. Sign and finish the field.
  if (Status s = sign_into(ts, key_, ts.canonical); !s) return s;
  fold.put_wrapped(base64_encode(ts.signature));
  out.append("\r\n");
  return out;
}

}  // namespace magnetic::dkim
