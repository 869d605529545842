// `magnetic serve`: the HTTP API, SMTP submission, the spool and delivery in one process.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/api_server.h"
#include "api/content.h"
#include "base/duration.h"
#include "base/ids.h"
#include "base/log.h"
#include "cli/commands.h"
#include "dns/resolver.h"
#include "events/outbox.h"
#include "feedback/bounce_rules.h"
#include "feedback/report_parser.h"
#include "mail/address.h"
#include "service/config.h"
#include "service/service.h"
#include "smtp/submission_server.h"
#include "store/store.h"

namespace magnetic::cli {
namespace {

smtp::Reply reply(int code, std::string enhanced, std::string text) {
  smtp::Reply r;
  r.code = code;
  r.enhanced = std::move(enhanced);
  r.text = std::move(text);
  return r;
}

// The SMTP answer to a refused submission, worded as SES's SMTP interface words them.
smtp::Reply refusal_reply(const service::SubmitResult& r) {
  using service::Refusal;
  switch (r.refusal) {
    case Refusal::kNone:
      return reply(250, "2.0.0", "Ok " + r.message_id);
    case Refusal::kDailyQuotaExceeded:
    case Refusal::kThrottled:
      return reply(454, "4.7.0", "Throttling failure: " + r.message);
    case Refusal::kTemporary:
      return reply(451, "4.3.0", r.message);
    case Refusal::kConfigurationSetNotFound:
      return reply(554, "5.3.0", r.message);
    case Refusal::kInvalidParameter:
      return reply(554, "5.6.0", "Transaction failed: " + r.message);
    case Refusal::kMessageRejected:
    case Refusal::kFromDomainNotVerified:
    case Refusal::kConfigurationSetPaused:
    case Refusal::kAccountPaused:
      break;
  }
  return reply(554, "5.7.1", "Message rejected: " + r.message);
}

bool same_secret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Status write_listen_file(const std::string& path, const nlohmann::json& j) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << j.dump(2) << "\n";
    if (!f) return Status::io_error("cannot write '" + tmp + "'");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::io_error("cannot write '" + path + "': " + ec.message());
  return Status::ok();
}

// A secret kept in a file of the data directory (the VERP tag key, the webhook signing key):
// read when present, else 32 random bytes written as hex with mode 0600. A file others can read
// is refused, as the master key's is.
Result<std::string> secret_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (st.st_mode & 077) return Status::invalid(path + " is readable by others; chmod 600 it");
    std::ifstream f(path);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
      text.pop_back();
    if (text.size() < 16) return Status::invalid(path + ": a secret of at least 16 characters");
    return text;
  }
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return Status::internal("no random bytes for " + path);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  for (unsigned char c : raw) {
    text += kHex[c >> 4];
    text += kHex[c & 15];
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::io_error("cannot create " + path);
  std::string line = text + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Status::io_error("cannot write " + path);
  return text;
}

}  // namespace

int serve_command(const ServeArgs& args) {
  auto log = logger("serve");
  service::ServeConfig config;
  if (!args.config_path.empty()) {
    if (Status s = service::load_config(args.config_path, config); !s) {
      std::fprintf(stderr, "magnetic serve: %s\n", s.message().c_str());
      return 1;
    }
  }
  if (!args.data_dir.empty()) config.data_dir = args.data_dir;
  if (!args.api_listen.empty()) config.api_listen = args.api_listen;
  if (args.smtp_listen) config.smtp_listen = *args.smtp_listen;
  if (!args.relay.empty()) config.relay = args.relay;
  if (!args.routes.empty()) config.routes = args.routes;
  if (!args.region.empty()) config.region = args.region;

  auto fail = [](const std::string& what) {
    std::fprintf(stderr, "magnetic serve: %s\n", what.c_str());
    return 1;
  };
  auto api_at = service::parse_listen(config.api_listen);
  if (!api_at) return fail("api listen " + api_at.status().message());
  std::optional<std::pair<std::string, uint16_t>> smtp_at;
  if (!config.smtp_listen.empty()) {
    auto at = service::parse_listen(config.smtp_listen);
    if (!at) return fail("smtp listen " + at.status().message());
    smtp_at = *at;
  }

  dns::ResolverOptions ro;
  if (!config.relay.empty()) {
    auto route = dns::parse_route(config.relay, /*relay=*/true);
    if (!route) return fail("relay: " + route.status().message());
    ro.routes[route->first] = route->second;
  }
  for (const auto& text : config.routes) {
    auto route = dns::parse_route(text, /*relay=*/false);
    if (!route) return fail("route '" + text + "': " + route.status().message());
    ro.routes[route->first] = route->second;
  }
  ro.servers = config.dns_servers;
  ro.smtp_port = config.smtp_port;

  // One service per data directory: a second one would deliver the same spool twice.
  {
    std::error_code ec;
    if (!std::filesystem::exists(config.data_dir, ec)) {
      std::filesystem::create_directories(config.data_dir, ec);
      ::chmod(config.data_dir.c_str(), 0700);
    }
  }
  int lock_fd =
      ::open((config.data_dir + "/serve.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return fail("the data directory '" + config.data_dir +
                "' is in use by another magnetic serve (or cannot be locked)");
  }
  auto opened = store::Store::open(config.data_dir);
  if (!opened) return fail(opened.status().message());
  store::Store& store = **opened;

  // Quotas and escaping from the configuration are the account's settings.
  if (config.max_24_hour_send || config.max_send_rate || config.ses_compatible_escaping) {
    auto account = store.account();
    if (!account) return fail(account.status().message());
    if (config.max_24_hour_send) account->max_24_hour_send = *config.max_24_hour_send;
    if (config.max_send_rate) account->max_send_rate = *config.max_send_rate;
    if (config.ses_compatible_escaping)
      account->ses_compatible_escaping = *config.ses_compatible_escaping;
    if (Status s = store.put_account(*account); !s) return fail(s.message());
  }

  service::ServiceOptions so;
  so.spool_path = config.data_dir + "/spool.db";
  so.resolver = ro;
  so.delivery.domain_connections = config.domain_connections;
  so.delivery.total_connections = config.total_connections;
  so.delivery.retry_initial = *parse_duration(config.retry_initial);
  so.delivery.max_age = *parse_duration(config.max_age);
  so.delivery.suspend_for = *parse_duration(config.suspend_for);
  so.delivery.ehlo_name = config.ehlo_name;
  so.delivery.tls = config.tls;
  so.delivery.disposition_log = config.data_dir + "/dispositions.jsonl";
  so.region = config.region;

  // Feedback: VERP, bounce rules, suppression, the reputation guard; events.
  if (!config.bounce_rules_file.empty()) {
    if (Status s = feedback::load_user_bounce_rules(config.bounce_rules_file); !s)
      return fail("feedback.rules: " + s.message());
  }
  auto verp_key = secret_file(config.data_dir + "/verp.key");
  if (!verp_key) return fail(verp_key.status().message());
  so.feedback.bounce_domain = config.bounce_domain;
  so.feedback.verp_key = *verp_key;
  so.feedback.complaint_addresses = config.complaint_addresses;
  so.feedback.soft_bounce_limit = config.soft_bounce_limit;
  auto& rep = so.feedback.reputation;
  rep.enabled = config.reputation_enabled;
  rep.window = *parse_duration(config.reputation_window);
  rep.min_sent = config.reputation_min_sent;
  if (config.review_bounce_rate) rep.review_bounce_rate = *config.review_bounce_rate;
  if (config.pause_bounce_rate) rep.pause_bounce_rate = *config.pause_bounce_rate;
  if (config.review_complaint_rate) rep.review_complaint_rate = *config.review_complaint_rate;
  if (config.pause_complaint_rate) rep.pause_complaint_rate = *config.pause_complaint_rate;
  auto webhook_secret =
      secret_file(config.webhook_secret_file.empty() ? config.data_dir + "/webhook.secret"
                                                     : config.webhook_secret_file);
  if (!webhook_secret)
    return fail("events.webhook_secret_file: " + webhook_secret.status().message());
  so.outbox_path = config.data_dir + "/" + events::kOutboxFileName;
  so.events_dir = config.data_dir + "/events";
  {
    std::error_code ec;
    std::filesystem::create_directories(so.events_dir, ec);
    ::chmod(so.events_dir.c_str(), 0700);
  }
  so.dispatcher.signing_secret = *webhook_secret;
  so.dispatcher.retry_initial = *parse_duration(config.events_retry_initial);
  so.dispatcher.retry_max = *parse_duration(config.events_retry_max);
  so.dispatcher.max_age = *parse_duration(config.events_max_age);
  so.dispatcher.retention_ms = parse_duration(config.events_retention)->count();
  so.dispatcher.ca_file = config.events_ca_file;
  std::optional<std::pair<std::string, uint16_t>> feedback_at;
  if (!config.feedback_listen.empty()) {
    auto at = service::parse_listen(config.feedback_listen);
    if (!at) return fail("feedback listen " + at.status().message());
    feedback_at = *at;
  }
  auto service = service::Service::start(so, store);
  if (!service) return fail(service.status().message());

  boost::asio::io_context io;
  api::ApiOptions ao;
  ao.listen_host = api_at->first;
  ao.listen_port = api_at->second;
  ao.feedback_token = config.feedback_http_token;
  {
    service::FeedbackLoop* loop = &(*service)->feedback();
    ao.feedback_report = [loop](std::string_view raw) -> std::pair<int, std::string> {
      auto r = loop->process(raw, "");
      if (!r) {
        bool bad = r.status().code() == StatusCode::kInvalidArgument;
        return {bad ? 400 : 503,
                nlohmann::json{{"__type", bad ? "BadRequestException" : "ServiceUnavailable"},
                               {"message", r.status().message()}}
                    .dump()};
      }
      if (r->kind == feedback::FeedbackKind::kOther) {
        // By mail, anything is taken (an MTA must not bounce it back); a provider's HTTP
        // integration posting something else is told so.
        return {400, nlohmann::json{{"__type", "BadRequestException"},
                                    {"message",
                                     "The body is neither a bounce (a delivery status "
                                     "notification) nor a feedback report (ARF)."}}
                         .dump()};
      }
      return {200, nlohmann::json{{"Kind", feedback::feedback_kind_name(r->kind)},
                                  {"Matched", r->matched},
                                  {"Unmatched", r->unmatched},
                                  {"Suppressed", r->suppressed}}
                       .dump()};
    };
  }
  auto api_server = api::ApiServer::start(io, ao, store, **service);
  if (!api_server) return fail("api: " + api_server.status().message());

  std::unique_ptr<smtp::SubmissionServer> smtp_server;
  if (smtp_at) {
    smtp::SubmissionOptions sub;
    sub.listen_host = smtp_at->first;
    sub.listen_port = smtp_at->second;
    sub.hostname = config.smtp_hostname;
    sub.size_limit = config.max_message_size;
    if (!config.tls_cert.empty() || !config.tls_key.empty()) {
      sub.tls_cert_file = config.tls_cert;
      sub.tls_key_file = config.tls_key;
    } else {
      std::filesystem::create_directories(config.data_dir + "/tls");
      ::chmod((config.data_dir + "/tls").c_str(), 0700);
      sub.tls_cert_file = config.data_dir + "/tls/smtp-cert.pem";
      sub.tls_key_file = config.data_dir + "/tls/smtp-key.pem";
    }
    smtp::SubmissionCallbacks cb;
    std::string region = config.region;
    cb.authenticate = [&store, region](const std::string& user, const std::string& password) {
      auto key = store.find_key(user);
      if (!key) return false;
      return same_secret(password, store::smtp_password(key->secret, region));
    };
    service::Service* svc = service->get();
    cb.check_sender = [svc](const std::string&, const std::string& mail_from) {
      // SES: the MAIL FROM address must be verified like the From field; bounces go there.
      if (mail_from.empty())
        return reply(553, "5.1.7", "Message rejected: a sender address is required");
      auto a = mail::parse_address(mail_from);
      if (!a) return reply(553, "5.1.7", "Invalid sender address: " + a.status().message());
      if (!svc->may_send_as(a->address())) {
        return reply(554, "5.7.1",
                     "Message rejected: Email address is not verified. The following identities "
                     "failed the check: " +
                         a->address());
      }
      return reply(250, "2.1.0", "Ok");
    };
    cb.deliver = [svc](smtp::SubmissionEnvelope env) {
      // The SES content rules for a whole message (api/content.h) apply to SMTP as to Raw.
      std::string id = new_id();
      auto prepared = api::prepare_raw_message(std::move(env.data), "message", id,
                                               std::chrono::system_clock::now());
      if (!prepared)
        return reply(554, "5.6.0", "Transaction failed: " + prepared.status().message());
      if (!prepared->from)
        return reply(554, "5.6.0", "Transaction failed: the message has no From field");
      service::OutboundMessage m;
      m.message_id = id;
      m.from = prepared->from->address();
      if (prepared->sender) m.sender = prepared->sender->address();
      m.envelope_from = env.mail_from;
      m.recipients = std::move(env.rcpt_to);
      m.configuration_set = prepared->configuration_set;
      m.tags = prepared->tags;
      m.data = std::move(prepared->data);
      m.source = "smtp";
      std::vector<service::OutboundMessage> one;
      one.push_back(std::move(m));
      auto results = svc->submit(std::move(one));
      return refusal_reply(results[0]);
    };
    auto started = smtp::SubmissionServer::start(io, sub, std::move(cb));
    if (!started) return fail("smtp: " + started.status().message());
    smtp_server = std::move(*started);
  }

  // The feedback listener: bounces and complaints from other MTAs, for our addresses only.
  std::unique_ptr<smtp::SubmissionServer> feedback_server;
  if (feedback_at) {
    smtp::SubmissionOptions in;
    in.mode = smtp::ServerMode::kInbound;
    in.listen_host = feedback_at->first;
    in.listen_port = feedback_at->second;
    in.hostname = config.feedback_hostname;
    in.size_limit = config.max_message_size;
    std::filesystem::create_directories(config.data_dir + "/tls");
    in.tls_cert_file = config.data_dir + "/tls/feedback-cert.pem";
    in.tls_key_file = config.data_dir + "/tls/feedback-key.pem";
    service::FeedbackLoop* loop = &(*service)->feedback();
    smtp::SubmissionCallbacks cb;
    cb.check_recipient = [loop](const std::string& from, const std::string& rcpt) {
      return loop->check_recipient(from, rcpt);
    };
    cb.deliver = [loop](smtp::SubmissionEnvelope env) { return loop->receive(env); };
    auto started = smtp::SubmissionServer::start(io, in, std::move(cb));
    if (!started) return fail("feedback: " + started.status().message());
    feedback_server = std::move(*started);
  }

  nlohmann::json listen = {{"api", api_at->first + ":" + std::to_string((*api_server)->port())}};
  if (feedback_server) {
    listen["feedback"] = feedback_at->first + ":" + std::to_string(feedback_server->port());
    log->info("feedback: listening on {}:{} for bounces to {} and reports to {} address(es)",
              feedback_at->first, feedback_server->port(),
              config.bounce_domain.empty() ? "(no bounce domain)" : config.bounce_domain,
              config.complaint_addresses.size());
  }
  if (!feedback_server && !config.bounce_domain.empty()) {
    log->warn(
        "feedback.bounce_domain is {} but feedback.listen is not set: mail goes out with VERP "
        "senders at {} and nothing here receives their bounces (unless another MTA passes them "
        "to POST /feedback/v1/reports)",
        config.bounce_domain, config.bounce_domain);
  }
  log->info("api: listening on http://{}:{}", api_at->first, (*api_server)->port());
  if (smtp_server) {
    listen["smtp"] = smtp_at->first + ":" + std::to_string(smtp_server->port());
    log->info("smtp: listening on {}:{} (STARTTLS, AUTH after TLS)", smtp_at->first,
              smtp_server->port());
  }
  log->info("data in {}; delivery through {}", config.data_dir,
            config.relay.empty()
                ? (config.routes.empty() ? std::string("MX lookup") : std::string("static routes"))
                : "relay " + config.relay);
  if (Status s = write_listen_file(config.data_dir + "/listen.json", listen); !s)
    return fail(s.message());

  // SIGTERM: stop taking work, answer what is being handled (a request whose mail was committed
  // gets its 200, so the client does not send it again), then stop delivery.
  std::thread shutdown;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int sig) {
    log->info("signal {}: stopping (requests in progress are answered first)", sig);
    shutdown = std::thread([&] {
      (*api_server)->drain(std::chrono::seconds(10));
      if (smtp_server) smtp_server->stop();
      if (feedback_server) feedback_server->stop();
      io.stop();
    });
  });
  std::vector<std::thread> threads;
  unsigned n = std::max(2u, std::thread::hardware_concurrency());
  for (unsigned i = 1; i < n; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  if (shutdown.joinable()) shutdown.join();
  smtp_server.reset();
  feedback_server.reset();
  api_server->reset();
  (*service)->stop();
  std::filesystem::remove(config.data_dir + "/listen.json");
  log->info("stopped");
  return 0;
}

}  // namespace magnetic::cli
