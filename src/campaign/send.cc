#include "campaign/send.h"

#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "base/ids.h"
#include "base/log.h"
#include "campaign/composer.h"
#include "campaign/disposition_log.h"
#include "campaign/recipient_reader.h"
#include "campaign/report.h"
#include "campaign/template_set.h"
#include "dkim/signer.h"
#include "dns/resolver.h"
#include "feedback/reply_policy.h"
#include "mail/address.h"
#include "mail/message.h"
#include "queue/retry_schedule.h"
#include "queue/scheduler.h"
#include "queue/throttle.h"
#include "spool/spool.h"

namespace magnetic::campaign {
namespace {

namespace asio = boost::asio;
using spool::RecipientState;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
std::atomic<bool> g_engine_running{false};  // a campaign is accepted and being delivered

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Everything one campaign run shares between its threads.
class Engine {
 public:
  Engine(const SendSettings& settings, std::string campaign_id, spool::Spool& spool,
         std::shared_ptr<const Composer> composer, dns::Resolver& resolver,
         smtp::ClientOptions client_options, DispositionLog& dispositions)
      : settings_(settings),
        campaign_id_(std::move(campaign_id)),
        spool_(spool),
        composer_(std::move(composer)),
        resolver_(resolver),
        client_options_(std::move(client_options)),
        dispositions_(dispositions),
        scheduler_({.domain_connections = settings.domain_connections,
                    .total_connections = settings.total_connections,
                    .initial_backoff = settings.slow_backoff,
                    .max_backoff = std::chrono::minutes(5),
                    .recover_after = 50}),
        tls_(std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client)),
        log_(logger("send")) {
    if (settings.rate) rate_.emplace(*settings.rate);
    retry_.initial = settings.retry_initial;
    retry_.max_age = settings.max_age;
    retry_.max_delay =
        std::max(settings.retry_initial, std::chrono::milliseconds(std::chrono::hours(1)));
    tls_->set_verify_mode(client_options_.verify_certificate ? asio::ssl::verify_peer
                                                             : asio::ssl::verify_none);
    tls_->set_default_verify_paths();
  }

  Status run_ingest_and_delivery(RecipientReader& reader, uint64_t skip_rows, uint64_t accepted,
                                 uint64_t finals, bool ingest_done);

  uint64_t possible_duplicates() const { return lost_after_dot_.load(); }
  bool stopped() const { return g_stop.load(); }
  double elapsed_s() const {
    return std::chrono::duration<double>(Clock::now() - started_).count();
  }
  uint64_t delivered_this_run() const { return delivered_.load(); }

 private:
  void ingest(RecipientReader* reader, uint64_t skip_rows);
  asio::awaitable<void> session(std::string domain, std::vector<dns::Target> targets);
  void record(const spool::Claimed& r, const feedback::Verdict& v, const smtp::Reply& reply,
              double duration_ms, const std::string& mx);
  void record_failed(const spool::Claimed& r, const std::string& error);
  void push(spool::Outcome o, Disposition d);
  void suspend(const std::string& domain, const smtp::Reply& reply, const feedback::Verdict& v,
               const std::string& mx, bool attempted);
  void postpone(const spool::Claimed& r, Clock::time_point until);
  bool route_claimed(std::vector<spool::Claimed>& claimed);
  void flush_outcomes();
  void show_progress(bool final_line);

  const SendSettings& settings_;
  std::string campaign_id_;
  spool::Spool& spool_;
  std::shared_ptr<const Composer> composer_;
  dns::Resolver& resolver_;
  smtp::ClientOptions client_options_;
  DispositionLog& dispositions_;
  queue::Scheduler scheduler_;
  std::optional<queue::Throttle> rate_;
  queue::RetrySchedule retry_;
  std::shared_ptr<asio::ssl::context> tls_;
  std::shared_ptr<spdlog::logger> log_;
  asio::io_context io_;

  std::mutex routes_mu_;
  std::map<std::string, std::vector<dns::Target>> routes_;

  std::mutex out_mu_;
  std::vector<spool::Outcome> outcomes_;
  std::vector<Disposition> records_;

  std::atomic<uint64_t> accepted_{0};  // recipients in the spool for this campaign
  std::atomic<uint64_t> finals_{0};    // of those, final (committed or queued for commit)
  std::atomic<bool> ingest_done_{false};
  Status ingest_status_;
  // This run's outcomes; deferred_ counts deferrals (a recipient may be deferred many times).
  std::atomic<uint64_t> delivered_{0}, bounced_{0}, expired_{0}, deferred_{0}, failed_{0},
      invalid_{0};
  std::atomic<uint64_t> lost_after_dot_{0};
  Clock::time_point started_ = Clock::now();
  Clock::time_point last_progress_{};
  std::set<std::string> warned_domains_;
};

void Engine::push(spool::Outcome o, Disposition d) {
  if (spool::is_final(o.state)) finals_.fetch_add(1);
  std::lock_guard<std::mutex> lock(out_mu_);
  outcomes_.push_back(std::move(o));
  records_.push_back(std::move(d));
}

void Engine::record(const spool::Claimed& r, const feedback::Verdict& v, const smtp::Reply& reply,
                    double duration_ms, const std::string& mx) {
  int64_t now = wall_ms();
  spool::Outcome o;
  o.id = r.id;
  o.attempts = r.attempts + 1;
  o.first_attempt_ms = r.first_attempt_ms ? r.first_attempt_ms : now;
  o.reply = reply.to_string();
  o.reason = v.reason;
  switch (v.action) {
    case feedback::Action::kDelivered:
      o.state = RecipientState::kDelivered;
      delivered_.fetch_add(1);
      break;
    case feedback::Action::kBounce:
      o.state = RecipientState::kBounced;
      bounced_.fetch_add(1);
      break;
    case feedback::Action::kRetry:
    case feedback::Action::kRetryAndThrottle:
    case feedback::Action::kSuspendSource: {
      thread_local std::mt19937_64 rng{std::random_device{}()};
      double u = std::uniform_real_distribution<double>(0, 1)(rng);
      o.next_attempt_ms = now + retry_.delay_after(o.attempts, u).count();
      if (v.action == feedback::Action::kSuspendSource)
        o.next_attempt_ms = std::max(o.next_attempt_ms, now + settings_.suspend_for.count());
      int64_t origin = queue::RetrySchedule::age_origin(r, now);
      o.next_attempt_ms = retry_.next_try(origin, o.next_attempt_ms);
      if (retry_.expired(origin, now)) {
        o.state = RecipientState::kExpired;
        o.next_attempt_ms = 0;
        expired_.fetch_add(1);
      } else {
        o.state = RecipientState::kDeferred;
        deferred_.fetch_add(1);
      }
      break;
    }
  }
  Disposition d{
      now,      campaign_id_, r.message_id, r.email,     r.row, spool::state_name(o.state),
      o.reason, o.reply,      o.attempts,   duration_ms, mx};
  push(std::move(o), std::move(d));
}

// The receiver refuses our egress source: the domain rests for suspend_for. Recipients waiting
// for it are deferred to then: with this reply when the refusal came at connection time (they
// were attempted with it), without an attempt otherwise.
void Engine::suspend(const std::string& domain, const smtp::Reply& reply,
                     const feedback::Verdict& v, const std::string& mx, bool attempted) {
  auto until = Clock::now() + settings_.suspend_for;
  auto waiting = scheduler_.suspend(domain, until);
  log_->warn("{}", queue::suspension_note(domain, v.reason, reply.to_string(),
                                          settings_.suspend_for, waiting.size()));
  for (const auto& r : waiting) attempted ? record(r, v, reply, 0, mx) : postpone(r, until);
}

void Engine::postpone(const spool::Claimed& r, Clock::time_point until) {
  int64_t now = wall_ms();
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
  spool::Outcome o = retry_.postponed(r, now, now + wait.count());
  if (o.state == RecipientState::kExpired) {
    expired_.fetch_add(1);
    push(o, {now, campaign_id_, r.message_id, r.email, r.row, "expired", o.reason, o.reply,
             r.attempts, 0, ""});
    return;
  }
  std::lock_guard<std::mutex> lock(out_mu_);
  outcomes_.push_back(std::move(o));
}

void Engine::record_failed(const spool::Claimed& r, const std::string& error) {
  int64_t now = wall_ms();
  spool::Outcome o{r.id,  RecipientState::kFailed, r.attempts, 0, r.first_attempt_ms,
                   error, "renderingfailure"};
  failed_.fetch_add(1);
  Disposition d{now,      campaign_id_,       r.message_id, r.email,    r.row,
                "failed", "renderingfailure", error,        r.attempts, 0,
                ""};
  push(std::move(o), std::move(d));
}

asio::awaitable<void> Engine::session(std::string domain, std::vector<dns::Target> targets) {
  auto executor = co_await asio::this_coro::executor;
  smtp::SmtpClient client(executor, client_options_, tls_);
  asio::steady_timer timer(executor);

  // Connect: the targets in order, until one greets us and accepts EHLO (and TLS if required).
  smtp::Reply opened;
  std::string mx;
  for (const auto& t : targets) {
    opened = co_await client.open(t.host, t.port);
    if (opened.positive()) {
      mx = t.host + ":" + std::to_string(t.port);
      break;
    }
  }
  if (!opened.positive()) {
    feedback::Verdict v = feedback::classify_reply(opened);
    std::string where = targets.empty()
                            ? domain
                            : targets.front().host + ":" + std::to_string(targets.front().port);
    {
      std::lock_guard<std::mutex> lock(routes_mu_);
      if (warned_domains_.insert(domain).second) {
        log_->warn("{}: cannot deliver through {}: {} ({}); its recipients are {}", domain, where,
                   opened.to_string(), v.reason,
                   v.action == feedback::Action::kBounce ? "bounced" : "deferred and retried");
      }
    }
    if (v.action == feedback::Action::kSuspendSource) {
      suspend(domain, opened, v, where, /*attempted=*/true);
    } else {
      for (auto& r : scheduler_.connection_failed(domain)) record(r, v, opened, 0, where);
    }
    scheduler_.session_closed(domain);
    co_return;
  }

  std::string message;
  std::vector<std::string> rcpt(1);
  auto idle_since = Clock::now();
  while (!g_stop.load()) {
    auto task = scheduler_.next(domain);
    if (!task) {
      // Keep the connection a little while: the control thread may be claiming the next batch.
      bool all_final = ingest_done_.load() && finals_.load() >= accepted_.load();
      if (all_final || Clock::now() - idle_since > std::chrono::milliseconds(500)) break;
      timer.expires_after(std::chrono::milliseconds(5));
      co_await timer.async_wait(asio::use_awaitable);
      continue;
    }
    if (rate_) {
      auto wait = rate_->reserve();
      if (wait > Clock::duration::zero()) {
        timer.expires_after(wait);
        co_await timer.async_wait(asio::use_awaitable);
      }
    }

    auto t0 = Clock::now();
    nlohmann::json data = nlohmann::json::parse(task->data_json, nullptr, false);
    auto sender = composer_->compose({task->email, task->token, task->message_id, &data}, message);
    if (!sender) {
      record_failed(*task, sender.status().message());
      idle_since = Clock::now();
      continue;
    }
    rcpt[0] = task->email;
    smtp::TransactionResult result = co_await client.send(*sender, rcpt, message);
    const smtp::Reply& reply = smtp::deciding_reply(result);
    if (reply.no_reply() && result.final_dot_sent) lost_after_dot_.fetch_add(1);
    feedback::Verdict v = feedback::classify_reply(reply);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    record(*task, v, reply, ms, mx);
    if (v.action == feedback::Action::kDelivered) scheduler_.delivered(domain);
    if (v.action == feedback::Action::kSuspendSource)
      suspend(domain, reply, v, mx, /*attempted=*/false);
    if (v.action == feedback::Action::kRetryAndThrottle) scheduler_.slow_down(domain);
    idle_since = Clock::now();
    if (!client.usable() || v.close_connection) break;
  }
  co_await client.close();
  scheduler_.session_closed(domain);
}

// Resolves the domains of freshly claimed recipients. Recipients of a domain that cannot take
// mail (null MX, no such domain) are bounced, those of a domain whose lookup failed for now are
// deferred; they are removed from `claimed`. Returns false when nothing is left.
bool Engine::route_claimed(std::vector<spool::Claimed>& claimed) {
  std::vector<spool::Claimed> keep;
  keep.reserve(claimed.size());
  auto now = Clock::now();
  for (auto& r : claimed) {
    if (auto until = scheduler_.suspended_until(r.domain, now)) {
      postpone(r, *until);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(routes_mu_);
      if (routes_.count(r.domain)) {
        keep.push_back(std::move(r));
        continue;
      }
    }
    auto targets = resolver_.resolve(r.domain);
    if (targets && !targets->empty()) {
      std::lock_guard<std::mutex> lock(routes_mu_);
      routes_[r.domain] = *targets;
      keep.push_back(std::move(r));
      continue;
    }
    smtp::Reply synthetic = feedback::routing_failure_reply(
        r.domain, targets.is_ok() ? Status::ok() : targets.status());
    feedback::Verdict v = feedback::classify_reply(synthetic);
    if (synthetic.code / 100 == 4) v.reason = "networkerror";
    record(r, v, synthetic, 0, "");
  }
  claimed = std::move(keep);
  return !claimed.empty();
}

void Engine::flush_outcomes() {
  std::vector<spool::Outcome> outcomes;
  std::vector<Disposition> records;
  {
    std::lock_guard<std::mutex> lock(out_mu_);
    outcomes.swap(outcomes_);
    records.swap(records_);
  }
  if (outcomes.empty()) return;
  // The disposition log first: every attempt whose outcome reaches the spool has its line, even
  // if the process dies right after the commit. (A line whose commit is then lost belongs to a
  // recipient still in flight, which is sent again and counted as a possible duplicate.)
  for (const auto& d : records) dispositions_.add(d);
  if (Status s = dispositions_.flush(); !s) log_->warn("{}", s.message());
  for (int attempt = 0;; ++attempt) {
    Status s = spool_.commit_outcomes(outcomes);
    if (s) break;
    log_->warn("spool commit failed ({}), retrying", s.message());
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::min(1000, 50 << std::min(attempt, 5))));
  }
}

void Engine::show_progress(bool final_line) {
  auto now = Clock::now();
  bool tty = settings_.progress && ::isatty(STDERR_FILENO);
  auto every = tty ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000);
  if (!final_line && now - last_progress_ < every) return;
  last_progress_ = now;
  uint64_t total = accepted_.load();
  uint64_t done = finals_.load();
  double secs = elapsed_s();
  double rate = secs > 0 ? static_cast<double>(delivered_.load()) / secs : 0;
  std::string counts = fmt::format(
      "{}/{} final, {} delivered, {} bounced, {} expired, {} failed, {} deferrals, {:.0f} msg/s",
      done, total, delivered_.load(), bounced_.load(), expired_.load(), failed_.load(),
      deferred_.load(), rate);
  if (tty) {
    int width = 30;
    int filled =
        total ? static_cast<int>(width * static_cast<double>(done) / static_cast<double>(total))
              : 0;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(static_cast<size_t>(width), '.');
    std::fprintf(
        stderr, "\r[%s] %3d%% %s%s", bar.c_str(),
        total ? static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total))
              : 0,
        counts.c_str(), final_line ? "\n" : "");
    std::fflush(stderr);
  } else if (settings_.progress) {
    log_->info("{}", counts);
  }
}

void Engine::ingest(RecipientReader* reader, uint64_t rows_read) {
  std::vector<spool::NewRecipient> batch;
  std::vector<spool::InvalidRow> invalid;
  RecipientRow row;
  auto flush = [&](bool done) -> bool {
    auto added = spool_.accept_batch(campaign_id_, batch, std::move(invalid), rows_read, done);
    invalid.clear();
    batch.clear();
    if (!added) {
      ingest_status_ = added.status();
      return false;
    }
    accepted_.fetch_add(*added);
    return true;
  };
  auto domain_of_from = settings_.from.substr(settings_.from.rfind('@') + 1);
  if (auto gt = domain_of_from.find('>'); gt != std::string::npos) domain_of_from.resize(gt);
  while (!g_stop.load() && reader->next(row)) {
    ++rows_read;
    if (!row.error.empty()) {
      invalid.push_back({row.row, row.error});
      invalid_.fetch_add(1);
    } else {
      spool::NewRecipient r;
      r.row = row.row;
      r.email = row.email;
      r.domain = row.domain;
      r.data_json = row.data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      r.token = random_token();
      r.message_id = mail::make_message_id(domain_of_from);
      batch.push_back(std::move(r));
    }
    if (batch.size() + invalid.size() >= settings_.batch_size) {
      if (!flush(false)) break;
    }
  }
  // After a stop the list is not complete: --resume reads on from rows_read.
  if (ingest_status_) flush(!g_stop.load());
  ingest_done_.store(true);
}

Status Engine::run_ingest_and_delivery(RecipientReader& reader, uint64_t skip_rows,
                                       uint64_t accepted, uint64_t finals, bool ingest_done) {
  accepted_ = accepted;
  finals_ = finals;
  std::thread ingest_thread;
  if (ingest_done) {
    ingest_done_ = true;
  } else {
    ingest_thread = std::thread([this, &reader, skip_rows] { ingest(&reader, skip_rows); });
  }

  auto work = asio::make_work_guard(io_);
  int threads = settings_.io_threads > 0 ? settings_.io_threads
                                         : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> io_threads;
  for (int i = 0; i < threads; ++i) io_threads.emplace_back([this] { io_.run(); });

  // The control loop: commit, claim, open sessions, until every recipient is final.
  size_t low_water = std::max<size_t>(settings_.batch_size, 64);
  Clock::time_point stop_seen{};
  constexpr auto kStopGrace = std::chrono::seconds(5);
  while (true) {
    flush_outcomes();
    show_progress(false);
    bool stopping = g_stop.load();
    if (stopping && stop_seen == Clock::time_point{}) stop_seen = Clock::now();
    // Sessions finish the message they are on; one stuck on a slow receiver is not waited for
    // beyond the grace time. Its recipient stays in flight: resent on --resume, and counted as
    // a possible duplicate since its message may have gone through.
    if (stopping && Clock::now() - stop_seen > kStopGrace) {
      int cut = scheduler_.active_sessions();
      log_->warn("stopping without waiting for {} sessions still in a transaction", cut);
      lost_after_dot_.fetch_add(static_cast<uint64_t>(cut));
      break;
    }
    if (!stopping && scheduler_.ready() < low_water) {
      auto claimed = spool_.claim_due(campaign_id_, wall_ms(), settings_.batch_size);
      if (!claimed) {
        log_->warn("spool claim failed: {}", claimed.status().message());
      } else if (!claimed->empty() && route_claimed(*claimed)) {
        scheduler_.add(std::move(*claimed));
      }
    }
    if (!stopping) {
      for (const auto& domain : scheduler_.sessions_to_open()) {
        std::vector<dns::Target> targets;
        {
          std::lock_guard<std::mutex> lock(routes_mu_);
          targets = routes_[domain];
        }
        asio::co_spawn(io_, session(domain, std::move(targets)), asio::detached);
      }
    }
    bool idle = scheduler_.active_sessions() == 0;
    if (idle && ingest_done_.load()) {
      std::lock_guard<std::mutex> lock(out_mu_);
      if (outcomes_.empty() && (stopping || finals_.load() >= accepted_.load())) break;
    }
    if (stopping && idle) {
      // Sessions ended; nothing more will be recorded.
      std::lock_guard<std::mutex> lock(out_mu_);
      if (outcomes_.empty() && ingest_done_.load()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(scheduler_.ready() > 0 ? 2 : 10));
  }
  flush_outcomes();
  show_progress(true);

  // Recipients claimed but never sent (a stop) go back to due; they were not attempted.
  scheduler_.drain();
  (void)spool_.recover(campaign_id_);

  work.reset();
  io_.stop();
  for (auto& t : io_threads) t.join();
  if (ingest_thread.joinable()) ingest_thread.join();
  return ingest_status_;
}

std::string canonical_path(const std::string& path) {
  std::error_code ec;
  auto p = std::filesystem::weakly_canonical(path, ec);
  return ec ? path : p.string();
}

// Opens path for writing without truncating it, and removes it again if it did not exist.
Status check_writable(const std::string& path, const char* option) {
  bool existed = std::filesystem::exists(path);
  FILE* f = std::fopen(path.c_str(), "ab");
  if (!f) {
    return Status::invalid(std::string(option) + " '" + path + "': cannot write there: " +
                           std::strerror(errno) + " (nothing was sent)");
  }
  std::fclose(f);
  if (!existed) std::filesystem::remove(path);
  return Status::ok();
}

bool has_control_or_space(std::string_view s) {
  for (unsigned char c : s) {
    if (c <= ' ' || c == 0x7f) return true;
  }
  return false;
}

// Option values that reach the wire are checked here, so that no flag can put a line break or
// a second command into an SMTP session or a header.
Status check_options(const SendSettings& settings) {
  if (!settings.ehlo_name.empty()) {
    bool literal = settings.ehlo_name.front() == '[' && settings.ehlo_name.back() == ']';
    for (char c : literal ? settings.ehlo_name.substr(1, settings.ehlo_name.size() - 2)
                          : settings.ehlo_name) {
      bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
                (literal && (c == ':'));
      if (!ok) {
        return Status::invalid("--ehlo '" + settings.ehlo_name +
                               "': a host name (letters, digits, '-', '.') or an address literal "
                               "like [192.0.2.1]");
      }
    }
  }
  if (settings.relay_auth) {
    for (const auto& part : {settings.relay_auth->username, settings.relay_auth->password}) {
      for (unsigned char c : part) {
        if (c < ' ' || c == 0x7f)
          return Status::invalid("--auth: control characters are not allowed");
      }
    }
  }
  if (!settings.unsubscribe_url.empty()) {
    const std::string& u = settings.unsubscribe_url;
    // RFC 8058: the one-click target is an HTTPS URI; it is written inside <...>.
    if (u.rfind("https://", 0) != 0 || u.size() <= 8 || has_control_or_space(u) ||
        u.find_first_of("<>\"\\") != std::string::npos) {
      return Status::invalid("--unsubscribe-url '" + u +
                             "': must be an https:// URL without spaces, quotes or angle brackets "
                             "(RFC 8058 one-click needs HTTPS)");
    }
  }
  // One mailbox: a second "<" or a comma outside quotes means a list.
  int angles = 0;
  bool quoted = false, escaped = false;
  for (char c : settings.from) {
    if (escaped) {
      escaped = false;
      continue;
    }
    if (c == '\\') {
      escaped = true;
      continue;
    }
    if (c == '"') quoted = !quoted;
    if (!quoted && c == '<') ++angles;
    if (!quoted && c == ',') angles = 2;
  }
  if (angles > 1) {
    return Status::invalid("--from '" + settings.from +
                           "': give one mailbox, e.g. \"Name <addr@domain>\"");
  }
  if (settings.io_threads < 0 || settings.io_threads > 64) {
    return Status::invalid("--io-threads must be between 0 (one per core) and 64");
  }
  return Status::ok();
}

}  // namespace

void request_stop() {
  // Before anything is accepted there is nothing to stop gracefully: end now. _exit is safe
  // in a signal handler.
  if (!g_engine_running.load()) _exit(130);
  g_stop.store(true);
}

Result<SendReport> run_send(const SendSettings& settings) {
  g_stop.store(false);
  g_engine_running.store(false);
  auto log = logger("send");

  // Everything that can be wrong before anything is accepted is checked here.
  if (Status s = check_options(settings); !s) return s;
  auto from = mail::parse_mailbox(settings.from);
  if (!from) return Status::invalid("--from '" + settings.from + "': " + from.status().message());
  auto templates = TemplateSet::load_file(settings.template_path);
  if (!templates) return templates.status();
  auto template_ptr = std::make_shared<const TemplateSet>(std::move(*templates));

  ComposerOptions composer_options;
  composer_options.from = *from;
  composer_options.unsubscribe_url = settings.unsubscribe_url;
  composer_options.strict = !settings.allow_missing;
  if (!settings.dkim_key.empty() || !settings.dkim_domain.empty() ||
      !settings.dkim_selector.empty()) {
    if (settings.dkim_key.empty() || settings.dkim_domain.empty() ||
        settings.dkim_selector.empty()) {
      return Status::invalid("DKIM needs all of --dkim-domain, --dkim-selector and --dkim-key");
    }
    auto key = dkim::DkimKey::load_pem_file(settings.dkim_key);
    if (!key)
      return Status::invalid("--dkim-key '" + settings.dkim_key + "': " + key.status().message());
    dkim::SignerOptions so;
    so.domain = settings.dkim_domain;
    so.selector = settings.dkim_selector;
    auto signer = dkim::DkimSigner::create(so, *key);
    if (!signer) return signer.status();
    composer_options.signer = std::move(*signer);
  }
  auto composer = std::make_shared<const Composer>(template_ptr, std::move(composer_options));

  // What does not depend on a recipient's data (a missing partial, partials that call each other
  // without end) fails every recipient alike: find it once, before sending.
  {
    RenderedParts trial;
    if (Status s = template_ptr->render(nlohmann::json::object(), /*strict=*/false, trial); !s) {
      return Status::invalid("template '" + settings.template_path + "': " + s.message() +
                             " (nothing was sent)");
    }
  }

  dns::ResolverOptions ro;
  if (settings.relay) {
    auto route = dns::parse_route(*settings.relay, /*relay=*/true);
    if (!route) return Status::invalid("--relay: " + route.status().message());
    ro.routes[route->first] = route->second;
  }
  for (const auto& text : settings.routes) {
    auto route = dns::parse_route(text, /*relay=*/false);
    if (!route) return Status::invalid("--route '" + text + "': " + route.status().message());
    ro.routes[route->first] = route->second;
  }
  ro.servers = settings.dns_servers;
  ro.smtp_port = settings.smtp_port;
  dns::Resolver resolver(ro);

  auto reader = RecipientReader::open(settings.recipients_path,
                                      [](std::string_view a) -> Result<std::string> {
                                        auto m = mail::parse_address(a);
                                        if (!m) return m.status();
                                        return m->address();
                                      });
  if (!reader) return reader.status();
  if (!settings.allow_missing && !(*reader)->columns().empty()) {
    auto missing = template_ptr->missing_variables((*reader)->columns());
    if (!missing.empty()) {
      std::string msg = "the template uses variables that are not columns of '" +
                        settings.recipients_path + "' (nothing was sent):";
      for (const auto& m : missing) msg += "\n  " + m;
      msg += "\ncolumns:";
      for (const auto& c : (*reader)->columns()) msg += " " + c;
      msg += "\n(use --allow-missing to render them as empty)";
      return Status::invalid(msg);
    }
  }

  std::string log_path = settings.disposition_log.empty()
                             ? settings.spool_path + ".dispositions.jsonl"
                             : settings.disposition_log;
  {
    // Writing a report or log over an input, the spool or each other destroys it.
    std::vector<std::pair<std::string, std::string>> files = {
        {"--template", settings.template_path}, {"--recipients", settings.recipients_path},
        {"--spool", settings.spool_path},       {"--dkim-key", settings.dkim_key},
        {"--disposition-log", log_path},        {"--report", settings.report_path}};
    for (size_t out = 4; out < files.size(); ++out) {
      if (files[out].second.empty()) continue;
      for (size_t other = 0; other < files.size(); ++other) {
        if (other == out || files[other].second.empty()) continue;
        if (canonical_path(files[out].second) == canonical_path(files[other].second)) {
          return Status::invalid(files[out].first + " '" + files[out].second +
                                 "' is the same file as " + files[other].first +
                                 " (nothing was sent)");
        }
      }
    }
  }
  if (!settings.report_path.empty()) {
    if (Status s = check_writable(settings.report_path, "--report"); !s) return s;
  }
  DispositionLog dispositions;
  if (Status s = dispositions.open(log_path); !s) return s;

  auto opened = spool::Spool::open(settings.spool_path);
  if (!opened) return opened.status();
  spool::Spool& spool = **opened;

  // A new campaign, or the one being resumed.
  std::string campaign_id;
  uint64_t skip_rows = 0, accepted = 0, finals = 0;
  bool ingest_done = false;
  if (settings.resume) {
    auto c = spool.latest_campaign();
    if (!c)
      return Status::not_found("--resume: " + c.status().message() + " ('" + settings.spool_path +
                               "')");
    campaign_id = c->id;
    // A resumed campaign goes on with the same content, sender and list; anything else would
    // mail one campaign with two contents.
    nlohmann::json stored = nlohmann::json::parse(c->settings_json, nullptr, false);
    if (stored.is_object()) {
      std::string what;
      if (stored.value("template", nlohmann::json()) != template_ptr->source())
        what = "template";
      else if (stored.value("from", std::string()) != settings.from)
        what = "--from";
      else if (stored.value("recipients_path", std::string()) !=
               canonical_path(settings.recipients_path))
        what = "recipient list";
      if (!what.empty()) {
        return Status::invalid("--resume: the " + what + " differs from the one campaign " + c->id +
                               " was started with (" + stored.value("template_path", "") + ", " +
                               stored.value("from", "") + ", " +
                               stored.value("recipients_path", "") + "); give the same");
      }
    }
    skip_rows = c->rows_read;
    ingest_done = c->ingest_done;
    auto recovered = spool.recover(campaign_id);
    if (!recovered) return recovered.status();
    // TODO: this over-counts: every recipient claimed when the process died is counted, also
    // those still waiting in the ready queue and never attempted (up to --batch-size of them).
    // A tight count needs a durable mark per attempt, which costs a write per message.
    if (recovered->in_flight_reset) {
      log->warn(
          "resuming campaign {}: {} recipients were in flight when it stopped; they are sent "
          "again and counted as possible duplicates",
          campaign_id, recovered->in_flight_reset);
      (void)spool.add_counter(campaign_id, "possible_duplicates",
                              static_cast<int64_t>(recovered->in_flight_reset));
    }
    auto counts = spool.counts(campaign_id);
    if (!counts) return counts.status();
    accepted = counts->total.recipients;
    finals = accepted - counts->total.pending - counts->total.deferred;
    log->info("resuming campaign {}: {} recipients accepted, {} final, list read to row {}{}",
              campaign_id, accepted, finals, skip_rows, ingest_done ? " (complete)" : "");
    if (skip_rows) (*reader)->skip(skip_rows);
  } else {
    // Re-running the command after a crash without --resume would mail everyone again.
    if (auto last = spool.latest_campaign(); last && !settings.new_campaign) {
      auto left = spool.unfinished(last->id);
      if (left && *left > 0) {
        return Status::invalid("the spool '" + settings.spool_path + "' holds campaign " +
                               last->id + " with " + std::to_string(*left) +
                               " recipients not yet final: add --resume to finish it, or "
                               "--new-campaign to start another one beside it");
      }
    }
    campaign_id = new_id();
    nlohmann::json settings_json = {{"template", template_ptr->source()},
                                    {"template_path", settings.template_path},
                                    {"recipients_path", canonical_path(settings.recipients_path)},
                                    {"from", settings.from}};
    if (Status s = spool.create_campaign({campaign_id, "", settings_json.dump(), 0, false}); !s)
      return s;
    log->info("campaign {}: sending '{}' to the list '{}'", campaign_id, settings.template_path,
              settings.recipients_path);
  }

  smtp::ClientOptions client_options;
  client_options.ehlo_name = settings.ehlo_name.empty() ? from->domain : settings.ehlo_name;
  client_options.tls = settings.tls;
  client_options.auth = settings.relay_auth;

  Engine engine(settings, campaign_id, spool, composer, resolver, client_options, dispositions);
  g_engine_running.store(true);
  Status run = engine.run_ingest_and_delivery(**reader, skip_rows, accepted, finals, ingest_done);
  if (!run) log->warn("the list could not be read to the end: {}", run.message());
  if (engine.possible_duplicates()) {
    (void)spool.add_counter(campaign_id, "possible_duplicates",
                            static_cast<int64_t>(engine.possible_duplicates()));
  }

  auto report = build_report(spool, campaign_id, engine.elapsed_s(), engine.delivered_this_run());
  if (!report) return report.status();
  if (!settings.report_path.empty()) {
    if (Status s = write_report(*report, settings.report_path); !s) return s;
  }
  return report;
}

}  // namespace magnetic::campaign
