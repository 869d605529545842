#include "cli/feedback_command.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "feedback/bounce_rules.h"
#include "feedback/reply_policy.h"
#include "feedback/report_parser.h"
#include "smtp/reply.h"

namespace magnetic::cli {
namespace {

struct FeedbackArgs {
  std::vector<std::string> files;
  std::string reply;
  std::string rules;  // a user bounce rules file, consulted before the defaults
};

void print_json(const nlohmann::json& j) {
  // Diagnostics can carry any bytes; invalid UTF-8 is replaced rather than aborting the line.
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
}

void load_rules(const std::string& rules, const char* command) {
  if (rules.empty()) return;
  Status s = feedback::load_user_bounce_rules(rules);
  if (!s) {
    std::fprintf(stderr, "magnetic feedback %s: %s\n", command, s.message().c_str());
    throw CLI::RuntimeError(1);
  }
}

// The whole file, or why it cannot be read (its reason from the system, as a user needs it to
// tell a typo from a permission problem).
Result<std::string> read_file(const std::string& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    return Status::invalid("cannot read '" + file + "': it is a directory");
  }
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) return Status::invalid("cannot read '" + file + "': " + std::strerror(errno));
  std::string raw;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) raw.append(buf, n);
  bool error = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (error) return Status::invalid("cannot read '" + file + "': " + std::strerror(err));
  return raw;
}

void parse_command(const FeedbackArgs& args) {
  load_rules(args.rules, "parse");
  bool failed = false;
  for (const auto& file : args.files) {
    auto raw = read_file(file);
    if (!raw) {
      std::fprintf(stderr, "magnetic feedback parse: %s\n", raw.status().message().c_str());
      failed = true;
      continue;
    }
    auto report = feedback::parse_feedback(*raw);
    if (!report) {
      std::fprintf(stderr, "magnetic feedback parse: %s: %s\n", file.c_str(),
                   report.status().message().c_str());
      failed = true;
      continue;
    }
    // What the parser left out or refused goes with every line of the file, so that a line
    // without a recipient says why.
    if (report->entries.empty()) {
      nlohmann::json j = {{"file", file}, {"kind", feedback::feedback_kind_name(report->kind)}};
      if (!report->notes.empty()) j["notes"] = report->notes;
      print_json(j);
      continue;
    }
    for (const auto& e : report->entries) {
      nlohmann::json j = {{"file", file},
                          {"kind", feedback::feedback_kind_name(report->kind)},
                          {"recipient", e.recipient},
                          {"status", e.status},
                          {"reply_code", e.reply_code},
                          {"reason", e.reason},
                          {"hard", e.hard},
                          {"bounce_type", e.bounce_type},
                          {"bounce_subtype", e.bounce_subtype}};
      if (!e.action.empty()) j["action"] = e.action;
      if (!e.feedback_type.empty()) j["feedback_type"] = e.feedback_type;
      if (!report->original_message_id.empty())
        j["original_message_id"] = report->original_message_id;
      if (!report->verp_token.empty()) j["verp_token"] = report->verp_token;
      if (!report->notes.empty()) j["notes"] = report->notes;
      print_json(j);
    }
  }
  if (failed) throw CLI::RuntimeError(1);
}

void classify_command(const FeedbackArgs& args) {
  load_rules(args.rules, "classify");

  // Exactly what delivery does with a reply: parse it, then ask the reply policy.
  // A reply pasted from a log often lacks its line end, or is one line of a multi-line reply
  // ("550-5.1.1 ..."): make it the complete reply it stands for.
  std::string text = args.reply;
  if (text.size() > 3 && text[3] == '-' && text.find('\n') == std::string::npos) text[3] = ' ';
  if (text.empty() || text.back() != '\n') text += "\r\n";
  smtp::Reply reply;
  if (!smtp::parse_reply(text, reply)) {
    std::fprintf(stderr, "magnetic feedback classify: not an SMTP reply: '%s'\n",
                 args.reply.c_str());
    throw CLI::RuntimeError(1);
  }
  reply.stage = "rcpt";
  feedback::Verdict v = feedback::classify_reply(reply);
  print_json({{"reply_code", reply.code},
              {"status", reply.enhanced},
              {"reason", v.reason},
              {"hard", v.hard},
              {"action", feedback::action_name(v.action)},
              {"close_connection", v.close_connection}});
}

}  // namespace

void add_feedback_commands(CLI::App& app) {
  auto args = std::make_shared<FeedbackArgs>();
  auto* fb = app.add_subcommand("feedback", "read bounces and complaints, classify replies");
  fb->require_subcommand(1);

  auto* parse = fb->add_subcommand("parse", "one JSON line per recipient of each DSN/ARF message");
  parse->add_option("files", args->files, "raw messages (.eml)")->required();
  parse->add_option("--rules", args->rules, "extra bounce rules (bounce_rules.tsv format)");
  parse->callback([args] { parse_command(*args); });

  auto* classify = fb->add_subcommand("classify", "classify one SMTP reply as delivery does");
  classify->add_option("reply", args->reply, "e.g. \"550 5.1.1 <a@b>: user unknown\"")->required();
  classify->add_option("--rules", args->rules, "extra bounce rules (bounce_rules.tsv format)");
  classify->callback([args] { classify_command(*args); });
}

}  // namespace magnetic::cli
