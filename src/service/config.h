// The configuration of `magnetic serve`: a TOML file (all keys optional) with flags on top.
//
//   data = "magnetic-data"          # directory: metadata, spool, keys, logs
//   region = "us-east-1"            # the region SMTP passwords are derived for
//
//   [api]
//   listen = "127.0.0.1:8585"
//
//   [smtp]
//   listen = "127.0.0.1:2587"       # "" turns SMTP submission off
//   hostname = "localhost"          # greeting name and self-signed certificate name
//   tls_cert = ""                   # PEM; both empty: self-signed, kept in <data>/tls/
//   tls_key = ""
//   max_message_size = 10485760
//
//   [delivery]
//   relay = ""                      # HOST:PORT: everything through one smarthost
//   routes = ["example.com=127.0.0.1:2525"]
//   dns_servers = []                # IP[:PORT] instead of the system's resolver
//   smtp_port = 25
//   ehlo_name = "localhost"
//   tls = "opportunistic"           # off, opportunistic or require
//   domain_connections = 10
//   total_connections = 200
//   retry_initial = "1m"
//   max_age = "24h"                 # from acceptance; still undelivered then: Transient bounce
//   suspend_for = "1h"              # rest for a destination that refuses our egress source
//
//   [quota]                         # SES SendQuota, enforced on every send
//   max_24_hour_send = 50000
//   max_send_rate = 1000
//
//   [account]
//   ses_compatible_escaping = false # true: {{x}} not HTML-escaped, as SES renders
//
//   [feedback]                      # bounces and complaints coming back
//   listen = ""                     # HOST:PORT of the inbound SMTP listener; "" turns it off
//   hostname = "localhost"          # its greeting name
//   bounce_domain = ""              # VERP envelope senders bounce+<token>@bounce_domain
//   complaint_addresses = []        # feedback-loop addresses that receive ARF reports
//   soft_bounce_limit = 3           # soft bounces in a row that suppress (0: never)
//   rules = ""                      # bounce rules file read on top of the built-in rules
//   http_token = ""                 # POST /feedback/v1/reports with a Bearer token; "" off
//
//   [reputation]                    # the guard that pauses sending (rates over the window)
//   enabled = true
//   window = "24h"
//   min_sent = 200                  # recipients in the window before rates are judged
//   review_bounce_rate = 0.05       # PROBATION (a warning)
//   pause_bounce_rate = 0.10        # sending paused
//   review_complaint_rate = 0.001
//   pause_complaint_rate = 0.005
//
//   [events]                        # delivery of event records to event destinations
//   webhook_secret_file = ""        # HMAC key; "": <data>/webhook.secret, made on first start
//   retry_initial = "1s"            # a failed webhook is retried after this, doubling
//   retry_max = "5m"
//   max_age = "24h"                 # an event not delivered by then is dropped (logged)
//   retention = "7d"                # how long `magnetic events tail` can look back
//   ca_file = ""                    # PEM bundle for https webhooks; "": the system's
//
// Unknown keys are errors (a typo must not silently leave a default in place).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "smtp/client.h"

namespace magnetic::service {

struct ServeConfig {
  std::string data_dir = "magnetic-data";
  std::string region = "us-east-1";
  std::string api_listen = "127.0.0.1:8585";
  std::string smtp_listen = "127.0.0.1:2587";
  std::string smtp_hostname = "localhost";
  std::string tls_cert, tls_key;
  uint64_t max_message_size = 10 * 1024 * 1024;
  std::string relay;
  std::vector<std::string> routes;
  std::vector<std::string> dns_servers;
  uint16_t smtp_port = 25;
  std::string ehlo_name = "localhost";
  smtp::TlsMode tls = smtp::TlsMode::kOpportunistic;
  int domain_connections = 10;
  int total_connections = 200;
  std::string retry_initial = "1m";
  std::string max_age = "24h";
  std::string suspend_for = "1h";
  std::optional<double> max_24_hour_send;
  std::optional<double> max_send_rate;
  std::optional<bool> ses_compatible_escaping;

  std::string feedback_listen;
  std::string feedback_hostname = "localhost";
  std::string bounce_domain;
  std::vector<std::string> complaint_addresses;
  int soft_bounce_limit = 3;
  std::string bounce_rules_file;
  std::string feedback_http_token;

  bool reputation_enabled = true;
  std::string reputation_window = "24h";
  uint64_t reputation_min_sent = 200;
  std::optional<double> review_bounce_rate, pause_bounce_rate, review_complaint_rate,
      pause_complaint_rate;

  std::string webhook_secret_file;
  std::string events_retry_initial = "1s";
  std::string events_retry_max = "5m";
  std::string events_max_age = "24h";
  std::string events_retention = "7d";
  std::string events_ca_file;
};

// Reads a TOML file over the defaults. Errors name the file, the key and why.
Status load_config(const std::string& path, ServeConfig& config);

// "HOST:PORT" -> host and port; the port must be given (0 allowed: ephemeral).
Result<std::pair<std::string, uint16_t>> parse_listen(const std::string& text);

}  // namespace magnetic::service
