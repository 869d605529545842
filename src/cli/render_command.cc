#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/ids.h"
#include "base/json_depth.h"
#include "campaign/composer.h"
#include "campaign/template_set.h"
#include "cli/commands.h"
#include "mail/address.h"
#include "mail/message.h"

namespace magnetic::cli {

int render_command(const RenderArgs& args) {
  auto templates = campaign::TemplateSet::load_file(args.template_path);
  if (!templates) {
    std::fprintf(stderr, "magnetic render: %s\n", templates.status().message().c_str());
    return 1;
  }
  nlohmann::json data = nlohmann::json::object();
  if (!args.data_path.empty()) {
    std::ifstream in(args.data_path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "magnetic render: cannot read data '%s'\n", args.data_path.c_str());
      return 1;
    }
    std::stringstream buf;
    buf << in.rdbuf();
    if (json_nesting_exceeds(buf.str(), kMaxDataNesting)) {
      std::fprintf(stderr, "magnetic render: data '%s' nests deeper than %d levels\n",
                   args.data_path.c_str(), kMaxDataNesting);
      return 1;
    }
    data = nlohmann::json::parse(buf.str(), nullptr, false);
    if (data.is_discarded() || !data.is_object()) {
      std::fprintf(stderr, "magnetic render: data '%s' is not a JSON object\n",
                   args.data_path.c_str());
      return 1;
    }
  }

  if (!args.part.empty()) {
    campaign::RenderedParts parts;
    if (Status s = templates->render(data, !args.allow_missing, parts); !s) {
      std::fprintf(stderr, "magnetic render: %s\n", s.message().c_str());
      return 1;
    }
    const std::string* chosen = args.part == "subject" ? &parts.subject
                                : args.part == "text"  ? &parts.text
                                : args.part == "html"  ? &parts.html
                                                       : nullptr;
    if (!chosen) {
      std::fprintf(stderr, "magnetic render: --part must be subject, text or html\n");
      return 1;
    }
    std::fwrite(chosen->data(), 1, chosen->size(), stdout);
    return 0;
  }

  auto from = mail::parse_mailbox(args.from);
  if (!from) {
    std::fprintf(stderr, "magnetic render: --from: %s\n", from.status().message().c_str());
    return 1;
  }
  std::string to = args.to;
  if (to.empty())
    to = data.contains("email") && data["email"].is_string() ? data["email"].get<std::string>()
                                                             : "recipient@example.com";
  campaign::ComposerOptions options;
  options.from = *from;
  options.unsubscribe_url = args.unsubscribe_url;
  options.strict = !args.allow_missing;
  campaign::Composer composer(std::make_shared<const campaign::TemplateSet>(std::move(*templates)),
                              options);
  std::string message;
  std::string token = random_token();
  auto sender = composer.compose({to, token, mail::make_message_id(from->domain), &data}, message);
  if (!sender) {
    std::fprintf(stderr, "magnetic render: %s\n", sender.status().message().c_str());
    return 1;
  }
  std::fwrite(message.data(), 1, message.size(), stdout);
  return 0;
}

}  // namespace magnetic::cli
