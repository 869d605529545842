// Email identities: sending domains and addresses, with the domain's DKIM key.
//
// This is a self-hosted service: an identity is verified when it is created (nothing is looked
// up in DNS). A domain gets an RSA key made here (Easy DKIM, "AWS_SES" origin, 2048 bits unless
// NextSigningKeyLength says 1024) or the caller's own (BYODKIM, "EXTERNAL"). SES answers Easy
// DKIM with three CNAME tokens; here DkimAttributes.Tokens holds the one selector, and the TXT
// record to publish is in the extra field DkimDnsRecords ([{Name, Type, Value}]), which SDKs
// drop since the model does not know it but which the raw JSON carries.
#include "api/content.h"
#include "api/handler.h"
#include "base/ids.h"
#include "dkim/signer.h"

namespace magnetic::api {
namespace {

bool is_selector(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
  });
}

// The identity name as stored: a domain in lower-case A-labels; an address with its local part
// as given and its domain so.
std::optional<std::string> normalize(const std::string& name, bool& is_domain, std::string& why) {
  is_domain = name.find('@') == std::string::npos;
  Result<mail::Mailbox> m = mail::parse_address(is_domain ? "postmaster@" + name : name);
  if (!m) {
    why = m.status().message();
    return std::nullopt;
  }
  if (is_domain && m->domain.find('.') == std::string::npos) {
    why = "a sending domain needs at least two labels";
    return std::nullopt;
  }
  if (is_domain && m->domain.front() == '[') {
    why = "an address literal is not a domain";
    return std::nullopt;
  }
  return is_domain ? m->domain : m->local + "@" + m->domain;
}

// DomainSigningPrivateKey: base64 of a DER key (PKCS#8 or PKCS#1, as SES takes it) or a PEM.
Result<dkim::DkimKey> parse_private_key(const std::string& text) {
  if (text.find("-----BEGIN") != std::string::npos) return dkim::DkimKey::from_pem(text);
  std::optional<std::string> der = base64_decode(text);
  if (!der || der->empty()) return Status::invalid("not base64");
  std::string body = base64_encode(*der);
  std::string wrapped;
  for (size_t i = 0; i < body.size(); i += 64) wrapped += body.substr(i, 64) + "\n";
  Result<dkim::DkimKey> key = dkim::DkimKey::from_pem("-----BEGIN PRIVATE KEY-----\n" + wrapped +
                                                      "-----END PRIVATE KEY-----\n");
  if (key) return key;
  key = dkim::DkimKey::from_pem("-----BEGIN RSA PRIVATE KEY-----\n" + wrapped +
                                "-----END RSA PRIVATE KEY-----\n");
  if (key) return key;
  return Status::invalid("not an RSA or Ed25519 private key in PKCS#8 or PKCS#1 DER");
}

std::string key_length(const dkim::DkimKey& key) {
  if (key.algorithm() == dkim::Algorithm::kEd25519Sha256) return "ED25519";
  return key.bits() == 1024 ? "RSA_1024_BIT" : "RSA_2048_BIT";
}

nlohmann::json dkim_attributes(const store::Identity& id) {
  if (!id.is_domain) {
    return {
        {"SigningEnabled", false}, {"Status", "NOT_STARTED"}, {"Tokens", nlohmann::json::array()}};
  }
  nlohmann::json a = {{"SigningEnabled", id.dkim_signing_enabled},
                      {"Status", "SUCCESS"},
                      {"Tokens", nlohmann::json::array({id.dkim_selector})},
                      {"SigningAttributesOrigin", id.dkim_origin},
                      {"LastKeyGenerationTimestamp", epoch_seconds(id.created_at)}};
  if (id.dkim_key_length.starts_with("RSA_")) {
    a["CurrentSigningKeyLength"] = id.dkim_key_length;
    if (id.dkim_origin == "AWS_SES") a["NextSigningKeyLength"] = id.dkim_key_length;
  }
  return a;
}

nlohmann::json dns_records(const store::Identity& id) {
  nlohmann::json records = nlohmann::json::array();
  if (!id.is_domain || id.dkim_private_key_pem.empty()) return records;
  Result<dkim::DkimKey> key = dkim::DkimKey::from_pem(id.dkim_private_key_pem);
  if (!key) return records;
  records.push_back({{"Name", id.dkim_selector + "._domainkey." + id.name},
                     {"Type", "TXT"},
                     {"Value", key->dns_txt_value()}});
  return records;
}

// The label of a path, normalized as at creation when it parses.
std::string lookup_name(const std::string& label) {
  bool is_domain;
  std::string why;
  return normalize(label, is_domain, why).value_or(label);
}

}  // namespace

Reply create_email_identity(Services& s, Call& c) {
  std::optional<std::string> name = c.body.string("EmailIdentity", Need::kRequired, 1, 320);
  if (auto tags = c.body.array("Tags"); tags && tags->size() > 0) {
    c.fail("Tags: tags on identities are not supported by this service.");
  }
  std::optional<std::string> config = c.body.string("ConfigurationSetName", Need::kOptional, 1);
  std::optional<std::string> selector, private_key, length, origin;
  bool has_dkim = c.body.has("DkimSigningAttributes");
  if (auto d = c.body.object("DkimSigningAttributes")) {
    selector = d->string("DomainSigningSelector", Need::kOptional, 1, 63);
    private_key = d->string("DomainSigningPrivateKey", Need::kOptional, 1, 20480);
    length = d->enumeration("NextSigningKeyLength", {"RSA_1024_BIT", "RSA_2048_BIT"});
    origin = d->string("DomainSigningAttributesOrigin");
    d->finish();
  }
  c.body.finish();
  if (c.error()) return *c.error();

  // What kind of identity, and its DKIM key.
  store::Identity id;
  std::string why;
  std::optional<std::string> normal = normalize(*name, id.is_domain, why);
  if (!normal)
    return bad_request("EmailIdentity '" + *name +
                       "' is not a domain or an email "
                       "address: " +
                       why + ".");
  id.name = *normal;
  id.created_at = rfc3339(c.now);
  if (!id.is_domain && has_dkim) {
    return bad_request("DkimSigningAttributes applies to domain identities only; " + *name +
                       " is an email address.");
  }
  if (origin && *origin != "AWS_SES" && *origin != "EXTERNAL") {
    return bad_request(
        "DkimSigningAttributes.DomainSigningAttributesOrigin must be AWS_SES or "
        "EXTERNAL here; got '" +
        *origin + "'.");
  }
  bool external = (origin && *origin == "EXTERNAL") || selector || private_key;
  if (origin && *origin == "AWS_SES" && (selector || private_key)) {
    return bad_request(
        "DkimSigningAttributes: DomainSigningSelector and DomainSigningPrivateKey "
        "are for EXTERNAL (BYODKIM) keys, not AWS_SES.");
  }
  if (id.is_domain && external) {
    if (!selector || !private_key) {
      return bad_request(std::string("Missing required field DkimSigningAttributes.") +
                         (selector ? "DomainSigningPrivateKey" : "DomainSigningSelector") +
                         " (bring-your-own DKIM needs both).");
    }
    if (length) {
      return bad_request(
          "DkimSigningAttributes.NextSigningKeyLength applies to keys this "
          "service makes (AWS_SES), not EXTERNAL ones.");
    }
    if (!is_selector(*selector)) {
      return bad_request(
          "DkimSigningAttributes.DomainSigningSelector must be letters, digits "
          "and inner hyphens (a DNS label); got '" +
          *selector + "'.");
    }
    Result<dkim::DkimKey> key = parse_private_key(*private_key);
    if (!key) {
      return bad_request("DkimSigningAttributes.DomainSigningPrivateKey is not a usable key: " +
                         key.status().message() + ".");
    }
    if (key->algorithm() == dkim::Algorithm::kRsaSha256 && key->bits() != 1024 &&
        key->bits() != 2048) {
      return bad_request("DkimSigningAttributes.DomainSigningPrivateKey is an RSA key of " +
                         std::to_string(key->bits()) + " bits; use 1024 or 2048 (or Ed25519).");
    }
    id.dkim_origin = "EXTERNAL";
    id.dkim_selector = *selector;
    id.dkim_private_key_pem = key->private_pem();
    id.dkim_key_length = key_length(*key);
  } else if (id.is_domain) {
    int bits = length && *length == "RSA_1024_BIT" ? 1024 : 2048;
    Result<dkim::DkimKey> key = dkim::DkimKey::generate(dkim::Algorithm::kRsaSha256, bits);
    if (!key) return internal_error("The DKIM key could not be made; try again.");
    id.dkim_origin = "AWS_SES";
    id.dkim_selector = (s.options.dkim_selector_prefix.empty() ? std::string("mm")
                                                               : s.options.dkim_selector_prefix) +
                       random_token(5);
    id.dkim_private_key_pem = key->private_pem();
    id.dkim_key_length = key_length(*key);
  }
  id.dkim_signing_enabled = id.is_domain;

  if (config) {
    Result<store::ConfigurationSet> set = s.store.get_configuration_set(*config);
    if (!set) {
      if (set.status().code() == StatusCode::kNotFound) {
        return not_found("Configuration set " + *config + " does not exist.");
      }
      return from_status(set.status());
    }
    id.configuration_set = *config;
  }
  if (Status st = s.store.create_identity(id); !st) {
    if (st.code() == StatusCode::kAlreadyExists) {
      return already_exists("Email identity " + id.name + " already exists.");
    }
    return from_status(st);
  }
  return nlohmann::json{{"IdentityType", id.is_domain ? "DOMAIN" : "EMAIL_ADDRESS"},
                        {"VerifiedForSendingStatus", true},
                        {"DkimAttributes", dkim_attributes(id)},
                        {"DkimDnsRecords", dns_records(id)}};
}

Reply get_email_identity(Services& s, Call& c) {
  c.finish_query();
  if (c.error()) return *c.error();
  Result<store::Identity> id = s.store.get_identity(lookup_name(c.labels[0]));
  if (!id) {
    if (id.status().code() == StatusCode::kNotFound) {
      return not_found("Email identity " + c.labels[0] + " does not exist.");
    }
    return from_status(id.status());
  }
  nlohmann::json out = {{"IdentityType", id->is_domain ? "DOMAIN" : "EMAIL_ADDRESS"},
                        {"FeedbackForwardingStatus", true},
                        {"VerifiedForSendingStatus", true},
                        {"VerificationStatus", "SUCCESS"},
                        {"DkimAttributes", dkim_attributes(*id)},
                        {"Policies", nlohmann::json::object()},
                        {"Tags", nlohmann::json::array()},
                        {"DkimDnsRecords", dns_records(*id)}};
  if (!id->configuration_set.empty()) out["ConfigurationSetName"] = id->configuration_set;
  return out;
}

namespace {

Reply identity_listing(Services& s, const store::Page& page, const std::string& contains,
                       const std::string& type, const std::string& status) {
  auto listing = filtered_listing<store::Identity>(
      page, [&](const store::Page& p) { return s.store.list_identities(p); },
      [&](const store::Identity& id) {
        if (!contains.empty() && id.name.find(contains) == std::string::npos) return false;
        if (!type.empty() && type != (id.is_domain ? "DOMAIN" : "EMAIL_ADDRESS")) return false;
        return status.empty() || status == "SUCCESS";
      });
  if (!listing) {
    if (listing.status().code() == StatusCode::kInvalidArgument) {
      return bad_request("NextToken is not a token this service returned.");
    }
    return from_status(listing.status());
  }
  nlohmann::json items = nlohmann::json::array();
  for (const store::Identity& id : listing->items) {
    items.push_back({{"IdentityType", id.is_domain ? "DOMAIN" : "EMAIL_ADDRESS"},
                     {"IdentityName", id.name},
                     {"SendingEnabled", true},
                     {"VerificationStatus", "SUCCESS"}});
  }
  nlohmann::json out = {{"EmailIdentities", items}};
  if (!listing->next_token.empty()) out["NextToken"] = listing->next_token;
  return out;
}

}  // namespace

Reply list_email_identities(Services& s, Call& c) {
  store::Page page = read_page(c, 100, 1000);
  c.finish_query();
  if (c.error()) return *c.error();
  return identity_listing(s, page, "", "", "");
}

// The POST form of newer SES v2 models, with a Filter: IDENTITY_NAME_CONTAINS, IDENTITY_TYPE,
// VERIFICATION_STATUS (every identity here is SUCCESS).
Reply list_email_identities_post(Services& s, Call& c) {
  store::Page page = read_body_page(c, 100, 1000);
  std::string contains, type, status;
  if (auto f = c.body.object("Filter")) {
    contains = f->string("IDENTITY_NAME_CONTAINS").value_or("");
    type =
        f->enumeration("IDENTITY_TYPE", {"EMAIL_ADDRESS", "DOMAIN", "MANAGED_DOMAIN"}).value_or("");
    status = f->enumeration("VERIFICATION_STATUS",
                            {"PENDING", "SUCCESS", "FAILED", "TEMPORARY_FAILURE", "NOT_STARTED"})
                 .value_or("");
    f->finish();
  }
  c.body.finish();
  if (c.error()) return *c.error();
  return identity_listing(s, page, contains, type, status);
}

Reply delete_email_identity(Services& s, Call& c) {
  c.finish_query();
  if (c.error()) return *c.error();
  if (Status st = s.store.delete_identity(lookup_name(c.labels[0])); !st) {
    if (st.code() == StatusCode::kNotFound) {
      return not_found("Email identity " + c.labels[0] + " does not exist.");
    }
    return from_status(st);
  }
  return nlohmann::json::object();
}

}  // namespace magnetic::api
