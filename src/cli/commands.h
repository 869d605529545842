// The subcommands of `magnetic`. Each takes its parsed options and returns the process exit
// code: 0 success, 1 a failure the user can fix (bad input, unreachable peer), 3 a campaign
// that stopped before every recipient was final.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "campaign/send.h"

namespace magnetic::cli {

int send_command(const campaign::SendSettings& settings, bool print_json);

struct RenderArgs {
  std::string template_path;
  std::string data_path;  // a JSON object; empty means {}
  std::string part;       // "", "subject", "text" or "html"
  std::string from = "Sender <sender@example.com>";
  std::string to;  // default: data["email"] or recipient@example.com
  std::string unsubscribe_url;
  bool allow_missing = false;
};
int render_command(const RenderArgs& args);

struct KeygenArgs {
  std::string domain;
  std::string selector;
  std::string algorithm = "ed25519";
  int bits = 2048;
  std::string out;
};
int keygen_command(const KeygenArgs& args);

struct DemoArgs {
  std::string dir = "demo-out";
  int recipients = 10000;
  int domains = 20;
};
int demo_command(const DemoArgs& args);

// `magnetic keys create|list|revoke`: the access keys of the SES API and SMTP submission, kept
// in the metadata store of a data directory. create prints the secret and the SMTP password
// once, as JSON; list prints no secrets.
struct KeysArgs {
  enum class Action { kCreate, kList, kRevoke };
  Action action = Action::kList;
  std::string data_dir = "./magnetic-data";
  std::string name;                  // create
  std::string region = "us-east-1";  // create: the region the SMTP password is derived for
  std::string access_key_id;         // revoke
};
int keys_command(const KeysArgs& args);

// `magnetic events tail`: the records in `<data>/events.db`, one JSON line each, oldest first;
// with follow, new ones as they are logged until SIGINT or SIGTERM.
struct EventsTailArgs {
  std::string data_dir = "./magnetic-data";
  bool follow = false;
  std::string type;  // an API event type name (BOUNCE, ...); empty: all
  std::string configuration_set;
  int64_t after = 0;  // only events with a greater sequence number
};
int events_tail_command(const EventsTailArgs& args);

// `magnetic serve`: see service/config.h for the file; flags override it.
struct ServeArgs {
  std::string config_path;
  std::string data_dir;                    // overrides the file's
  std::string api_listen;                  // HOST:PORT
  std::optional<std::string> smtp_listen;  // "" turns SMTP off
  std::string relay;
  std::vector<std::string> routes;
  std::string region;
};
int serve_command(const ServeArgs& args);

}  // namespace magnetic::cli
