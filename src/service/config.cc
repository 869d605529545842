#include "service/config.h"

#include <toml++/toml.h>
#include <filesystem>
#include <set>

#include "base/duration.h"
#include "dns/domain_name.h"

namespace magnetic::service {
namespace {

Status unknown_keys(const toml::table& table, const std::string& where,
                    const std::set<std::string>& known, const std::string& path) {
  for (const auto& [key, value] : table) {
    (void)value;
    if (!known.count(std::string(key.str()))) {
      return Status::invalid(path + ": unknown key '" + where + std::string(key.str()) + "'");
    }
  }
  return Status::ok();
}

template <typename T>
Status read(const toml::table& table, const char* key, const std::string& where,
            const std::string& path, T& out) {
  const toml::node* node = table.get(key);
  if (!node) return Status::ok();
  if constexpr (std::is_same_v<T, std::string>) {
    if (auto v = node->value<std::string>()) {
      out = *v;
      return Status::ok();
    }
    return Status::invalid(path + ": '" + where + key + "' must be a string");
  } else if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::optional<bool>>) {
    if (auto v = node->value<bool>()) {
      out = *v;
      return Status::ok();
    }
    return Status::invalid(path + ": '" + where + key + "' must be true or false");
  } else if constexpr (std::is_same_v<T, std::optional<double>>) {
    if (auto v = node->value<double>(); v && *v >= 0) {
      out = *v;
      return Status::ok();
    }
    return Status::invalid(path + ": '" + where + key + "' must be a number >= 0");
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    const toml::array* arr = node->as_array();
    if (!arr) return Status::invalid(path + ": '" + where + key + "' must be a list of strings");
    out.clear();
    for (const auto& item : *arr) {
      auto v = item.value<std::string>();
      if (!v) return Status::invalid(path + ": '" + where + key + "' must be a list of strings");
      out.push_back(*v);
    }
    return Status::ok();
  } else {
    if (auto v = node->value<int64_t>();
        v && *v >= 0 &&
        static_cast<uint64_t>(*v) <= static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      out = static_cast<T>(*v);
      return Status::ok();
    }
    return Status::invalid(path + ": '" + where + key + "' must be a whole number from 0 to " +
                           std::to_string(std::numeric_limits<T>::max()));
  }
}

}  // namespace

Result<std::pair<std::string, uint16_t>> parse_listen(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::invalid("'" + text + "': give HOST:PORT, e.g. 127.0.0.1:8585");
  }
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  std::string port = text.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    return Status::invalid("'" + text + "': the port must be a number from 0 to 65535");
  }
  return std::make_pair(host, static_cast<uint16_t>(std::stoul(port)));
}

Status load_config(const std::string& path, ServeConfig& c) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::invalid(
        path + ": " + (std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  }
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Status::invalid(path + ":" + std::to_string(where.line) + ":" +
                           std::to_string(where.column) + ": " + std::string(e.description()));
  }
  if (Status s = unknown_keys(root, "",
                              {"data", "region", "api", "smtp", "delivery", "quota", "account",
                               "feedback", "reputation", "events"},
                              path);
      !s)
    return s;
  if (Status s = read(root, "data", "", path, c.data_dir); !s) return s;
  if (Status s = read(root, "region", "", path, c.region); !s) return s;
  auto section = [&](const char* name) -> Result<const toml::table*> {
    const toml::node* n = root.get(name);
    if (!n) return static_cast<const toml::table*>(nullptr);
    if (!n->is_table()) return Status::invalid(path + ": '" + name + "' must be a [table]");
    return n->as_table();
  };
  std::string tls = "opportunistic";
  struct Section {
    const char* name;
    std::set<std::string> keys;
  };
  for (const Section& sec :
       {Section{"api", {"listen"}},
        Section{"smtp", {"listen", "hostname", "tls_cert", "tls_key", "max_message_size"}},
        Section{
            "delivery",
            {"relay", "routes", "dns_servers", "smtp_port", "ehlo_name", "tls",
             "domain_connections", "total_connections", "retry_initial", "max_age", "suspend_for"}},
        Section{"quota", {"max_24_hour_send", "max_send_rate"}},
        Section{"account", {"ses_compatible_escaping"}},
        Section{"feedback",
                {"listen", "hostname", "bounce_domain", "complaint_addresses", "soft_bounce_limit",
                 "rules", "http_token"}},
        Section{"reputation",
                {"enabled", "window", "min_sent", "review_bounce_rate", "pause_bounce_rate",
                 "review_complaint_rate", "pause_complaint_rate"}},
        Section{"events",
                {"webhook_secret_file", "retry_initial", "retry_max", "max_age", "retention",
                 "ca_file"}}}) {
    auto t = section(sec.name);
    if (!t) return t.status();
    if (!*t) continue;
    const toml::table& tab = **t;
    std::string where = std::string(sec.name) + ".";
    if (Status s = unknown_keys(tab, where, sec.keys, path); !s) return s;
    std::string name = sec.name;
    Status s;
    if (name == "api") {
      s = read(tab, "listen", where, path, c.api_listen);
    } else if (name == "smtp") {
      for (Status x : {read(tab, "listen", where, path, c.smtp_listen),
                       read(tab, "hostname", where, path, c.smtp_hostname),
                       read(tab, "tls_cert", where, path, c.tls_cert),
                       read(tab, "tls_key", where, path, c.tls_key),
                       read(tab, "max_message_size", where, path, c.max_message_size)}) {
        if (!x) return x;
      }
    } else if (name == "delivery") {
      for (Status x :
           {read(tab, "relay", where, path, c.relay), read(tab, "routes", where, path, c.routes),
            read(tab, "dns_servers", where, path, c.dns_servers),
            read(tab, "smtp_port", where, path, c.smtp_port),
            read(tab, "ehlo_name", where, path, c.ehlo_name), read(tab, "tls", where, path, tls),
            read(tab, "domain_connections", where, path, c.domain_connections),
            read(tab, "total_connections", where, path, c.total_connections),
            read(tab, "retry_initial", where, path, c.retry_initial),
            read(tab, "max_age", where, path, c.max_age),
            read(tab, "suspend_for", where, path, c.suspend_for)}) {
        if (!x) return x;
      }
    } else if (name == "quota") {
      for (Status x : {read(tab, "max_24_hour_send", where, path, c.max_24_hour_send),
                       read(tab, "max_send_rate", where, path, c.max_send_rate)}) {
        if (!x) return x;
      }
    } else if (name == "account") {
      s = read(tab, "ses_compatible_escaping", where, path, c.ses_compatible_escaping);
    } else if (name == "feedback") {
      for (Status x : {read(tab, "listen", where, path, c.feedback_listen),
                       read(tab, "hostname", where, path, c.feedback_hostname),
                       read(tab, "bounce_domain", where, path, c.bounce_domain),
                       read(tab, "complaint_addresses", where, path, c.complaint_addresses),
                       read(tab, "soft_bounce_limit", where, path, c.soft_bounce_limit),
                       read(tab, "rules", where, path, c.bounce_rules_file),
                       read(tab, "http_token", where, path, c.feedback_http_token)}) {
        if (!x) return x;
      }
    } else if (name == "reputation") {
      for (Status x : {read(tab, "enabled", where, path, c.reputation_enabled),
                       read(tab, "window", where, path, c.reputation_window),
                       read(tab, "min_sent", where, path, c.reputation_min_sent),
                       read(tab, "review_bounce_rate", where, path, c.review_bounce_rate),
                       read(tab, "pause_bounce_rate", where, path, c.pause_bounce_rate),
                       read(tab, "review_complaint_rate", where, path, c.review_complaint_rate),
                       read(tab, "pause_complaint_rate", where, path, c.pause_complaint_rate)}) {
        if (!x) return x;
      }
      for (auto [key, r] : {std::pair{"review_bounce_rate", &c.review_bounce_rate},
                            std::pair{"pause_bounce_rate", &c.pause_bounce_rate},
                            std::pair{"review_complaint_rate", &c.review_complaint_rate},
                            std::pair{"pause_complaint_rate", &c.pause_complaint_rate}}) {
        if (*r && **r > 1)
          return Status::invalid(path + ": 'reputation." + key +
                                 "' must be a fraction from 0 to 1 (0.05 is 5%)");
      }
      auto at_most = [&](const std::optional<double>& review, double review_default,
                         const std::optional<double>& pause, double pause_default,
                         const char* what) -> Status {
        if (review.value_or(review_default) > pause.value_or(pause_default))
          return Status::invalid(path + ": 'reputation.review_" + what +
                                 "_rate' is above 'reputation.pause_" + what +
                                 "_rate': the review comes before the pause");
        return Status::ok();
      };
      if (Status x = at_most(c.review_bounce_rate, 0.05, c.pause_bounce_rate, 0.10, "bounce"); !x)
        return x;
      if (Status x =
              at_most(c.review_complaint_rate, 0.001, c.pause_complaint_rate, 0.005, "complaint");
          !x)
        return x;
    } else if (name == "events") {
      for (Status x : {read(tab, "webhook_secret_file", where, path, c.webhook_secret_file),
                       read(tab, "retry_initial", where, path, c.events_retry_initial),
                       read(tab, "retry_max", where, path, c.events_retry_max),
                       read(tab, "max_age", where, path, c.events_max_age),
                       read(tab, "retention", where, path, c.events_retention),
                       read(tab, "ca_file", where, path, c.events_ca_file)}) {
        if (!x) return x;
      }
    }
    if (!s) return s;
  }
  if (tls == "off")
    c.tls = smtp::TlsMode::kOff;
  else if (tls == "opportunistic")
    c.tls = smtp::TlsMode::kOpportunistic;
  else if (tls == "require")
    c.tls = smtp::TlsMode::kRequire;
  else
    return Status::invalid(path + ": 'delivery.tls' must be off, opportunistic or require");
  for (auto [key, d] : {std::pair{"delivery.retry_initial", &c.retry_initial},
                        std::pair{"delivery.max_age", &c.max_age},
                        std::pair{"delivery.suspend_for", &c.suspend_for},
                        std::pair{"reputation.window", &c.reputation_window},
                        std::pair{"events.retry_initial", &c.events_retry_initial},
                        std::pair{"events.retry_max", &c.events_retry_max},
                        std::pair{"events.max_age", &c.events_max_age},
                        std::pair{"events.retention", &c.events_retention}}) {
    auto p = parse_duration(*d);
    if (!p) return Status::invalid(path + ": '" + key + "': " + p.status().message());
    if (p->count() <= 0) return Status::invalid(path + ": '" + key + "' must be more than 0");
  }
  if (*parse_duration(c.suspend_for) < std::chrono::seconds(1))
    return Status::invalid(path + ": 'delivery.suspend_for' must be at least 1s");
  if (*parse_duration(c.events_retry_max) < *parse_duration(c.events_retry_initial))
    return Status::invalid(path + ": 'events.retry_max' is shorter than 'events.retry_initial'");
  if (!c.bounce_domain.empty() &&
      (!dns::valid_name(c.bounce_domain) || c.bounce_domain.find('.') == std::string::npos))
    return Status::invalid(path + ": 'feedback.bounce_domain': '" + c.bounce_domain +
                           "' is not a domain name (letters, digits, '-' and dots)");
  if (c.tls_cert.empty() != c.tls_key.empty())
    return Status::invalid(path + ": 'smtp.tls_cert' and 'smtp.tls_key' go together");
  for (const auto& f : {c.tls_cert, c.tls_key}) {
    if (!f.empty() && !std::filesystem::is_regular_file(f, ec))
      return Status::invalid(path + ": '" + f + "': no such file (smtp.tls_cert / smtp.tls_key)");
  }
  if (!c.feedback_listen.empty()) {
    if (auto l = parse_listen(c.feedback_listen); !l)
      return Status::invalid(path + ": 'feedback.listen': " + l.status().message());
  }
  if (!c.feedback_http_token.empty() && c.feedback_http_token.size() < 16)
    return Status::invalid(path +
                           ": 'feedback.http_token' must be at least 16 characters (it "
                           "lets its holder suppress addresses)");
  for (auto& a : c.complaint_addresses) {
    if (a.find('@') == std::string::npos)
      return Status::invalid(path + ": 'feedback.complaint_addresses': '" + a +
                             "' is not an address");
  }
  if (c.domain_connections < 1 || c.total_connections < 1)
    return Status::invalid(path + ": connection limits must be at least 1");
  return Status::ok();
}

}  // namespace magnetic::service
