// `magnetic send`: one campaign from a template and a list, end to end.
//
// Data flow: an ingest thread reads the list (campaign/recipient_reader.h) and accepts it into
// the spool in batches; a control thread claims due recipients from the spool into the
// scheduler, opens delivery sessions for the domains that have work, and commits outcomes and
// disposition records in groups; delivery sessions run as coroutines on a small pool of I/O
// threads, rendering, signing and sending each message and classifying each reply with
// feedback::classify_reply. The campaign ends when every accepted recipient is final
// (delivered, bounced, expired or failed), or on SIGINT/SIGTERM, after which --resume goes on.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/duration.h"
#include "base/status.h"
#include "smtp/client.h"

namespace magnetic::campaign {

struct SendSettings {
  std::string template_path;
  std::string recipients_path;
  std::string from;                      // "Name <addr@domain>"
  std::optional<std::string> relay;      // HOST:PORT
  std::vector<std::string> routes;       // DOMAIN=HOST:PORT
  std::vector<std::string> dns_servers;  // for MX lookup instead of the system's
  uint16_t smtp_port = 25;               // port of hosts found through MX lookup
  std::optional<Rate> rate;              // campaign-wide cap
  int domain_connections = 10;
  int total_connections = 200;
  size_t batch_size = 1000;
  std::chrono::milliseconds max_age{std::chrono::hours(4)};
  std::chrono::milliseconds retry_initial{std::chrono::minutes(1)};
  std::chrono::milliseconds slow_backoff{std::chrono::seconds(5)};
  // Rest of a destination that refuses our egress source (a block list, no PTR, reputation).
  std::chrono::milliseconds suspend_for{std::chrono::hours(1)};
  std::string dkim_domain, dkim_selector, dkim_key;
  std::string unsubscribe_url;
  std::string spool_path = "magnetic-spool.db";
  bool resume = false;
  bool new_campaign = false;  // start a new campaign even if the spool holds an unfinished one
  std::string report_path;
  std::string disposition_log;  // default: <spool>.dispositions.jsonl
  smtp::TlsMode tls = smtp::TlsMode::kOpportunistic;
  std::optional<smtp::Credentials> relay_auth;
  std::string ehlo_name;       // default: the From domain
  bool allow_missing = false;  // render missing variables as empty instead of failing
  bool progress = true;        // progress bar on a terminal, log lines otherwise
  int io_threads = 0;          // 0: one per core
};

struct SendReport {
  std::string campaign_id;
  nlohmann::json json;    // the --report document
  std::string table;      // the same as a table for people
  bool finished = false;  // every recipient final
};

// Runs the campaign. A Status error is a problem found before anything was accepted (bad
// template, unreadable list, bad option); once the campaign is accepted, failures are per
// recipient and end up in the report.
Result<SendReport> run_send(const SendSettings& settings);

// Asks a running run_send to stop (from a signal handler: only sets a flag).
void request_stop();

}  // namespace magnetic::campaign
