#include "campaign/composer.h"

#include "mail/message.h"

namespace magnetic::campaign {

std::string Composer::envelope_sender(const std::string& token) const {
  return "bounce+" + token + "@" + options_.from.domain;
}

std::string Composer::unsubscribe_link(const std::string& token) const {
  std::string url = options_.unsubscribe_url;
  if (auto at = url.find("{token}"); at != std::string::npos) return url.replace(at, 7, token);
  return url + (url.find('?') == std::string::npos ? "?token=" : "&token=") + token;
}

Result<std::string> Composer::compose(const ComposeInput& in, std::string& message,
                                      std::chrono::system_clock::time_point now) const {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  thread_local RenderedParts parts;
  if (Status s = templates_->render(in.data ? *in.data : kEmpty, options_.strict, parts); !s) {
    return Status::invalid("rendering failed: " + s.message());
  }

  thread_local mail::MessageSpec spec;
  spec.from = options_.from;
  auto to = mail::parse_address(in.email);
  if (!to) return Status::invalid("invalid recipient '" + in.email + "': " + to.status().message());
  spec.to = std::move(*to);
  spec.subject = std::move(parts.subject);
  spec.text = std::move(parts.text);
  spec.html = std::move(parts.html);
  spec.message_id = in.message_id;
  spec.date = now;
  spec.extra_headers.clear();
  if (!options_.unsubscribe_url.empty()) {
    spec.extra_headers.emplace_back(
        "List-Unsubscribe", "<" + unsubscribe_link(in.token) + ">, <mailto:unsubscribe+" +
                                in.token + "@" + options_.from.domain + "?subject=unsubscribe>");
    spec.extra_headers.emplace_back("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
  }

  thread_local std::string unsigned_message;
  unsigned_message.clear();
  mail::build_message(spec, unsigned_message);
  // Hand the rendered strings back to the thread's buffers for the next message.
  parts.subject = std::move(spec.subject);
  parts.text = std::move(spec.text);
  parts.html = std::move(spec.html);

  message.clear();
  if (options_.signer) {
    auto signature = options_.signer->sign(unsigned_message);
    if (!signature) return Status::internal("DKIM signing failed: " + signature.status().message());
    message.reserve(signature->size() + unsigned_message.size());
    message.append(*signature);
  }
  message.append(unsigned_message);
  return envelope_sender(in.token);
}

}  // namespace magnetic::campaign
