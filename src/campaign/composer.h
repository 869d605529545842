// Composing one recipient's message: render the template with the recipient's data, build the
// MIME message, add the per-recipient unsubscribe fields, and DKIM-sign it.
//
// Every message gets its own envelope sender, a VERP address on the From domain
// (bounce+<token>@domain), so a bounce that comes back later names the recipient it concerns.
// With an unsubscribe URL the message carries List-Unsubscribe with an https and a mailto
// target and List-Unsubscribe-Post for one-click (RFC 8058), both with the same token.
//
// Thread-safe: compose() is const.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/status.h"
#include "campaign/template_set.h"
#include "dkim/signer.h"
#include "mail/address.h"

namespace magnetic::campaign {

struct ComposerOptions {
  mail::Mailbox from;
  // https URL for one-click unsubscribe. "{token}" is replaced by the recipient's token;
  // without it the token is appended as a "token" query parameter.
  std::string unsubscribe_url;
  std::optional<dkim::DkimSigner> signer;
  bool strict = true;  // a variable missing from a recipient's data fails that recipient
};

struct ComposeInput {
  std::string email;
  std::string token;
  std::string message_id;
  const nlohmann::json* data = nullptr;
};

class Composer {
 public:
  Composer(std::shared_ptr<const TemplateSet> templates, ComposerOptions options)
      : templates_(std::move(templates)), options_(std::move(options)) {}

  // Writes the signed message into `message` (replacing its content) and returns the envelope
  // sender. Errors are rendering or signing failures, with the reason.
  Result<std::string> compose(
      const ComposeInput& in, std::string& message,
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;

  std::string envelope_sender(const std::string& token) const;
  std::string unsubscribe_link(const std::string& token) const;

 private:
  std::shared_ptr<const TemplateSet> templates_;
  ComposerOptions options_;
};

}  // namespace magnetic::campaign
