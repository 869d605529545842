#include "service/delivery.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "base/log.h"
#include "campaign/disposition_log.h"
#include "feedback/reply_policy.h"
#include "feedback/verp.h"
#include "queue/retry_schedule.h"
#include "queue/scheduler.h"

namespace magnetic::service {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using spool::RecipientState;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Lowers the calling thread's priority (Linux schedules threads one by one, so this leaves the
// API's threads alone). Failure is harmless: delivery then runs at normal priority.
void lower_priority(int nice) {
  if (nice <= 0) return;
  auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  (void)::setpriority(PRIO_PROCESS, tid, std::min(nice, 19));
}

}  // namespace

struct DeliveryEngine::Impl {
  Impl(DeliveryOptions o, spool::MessageSpool& s, dns::Resolver& r, SignerLookup sl,
       PolicyLookup pl, AttemptListener al)
      : options(std::move(o)),
        spool(s),
        resolver(r),
        signers(std::move(sl)),
        policies(std::move(pl)),
        listener(std::move(al)),
        scheduler({.domain_connections = options.domain_connections,
                   .total_connections = options.total_connections,
                   .initial_backoff = options.slow_backoff,
                   .max_backoff = std::chrono::minutes(5),
                   .recover_after = 50}),
        tls(std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client)),
        log(logger("delivery")) {
    retry.initial = options.retry_initial;
    retry.max_age = options.max_age;
    retry.max_delay = std::max(options.retry_initial, options.retry_max);
    tls->set_verify_mode(asio::ssl::verify_none);
    client_options.ehlo_name = options.ehlo_name;
    client_options.tls = options.tls;
    client_options.auth = options.relay_auth;
  }

  asio::awaitable<void> session(std::string domain, std::vector<dns::Target> targets);
  // What the attempt read of its message, for the attempt listener.
  struct MessageMeta {
    std::string configuration_set, mail_json;
    int64_t accepted_ms = 0;
    bool suppressed = false;  // the recipient was suppressed after acceptance: not sent
  };
  void record(const spool::Claimed& r, const feedback::Verdict& v, const smtp::Reply& reply,
              double duration_ms, const std::string& mx, const MessageMeta* meta = nullptr);
  void record_failed(const spool::Claimed& r, const std::string& error);
  // Final, without an attempt: the recipient is on the suppression list now.
  void record_suppressed_now(const spool::Claimed& r, const MessageMeta& meta);
  // The receiver refused our egress source: the domain rests until suspend_for from now, and
  // its waiting recipients are deferred to then. A refusal at the greeting stands for an attempt
  // of each (`attempted`: recorded with the reply, as a failed connection is); one at RCPT or
  // DATA concerns the recipient it answered, and the others wait unattempted.
  void suspend(const std::string& domain, const smtp::Reply& reply, const feedback::Verdict& v,
               const std::string& mx, bool attempted);
  // Defers a recipient of a suspended domain to the suspension's end without an attempt; the
  // listener hears of it with the refusal that suspended the domain (a DeliveryDelay event).
  void postpone(const spool::Claimed& r, Clock::time_point until);
  bool route_claimed(std::vector<spool::Claimed>& claimed);
  void flush_outcomes();
  void control_loop();
  // The message of a claimed recipient, signed with its identity's key.
  Result<std::shared_ptr<const std::string>> signed_message(const spool::Claimed& r,
                                                            std::string& envelope_from,
                                                            MessagePolicy& policy,
                                                            MessageMeta& meta);

  DeliveryOptions options;
  spool::MessageSpool& spool;
  dns::Resolver& resolver;
  SignerLookup signers;
  PolicyLookup policies;
  SuppressionCheck suppression_check;
  AttemptListener listener;
  queue::Scheduler scheduler;
  queue::RetrySchedule retry;
  std::shared_ptr<asio::ssl::context> tls;
  smtp::ClientOptions client_options;
  std::shared_ptr<spdlog::logger> log;
  asio::io_context io;
  campaign::DispositionLog dispositions;
  bool log_open = false;
  DeliveryStats stats;

  std::mutex suspension_mu;
  std::map<std::string, smtp::Reply> suspension_reply;  // the refusal behind each suspension

  std::mutex routes_mu;
  std::map<std::string, std::vector<dns::Target>> routes;
  std::map<std::string, Clock::time_point> route_expiry;

  std::mutex out_mu;
  std::vector<spool::Outcome> outcomes;
  std::vector<campaign::Disposition> records;
  std::vector<Attempt> attempts;  // for the listener, when there is one

  std::mutex wake_mu;
  std::condition_variable wake_cv;
  bool woken = false;
  std::atomic<bool> stopping{false};
  std::chrono::milliseconds grace{5000};
  std::thread control;
  std::vector<std::thread> io_threads;
};

DeliveryEngine::DeliveryEngine(DeliveryOptions options, spool::MessageSpool& spool,
                               dns::Resolver& resolver, SignerLookup signers, PolicyLookup policies,
                               AttemptListener listener)
    : impl_(std::make_unique<Impl>(std::move(options), spool, resolver, std::move(signers),
                                   std::move(policies), std::move(listener))) {}

DeliveryEngine::~DeliveryEngine() { stop(); }

const DeliveryStats& DeliveryEngine::stats() const { return impl_->stats; }

void DeliveryEngine::record_suppressed(const std::string& message_id, const std::string& recipient,
                                       const std::string& configuration_set) {
  campaign::Disposition d;
  d.time_ms = wall_ms();
  d.message_id = message_id;
  d.recipient = recipient;
  d.status = "suppressed";
  d.reason = "OnAccountSuppressionList";
  d.reply = configuration_set.empty()
                ? "on the account suppression list"
                : "on the suppression list (configuration set " + configuration_set + ")";
  std::lock_guard<std::mutex> lock(impl_->out_mu);
  impl_->records.push_back(std::move(d));
}

void DeliveryEngine::set_suppression_check(SuppressionCheck check) {
  impl_->suppression_check = std::move(check);
}

void DeliveryEngine::Impl::record_suppressed_now(const spool::Claimed& r, const MessageMeta& meta) {
  int64_t now = wall_ms();
  spool::Outcome o;
  o.id = r.id;
  o.state = RecipientState::kSuppressed;
  o.attempts = r.attempts;
  o.first_attempt_ms = r.first_attempt_ms;
  o.reason = "OnAccountSuppressionList";
  o.reply = "suppressed after the message was accepted; not sent";
  campaign::Disposition d{now,      "",      r.message_id, r.email, 0, "suppressed",
                          o.reason, o.reply, r.attempts,   0,       ""};
  std::lock_guard<std::mutex> lock(out_mu);
  if (listener) {
    Attempt a{r, o, smtp::Reply{}, ""};
    a.known = true;
    a.configuration_set = meta.configuration_set;
    a.accepted_ms = meta.accepted_ms;
    a.mail_json = meta.mail_json;
    attempts.push_back(std::move(a));
  }
  outcomes.push_back(std::move(o));
  records.push_back(std::move(d));
}

void DeliveryEngine::wake() {
  {
    std::lock_guard<std::mutex> lock(impl_->wake_mu);
    impl_->woken = true;
  }
  impl_->wake_cv.notify_one();
}

Status DeliveryEngine::start() {
  Impl& m = *impl_;
  if (!m.options.disposition_log.empty()) {
    if (Status s = m.dispositions.open(m.options.disposition_log); !s) return s;
    m.log_open = true;
  }
  auto recovered = m.spool.recover();
  if (!recovered) return recovered.status();
  if (recovered->in_flight_reset) {
    m.log->warn(
        "{} recipients were in flight when the service stopped; they are sent again (possible "
        "duplicates)",
        recovered->in_flight_reset);
    m.stats.possible_duplicates.fetch_add(recovered->in_flight_reset);
  }
  int threads = m.options.io_threads > 0
                    ? m.options.io_threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i) {
    m.io_threads.emplace_back([&m] {
      lower_priority(m.options.nice);
      auto work = asio::make_work_guard(m.io);
      m.io.run();
    });
  }
  m.control = std::thread([&m] {
    lower_priority(m.options.nice);
    m.control_loop();
  });
  return Status::ok();
}

void DeliveryEngine::stop(std::chrono::milliseconds grace) {
  Impl& m = *impl_;
  if (!m.control.joinable()) return;
  m.grace = grace;
  m.stopping.store(true);
  wake();
  m.control.join();
  m.io.stop();
  for (auto& t : m.io_threads) t.join();
  m.io_threads.clear();
}

void DeliveryEngine::Impl::record(const spool::Claimed& r, const feedback::Verdict& v,
                                  const smtp::Reply& reply, double duration_ms,
                                  const std::string& mx, const MessageMeta* meta) {
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
      stats.delivered.fetch_add(1);
      break;
    case feedback::Action::kBounce:
      o.state = RecipientState::kBounced;
      stats.bounced.fetch_add(1);
      break;
    case feedback::Action::kRetry:
    case feedback::Action::kRetryAndThrottle:
    case feedback::Action::kSuspendSource: {
      thread_local std::mt19937_64 rng{std::random_device{}()};
      double u = std::uniform_real_distribution<double>(0, 1)(rng);
      o.next_attempt_ms = now + retry.delay_after(o.attempts, u).count();
      if (v.action == feedback::Action::kSuspendSource)
        o.next_attempt_ms = std::max(o.next_attempt_ms, now + options.suspend_for.count());
      int64_t origin = queue::RetrySchedule::age_origin(r, now);
      o.next_attempt_ms = retry.next_try(origin, o.next_attempt_ms);
      if (retry.expired(origin, now)) {
        o.state = RecipientState::kExpired;
        o.next_attempt_ms = 0;
        stats.expired.fetch_add(1);
      } else {
        o.state = RecipientState::kDeferred;
        stats.deferred.fetch_add(1);
      }
      break;
    }
  }
  campaign::Disposition d{
      now,      "",      r.message_id, r.email,     0, spool::state_name(o.state),
      o.reason, o.reply, o.attempts,   duration_ms, mx};
  std::lock_guard<std::mutex> lock(out_mu);
  if (listener) {
    Attempt a{r, o, reply, mx};
    if (meta) {
      a.known = true;
      a.configuration_set = meta->configuration_set;
      a.accepted_ms = meta->accepted_ms;
      a.mail_json = meta->mail_json;
    }
    attempts.push_back(std::move(a));
  }
  outcomes.push_back(std::move(o));
  records.push_back(std::move(d));
}

void DeliveryEngine::Impl::suspend(const std::string& domain, const smtp::Reply& reply,
                                   const feedback::Verdict& v, const std::string& mx,
                                   bool attempted) {
  auto until = Clock::now() + options.suspend_for;
  {
    std::lock_guard<std::mutex> lock(suspension_mu);
    suspension_reply[domain] = reply;
  }
  auto waiting = scheduler.suspend(domain, until);
  log->warn("{}", queue::suspension_note(domain, v.reason, reply.to_string(), options.suspend_for,
                                         waiting.size()));
  for (const auto& r : waiting) attempted ? record(r, v, reply, 0, mx) : postpone(r, until);
}

void DeliveryEngine::Impl::postpone(const spool::Claimed& r, Clock::time_point until) {
  int64_t now = wall_ms();
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
  spool::Outcome o = retry.postponed(r, now, now + wait.count());
  smtp::Reply refusal;
  {
    std::lock_guard<std::mutex> lock(suspension_mu);
    if (auto it = suspension_reply.find(r.domain); it != suspension_reply.end())
      refusal = it->second;
  }
  std::lock_guard<std::mutex> lock(out_mu);
  if (o.state == RecipientState::kExpired) {
    // The age limit holds while the destination rests: expired now, as at an attempt, with its
    // Transient bounce published.
    stats.expired.fetch_add(1);
    records.push_back(
        {now, "", r.message_id, r.email, 0, "expired", o.reason, o.reply, r.attempts, 0, ""});
    if (listener) attempts.push_back(Attempt{r, o, smtp::Reply{}, ""});
  } else if (listener) {
    // Delayed: a DeliveryDelay (IPFailure) quoting the refusal that suspended the destination.
    attempts.push_back(Attempt{r, o, refusal, ""});
  }
  outcomes.push_back(std::move(o));
}

void DeliveryEngine::Impl::record_failed(const spool::Claimed& r, const std::string& error) {
  int64_t now = wall_ms();
  stats.failed.fetch_add(1);
  spool::Outcome o{r.id,  RecipientState::kFailed, r.attempts, 0, r.first_attempt_ms,
                   error, "signingfailure"};
  campaign::Disposition d{
      now, "", r.message_id, r.email, 0, "failed", "signingfailure", error, r.attempts, 0, ""};
  std::lock_guard<std::mutex> lock(out_mu);
  outcomes.push_back(std::move(o));
  records.push_back(std::move(d));
}

Result<std::shared_ptr<const std::string>> DeliveryEngine::Impl::signed_message(
    const spool::Claimed& r, std::string& envelope_from, MessagePolicy& policy, MessageMeta& meta) {
  auto stored = spool.message(r.message);
  if (!stored) return stored.status();
  if (suppression_check && suppression_check(r.email, stored->configuration_set)) {
    meta.suppressed = true;
    meta.configuration_set = std::move(stored->configuration_set);
    meta.mail_json = std::move(stored->mail_json);
    meta.accepted_ms = stored->accepted_ms;
    return std::shared_ptr<const std::string>();
  }
  auto data = std::make_shared<std::string>();
  auto found = signers ? signers(stored->identity)
                       : Result<std::shared_ptr<const dkim::DkimSigner>>(nullptr);
  if (!found) return found.status();
  if (auto signer = *found) {
    auto signature = signer->sign(stored->data);
    if (!signature) return Status::internal("DKIM signing failed: " + signature.status().message());
    data->reserve(signature->size() + stored->data.size());
    data->append(*signature);
  }
  data->append(stored->data);
  envelope_from = options.verp_domain.empty()
                      ? stored->envelope_from
                      : feedback::verp_address(r.id, options.verp_domain, options.verp_key);
  policy = policies ? policies(stored->configuration_set) : MessagePolicy{};
  meta.configuration_set = std::move(stored->configuration_set);
  meta.mail_json = std::move(stored->mail_json);
  meta.accepted_ms = stored->accepted_ms;
  return std::shared_ptr<const std::string>(data);
}

asio::awaitable<void> DeliveryEngine::Impl::session(std::string domain,
                                                    std::vector<dns::Target> targets) {
  auto executor = co_await asio::this_coro::executor;
  smtp::SmtpClient client(executor, client_options, tls);
  asio::steady_timer timer(executor);

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
    log->warn("{}: cannot deliver through {}: {} ({})", domain, where, opened.to_string(),
              v.reason);
    if (v.action == feedback::Action::kSuspendSource) {
      suspend(domain, opened, v, where, /*attempted=*/true);
    } else {
      for (auto& r : scheduler.connection_failed(domain)) record(r, v, opened, 0, where);
    }
    scheduler.session_closed(domain);
    co_return;
  }

  std::vector<std::string> rcpt(1);
  auto idle_since = Clock::now();
  while (!stopping.load()) {
    auto task = scheduler.next(domain);
    if (!task) {
      // Keep the connection a little while: more may be claimed for this domain.
      if (Clock::now() - idle_since > std::chrono::milliseconds(500)) break;
      timer.expires_after(std::chrono::milliseconds(5));
      co_await timer.async_wait(asio::use_awaitable);
      continue;
    }
    auto t0 = Clock::now();
    std::string envelope_from;
    MessagePolicy policy;
    MessageMeta meta;
    auto message = signed_message(*task, envelope_from, policy, meta);
    if (!message) {
      record_failed(*task, message.status().message());
      idle_since = Clock::now();
      continue;
    }
    if (meta.suppressed) {
      record_suppressed_now(*task, meta);
      idle_since = Clock::now();
      continue;
    }
    if (policy.require_tls && !client.capabilities().tls_active) {
      // The configuration set asks for TLS and this receiver did not offer it: deferred, as SES
      // does, until the message is too old.
      smtp::Reply no_tls;
      no_tls.code = 454;
      no_tls.enhanced = "4.7.5";
      no_tls.text = "TLS required by the configuration set and not offered by " + mx;
      no_tls.stage = "starttls";
      record(*task, feedback::classify_reply(no_tls), no_tls, 0, mx, &meta);
      idle_since = Clock::now();
      continue;
    }
    rcpt[0] = task->email;
    smtp::TransactionResult result = co_await client.send(envelope_from, rcpt, **message);
    const smtp::Reply& reply = smtp::deciding_reply(result);
    if (reply.no_reply() && result.final_dot_sent) stats.possible_duplicates.fetch_add(1);
    feedback::Verdict v = feedback::classify_reply(reply);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    record(*task, v, reply, ms, mx, &meta);
    if (v.action == feedback::Action::kDelivered) scheduler.delivered(domain);
    if (v.action == feedback::Action::kSuspendSource)
      suspend(domain, reply, v, mx, /*attempted=*/false);
    if (v.action == feedback::Action::kRetryAndThrottle) {
      scheduler.slow_down(domain);
      log->info("{}: the receiver asked us to slow down ({}); {} session(s) allowed now", domain,
                reply.to_string(), scheduler.session_limit(domain));
    }
    idle_since = Clock::now();
    if (!client.usable() || v.close_connection) break;
  }
  co_await client.close();
  scheduler.session_closed(domain);
}

bool DeliveryEngine::Impl::route_claimed(std::vector<spool::Claimed>& claimed) {
  std::vector<spool::Claimed> keep;
  keep.reserve(claimed.size());
  auto now = Clock::now();
  for (auto& r : claimed) {
    if (auto until = scheduler.suspended_until(r.domain, now)) {
      postpone(r, *until);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(routes_mu);
      auto it = routes.find(r.domain);
      if (it != routes.end() && route_expiry[r.domain] > now) {
        keep.push_back(std::move(r));
        continue;
      }
    }
    auto targets = resolver.resolve(r.domain);
    if (targets && !targets->empty()) {
      std::lock_guard<std::mutex> lock(routes_mu);
      routes[r.domain] = *targets;
      // The resolver caches by TTL; this copy is only kept for a short while.
      route_expiry[r.domain] = now + std::chrono::minutes(5);
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

void DeliveryEngine::Impl::flush_outcomes() {
  std::vector<spool::Outcome> pending;
  std::vector<campaign::Disposition> lines;
  std::vector<Attempt> done;
  {
    std::lock_guard<std::mutex> lock(out_mu);
    pending.swap(outcomes);
    lines.swap(records);
    done.swap(attempts);
  }
  if (pending.empty() && lines.empty()) return;
  if (listener && !done.empty()) listener(done);
  if (log_open) {
    for (const auto& d : lines) dispositions.add(d);
    if (Status s = dispositions.flush(); !s) log->warn("{}", s.message());
  }
  for (int attempt = 0; !pending.empty(); ++attempt) {
    Status s = spool.commit_outcomes(pending, wall_ms());
    if (s) break;
    log->warn("spool commit failed ({}), retrying", s.message());
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::min(1000, 50 << std::min(attempt, 5))));
  }
}

void DeliveryEngine::Impl::control_loop() {
  size_t low_water = std::max<size_t>(options.claim_batch, 64);
  Clock::time_point stop_seen{};
  auto next_claim = Clock::now();
  while (true) {
    flush_outcomes();
    bool stop_now = stopping.load();
    if (stop_now) {
      if (stop_seen == Clock::time_point{}) stop_seen = Clock::now();
      if (scheduler.active_sessions() == 0 || Clock::now() - stop_seen > grace) break;
    }
    bool claimed_any = false;
    if (!stop_now && scheduler.ready() < low_water && Clock::now() >= next_claim) {
      auto claimed = spool.claim_due(wall_ms(), options.claim_batch);
      if (!claimed) {
        log->warn("spool claim failed: {}", claimed.status().message());
      } else if (!claimed->empty()) {
        claimed_any = true;
        if (route_claimed(*claimed)) scheduler.add(std::move(*claimed));
      } else {
        // Nothing due: look again when woken, or in a while for deferred recipients.
        next_claim = Clock::now() + std::chrono::milliseconds(250);
      }
    }
    if (!stop_now) {
      for (const auto& domain : scheduler.sessions_to_open()) {
        std::vector<dns::Target> targets;
        {
          std::lock_guard<std::mutex> lock(routes_mu);
          targets = routes[domain];
        }
        asio::co_spawn(io, session(domain, std::move(targets)), asio::detached);
      }
    }
    if (claimed_any) continue;
    std::unique_lock<std::mutex> lock(wake_mu);
    auto wait = scheduler.ready() > 0 || scheduler.active_sessions() > 0
                    ? std::chrono::milliseconds(2)
                    : std::chrono::milliseconds(50);
    if (wake_cv.wait_for(lock, wait, [&] { return woken; })) {
      woken = false;
      next_claim = Clock::now();
    }
  }
  flush_outcomes();
  // Recipients claimed and never sent go back to due, and so does the recipient of a session
  // cut short (its message may have gone through: a possible duplicate).
  int cut = scheduler.active_sessions();
  if (cut) log->warn("stopping without waiting for {} sessions still in a transaction", cut);
  scheduler.drain();
  (void)spool.recover();
}

}  // namespace magnetic::service
