#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "store/store.h"

namespace magnetic::cli {
namespace {

void print_json(const nlohmann::ordered_json& j) {
  std::string text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
}

const char* action_name(KeysArgs::Action a) {
  switch (a) {
    case KeysArgs::Action::kCreate:
      return "create";
    case KeysArgs::Action::kList:
      return "list";
    case KeysArgs::Action::kRevoke:
      return "revoke";
  }
  return "?";
}

}  // namespace

int keys_command(const KeysArgs& args) {
  const char* action = action_name(args.action);
  auto opened = store::Store::open(args.data_dir);
  if (!opened) {
    std::fprintf(stderr, "magnetic keys %s: %s\n", action, opened.status().message().c_str());
    return 1;
  }
  store::Store& st = **opened;

  switch (args.action) {
    case KeysArgs::Action::kCreate: {
      auto key = st.create_key(args.name);
      if (!key) {
        std::fprintf(stderr, "magnetic keys create: %s\n", key.status().message().c_str());
        return 1;
      }
      // SES's SMTP user name is the access key id; the password is derived from the secret.
      print_json({{"AccessKeyId", key->access_key_id},
                  {"SecretAccessKey", key->secret},
                  {"SmtpUsername", key->access_key_id},
                  {"SmtpPassword", store::smtp_password(key->secret, args.region)},
                  {"Name", key->name},
                  {"CreatedAt", key->created_at}});
      return 0;
    }
    case KeysArgs::Action::kList: {
      auto keys = st.list_keys();
      if (!keys) {
        std::fprintf(stderr, "magnetic keys list: %s\n", keys.status().message().c_str());
        return 1;
      }
      auto out = nlohmann::ordered_json::array();
      for (const auto& k : *keys) {
        out.push_back({{"AccessKeyId", k.access_key_id},
                       {"Name", k.name},
                       {"CreatedAt", k.created_at},
                       {"Active", k.active}});
      }
      print_json(out);
      return 0;
    }
    case KeysArgs::Action::kRevoke: {
      Status s = st.revoke_key(args.access_key_id);
      if (!s) {
        std::fprintf(stderr, "magnetic keys revoke: %s\n", s.message().c_str());
        return 1;
      }
      std::fprintf(stderr, "access key %s revoked\n", args.access_key_id.c_str());
      return 0;
    }
  }
  return 1;
}

}  // namespace magnetic::cli
