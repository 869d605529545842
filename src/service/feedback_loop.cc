#include "service/feedback_loop.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "base/ids.h"
#include "base/log.h"
#include "feedback/bounce_rules.h"
#include "feedback/verp.h"

namespace magnetic::service {
namespace {

using events::EventType;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

smtp::Reply reply(int code, std::string enhanced, std::string text) {
  smtp::Reply r;
  r.code = code;
  r.enhanced = std::move(enhanced);
  r.text = std::move(text);
  return r;
}

std::string percent(double rate) { return fmt::format("{:.2f}%", rate * 100); }

// "smtp; 550 5.1.1 no such user": SES's diagnosticCode form.
std::string diagnostic_code(const std::string& text) {
  if (text.empty()) return "";
  return "smtp; " + text;
}

// A status code for a record when the reply carried none: the class digit of the reply code.
std::string status_or_class(const std::string& status, int code, bool permanent) {
  if (!status.empty()) return status;
  if (code >= 400 && code < 600) return std::to_string(code / 100) + ".0.0";
  return permanent ? "5.0.0" : "4.0.0";
}

// SES DeliveryDelay delayType for a deferral.
std::string delay_type(const std::string& reason, const smtp::Reply& r, const std::string& mx) {
  // Not attempted: its destination is suspended for refusing our egress source.
  if (reason == "suspended") return "IPFailure";
  if (mx.empty() || r.no_reply()) return "TransientCommunicationFailure";
  if (reason == "mailboxfull") return "MailboxFull";
  if (reason == "spamdetected" || reason == "contenterror") return "SpamDetected";
  if (reason == "blocked" || reason == "toomanyconn" || reason == "speeding") return "IPFailure";
  return "RecipientServerError";
}

// Soft bounces that say something about the recipient's mailbox, and so count toward the
// soft-bounce run that suppresses it. The others (blocked, badreputation, speeding, spam
// filters, network and system errors, ...) are about us, our message or the path, and
// suppressing the reader for them would punish the wrong party.
bool about_recipient(const std::string& reason) {
  static const std::set<std::string> kRecipientReasons = {"mailboxfull", "suspend",   "expired",
                                                          "systemfull",  "undefined", "onhold"};
  return kRecipientReasons.count(reason) > 0;
}

std::string host_of(const std::string& mx) {
  auto colon = mx.rfind(':');
  return colon == std::string::npos ? mx : mx.substr(0, colon);
}

}  // namespace

std::vector<std::string> effective_suppressed_reasons(
    const store::Account& account, const std::optional<store::ConfigurationSet>& set) {
  std::vector<std::string> reasons = account.suppressed_reasons;
  if (set && !set->suppression_options.empty()) {
    auto j = nlohmann::json::parse(set->suppression_options, nullptr, false);
    if (j.is_object() && j.contains("SuppressedReasons") && j["SuppressedReasons"].is_array()) {
      reasons.clear();
      for (const auto& r : j["SuppressedReasons"]) {
        if (r.is_string()) reasons.push_back(r.get<std::string>());
      }
    }
  }
  return reasons;
}

struct FeedbackLoop::Impl {
  FeedbackOptions options;
  store::Store& store;
  spool::MessageSpool& spool;
  Publisher& publisher;
  std::shared_ptr<spdlog::logger> log = logger("feedback");

  // Recipients sent, per scope ("" the account), not yet written: one reputation write a second
  // at most, not one per group commit of the spool (each is a commit of its own). The guard
  // writes them before it judges.
  std::mutex sent_mu;
  std::map<std::string, uint64_t> unsaved_sent;
  std::chrono::steady_clock::time_point sent_saved{};
  void save_sent(bool now_anyway);

  Impl(FeedbackOptions o, store::Store& st, spool::MessageSpool& sp, Publisher& p)
      : options(std::move(o)), store(st), spool(sp), publisher(p) {}

  // What one failed recipient means, and what we did.
  struct Failure {
    spool::RecipientRecord recipient;
    feedback::BounceClass cls;
    std::string action = "failed";
    std::string status, diagnostic;
    std::string reporting_mta, remote_mta_ip;
    std::string feedback_id;
  };

  Status suppress(const std::string& email, const std::string& reason,
                  const std::string& configuration_set, const std::string& message_id,
                  const std::string& feedback_id, bool& done);
  // Hard bounces are counted into `bounced` (per reputation scope) for one reputation write
  // per group: each write is a commit.
  Status act_on_bounce(const Failure& f, std::vector<PendingEvent>& events,
                       std::map<std::string, uint64_t>& bounced, bool& suppressed);
  void record_bounces(const std::map<std::string, uint64_t>& bounced) {
    if (!options.reputation.enabled) return;
    int64_t now = wall_ms();
    for (const auto& [scope, n] : bounced) {
      if (Status s = store.record_reputation(scope, now, 0, n, 0); !s)
        log->warn("reputation counters not updated: {}", s.message());
    }
  }
  // The reputation scopes a bounce or complaint about a message counts in: the account ("") and
  // its configuration set, each only if the message was accepted after the scope's last fresh
  // start (a resume), so that mail sent before it cannot pause sending again. An unknown
  // acceptance time (0) counts: the guard may pause again, never wrongly stay quiet.
  std::vector<std::string> scopes_counting(const std::string& set, int64_t accepted_ms);
  void complaint(const std::string& set, int64_t accepted_ms);
  void guard(const std::string& set, bool force);
  // Those of `tokens` (VERP tokens a report came to) whose recipient the report names.
  std::vector<std::string> tokens_named(std::string_view raw,
                                        const std::vector<std::string>& tokens);
  // SES reports a recipient it did not send to because of the suppression list as a Permanent
  // bounce of subtype OnAccountSuppressionList (not counted in the bounce rate).
  void suppressed_bounce(const std::string& set, const std::string& message_id,
                         const std::string& mail_json, const std::vector<std::string>& recipients,
                         int64_t now, std::vector<PendingEvent>& events) {
    if (!publisher.wants(set, EventType::kBounce)) return;
    events::BounceDetail b;
    b.bounce_type = "Permanent";
    b.bounce_sub_type = "OnAccountSuppressionList";
    for (const auto& r : recipients)
      b.bounced_recipients.push_back(
          {r, "failed", "5.1.1", "Not sent: the address is on the account's suppression list"});
    b.timestamp_ms = now;
    b.feedback_id = new_id();
    b.reporting_mta = options.reporting_mta.empty() ? "" : "dns; " + options.reporting_mta;
    if (auto json = events::make_event(mail_json, b))
      events.push_back({set, message_id, EventType::kBounce, *json});
  }
  // Publishes the guard's pause to the destinations that match SENDING_PAUSED: the set's, or for
  // the account every set's.
  void publish_paused(const events::SendingPausedDetail& d);
  void publish(std::vector<PendingEvent>& events) {
    if (events.empty()) return;
    if (Status s = publisher.publish(events); !s) {
      log->error("{} events could not be stored: {}", events.size(), s.message());
    }
    events.clear();
  }
  std::optional<store::ConfigurationSet> set_of(const std::string& name) {
    if (name.empty()) return std::nullopt;
    auto s = store.get_configuration_set(name);
    if (!s) return std::nullopt;
    return *s;
  }
};

FeedbackLoop::FeedbackLoop(FeedbackOptions options, store::Store& store, spool::MessageSpool& spool,
                           Publisher& publisher)
    : impl_(std::make_unique<Impl>(std::move(options), store, spool, publisher)) {
  for (auto& a : impl_->options.complaint_addresses) a = lower(a);
}

FeedbackLoop::~FeedbackLoop() { impl_->save_sent(true); }

void FeedbackLoop::Impl::save_sent(bool now_anyway) {
  std::map<std::string, uint64_t> counts;
  {
    std::lock_guard<std::mutex> lock(sent_mu);
    auto now = std::chrono::steady_clock::now();
    if (!now_anyway && now - sent_saved < std::chrono::seconds(1)) return;
    sent_saved = now;
    counts.swap(unsaved_sent);
  }
  int64_t now = wall_ms();
  for (const auto& [scope, n] : counts) {
    if (!n) continue;
    if (Status s = store.record_reputation(scope, now, n, 0, 0); !s)
      log->warn("reputation counters not updated: {}", s.message());
  }
}

Status FeedbackLoop::Impl::suppress(const std::string& email, const std::string& reason,
                                    const std::string& configuration_set,
                                    const std::string& message_id, const std::string& feedback_id,
                                    bool& done) {
  done = false;
  auto account = store.account();
  if (!account) return account.status();
  auto reasons = effective_suppressed_reasons(*account, set_of(configuration_set));
  if (std::find(reasons.begin(), reasons.end(), reason) == reasons.end()) return Status::ok();
  store::SuppressedDestination d;
  d.email = email;
  d.reason = reason;
  d.message_id = message_id;
  d.feedback_id = feedback_id;
  if (Status s = store.put_suppressed(d); !s) return s;
  log->info("{} suppressed ({}, message {})", email, reason, message_id);
  done = true;
  return Status::ok();
}

Status FeedbackLoop::Impl::act_on_bounce(const Failure& f, std::vector<PendingEvent>& events,
                                         std::map<std::string, uint64_t>& bounced,
                                         bool& suppressed) {
  const auto& r = f.recipient;
  suppressed = false;
  if (f.cls.hard) {
    if (Status s = suppress(r.email, "BOUNCE", r.configuration_set, r.message_id, f.feedback_id,
                            suppressed);
        !s)
      return s;
    (void)store.reset_soft_bounces(r.email);
  } else if (f.cls.bounce_type == "Transient" && options.soft_bounce_limit > 0 &&
             about_recipient(f.cls.reason)) {
    auto run = store.count_soft_bounce(r.email, wall_ms());
    if (!run) return run.status();
    if (*run >= options.soft_bounce_limit) {
      log->info("{}: {} soft bounces in a row", r.email, *run);
      if (Status s = suppress(r.email, "BOUNCE", r.configuration_set, r.message_id, f.feedback_id,
                              suppressed);
          !s)
        return s;
    }
  }
  if (f.cls.hard && options.reputation.enabled) {
    for (const auto& scope : scopes_counting(r.configuration_set, r.accepted_ms)) ++bounced[scope];
  }
  if (publisher.wants(r.configuration_set, EventType::kBounce)) {
    events::BounceDetail b;
    b.bounce_type = f.cls.bounce_type.empty() ? "Undetermined" : f.cls.bounce_type;
    b.bounce_sub_type = f.cls.bounce_subtype.empty() ? "General" : f.cls.bounce_subtype;
    b.bounced_recipients.push_back({r.email, f.action, f.status, f.diagnostic});
    b.timestamp_ms = wall_ms();
    b.feedback_id = f.feedback_id;
    b.reporting_mta = f.reporting_mta;
    b.remote_mta_ip = f.remote_mta_ip;
    auto json = events::make_event(r.mail_json, b);
    if (json) {
      events.push_back({r.configuration_set, r.message_id, EventType::kBounce, std::move(*json)});
    } else {
      log->warn("message {}: no bounce event: {}", r.message_id, json.status().message());
    }
  }
  return Status::ok();
}

std::vector<std::string> FeedbackLoop::Impl::scopes_counting(const std::string& set,
                                                             int64_t accepted_ms) {
  std::vector<std::string> scopes;
  auto account = store.account();
  if (!account || accepted_ms == 0 || accepted_ms >= account->reputation_reset_ms)
    scopes.push_back("");
  if (set.empty()) return scopes;
  int64_t fresh_start_ms = 0;
  if (auto cs = set_of(set)) {
    auto options = nlohmann::json::parse(cs->reputation_options, nullptr, false);
    if (options.is_object() && options.contains("LastFreshStart") &&
        options["LastFreshStart"].is_number())
      fresh_start_ms = static_cast<int64_t>(options["LastFreshStart"].get<double>() * 1000);
  }
  if (accepted_ms == 0 || accepted_ms >= fresh_start_ms) scopes.push_back(set);
  return scopes;
}

void FeedbackLoop::Impl::complaint(const std::string& set, int64_t accepted_ms) {
  if (!options.reputation.enabled) return;
  int64_t now = wall_ms();
  for (const auto& scope : scopes_counting(set, accepted_ms)) {
    if (Status s = store.record_reputation(scope, now, 0, 0, 1); !s)
      log->warn("reputation counters not updated: {}", s.message());
  }
}

void FeedbackLoop::Impl::guard(const std::string& set, bool force) {
  // Run once per group of attempts or per report, not per bounce: a few indexed reads.
  (void)force;
  const ReputationThresholds& t = options.reputation;
  if (!t.enabled) return;
  save_sent(true);
  std::vector<std::string> scopes = {""};
  if (!set.empty()) scopes.push_back(set);
  for (const std::string& scope : scopes) {
    int64_t now = wall_ms();
    int64_t since = now - t.window.count();
    auto account = store.account();
    if (!account) continue;
    // A resume cleared the scope's counters (store::Store::clear_reputation), so the window
    // never reaches back before it.
    std::optional<store::ConfigurationSet> cs;
    if (!scope.empty()) {
      cs = set_of(scope);
      if (!cs) continue;
    }
    auto counts = store.reputation_since(scope, since, now);
    // Nothing sent in the window (min_sent 0, or a report about mail of an earlier window):
    // there is no rate to judge.
    if (!counts || counts->sent == 0 || counts->sent < t.min_sent) continue;
    double bounce_rate = static_cast<double>(counts->bounced) / static_cast<double>(counts->sent);
    double complaint_rate =
        static_cast<double>(counts->complained) / static_cast<double>(counts->sent);
    std::string what = scope.empty() ? "the account" : "configuration set " + scope;
    std::string why, metric;
    if (bounce_rate >= t.pause_bounce_rate) {
      metric = "BOUNCE";
      why = fmt::format("bounce rate {} ({} of {} recipients) reached the pause threshold {}",
                        percent(bounce_rate), counts->bounced, counts->sent,
                        percent(t.pause_bounce_rate));
    } else if (complaint_rate >= t.pause_complaint_rate) {
      metric = "COMPLAINT";
      why = fmt::format("complaint rate {} ({} of {} recipients) reached the pause threshold {}",
                        percent(complaint_rate), counts->complained, counts->sent,
                        percent(t.pause_complaint_rate));
    }
    if (!why.empty()) {
      if (scope.empty()) {
        if (!account->sending_enabled) continue;
        account->sending_enabled = false;
        account->enforcement_status = "SHUTDOWN";
        account->sending_paused_reason = why;
        if (Status s = store.put_account(*account); !s) {
          log->error("could not pause the account: {}", s.message());
          continue;
        }
      } else {
        auto opts = nlohmann::json::parse(cs->sending_options, nullptr, false);
        if (!opts.is_object()) opts = nlohmann::json::object();
        if (opts.value("SendingEnabled", true) == false) continue;
        opts["SendingEnabled"] = false;
        cs->sending_options = opts.dump();
        if (Status s = store.update_configuration_set(*cs); !s) {
          log->error("could not pause configuration set {}: {}", scope, s.message());
          continue;
        }
      }
      if (options.on_paused) options.on_paused(scope);
      log->error("sending paused for {}: {}; resume it through the API once the cause is fixed",
                 what, why);
      events::SendingPausedDetail d;
      d.timestamp_ms = now;
      d.configuration_set = scope;
      d.metric = metric;
      d.rate = metric == "BOUNCE" ? bounce_rate : complaint_rate;
      d.threshold = metric == "BOUNCE" ? t.pause_bounce_rate : t.pause_complaint_rate;
      d.sent = counts->sent;
      d.bounced = counts->bounced;
      d.complained = counts->complained;
      d.window_ms = t.window.count();
      d.reason = why;
      publish_paused(d);
      continue;
    }
    bool review = bounce_rate >= t.review_bounce_rate || complaint_rate >= t.review_complaint_rate;
    if (scope.empty() && review && account->enforcement_status == "HEALTHY") {
      account->enforcement_status = "PROBATION";
      (void)store.put_account(*account);
      log->warn(
          "the account is under review: bounce rate {} (review at {}), complaint rate {} "
          "(review at {}) over {} recipients",
          percent(bounce_rate), percent(t.review_bounce_rate), percent(complaint_rate),
          percent(t.review_complaint_rate), counts->sent);
    }
  }
}

void FeedbackLoop::Impl::publish_paused(const events::SendingPausedDetail& d) {
  std::string json = events::make_sending_paused_event(d);
  std::vector<PendingEvent> events;
  auto add_if_wanted = [&](const std::string& set) {
    if (publisher.wants(set, EventType::kSendingPaused))
      events.push_back({set, "", EventType::kSendingPaused, json});
  };
  if (!d.configuration_set.empty()) {
    add_if_wanted(d.configuration_set);
  } else {
    // The account's pause stops every configuration set: each set that asks for it is told.
    store::Page page;
    for (int pages = 0; pages < 10000; ++pages) {
      auto sets = store.list_configuration_sets(page);
      if (!sets) {
        log->warn("sending paused event: configuration sets not listed: {}",
                  sets.status().message());
        break;
      }
      for (const auto& cs : sets->items) add_if_wanted(cs.name);
      if (sets->next_token.empty()) break;
      page.token = sets->next_token;
    }
  }
  // With no destination asking for it the event is still logged, for `magnetic events tail`.
  if (events.empty()) events.push_back({d.configuration_set, "", EventType::kSendingPaused, json});
  publish(events);
}

void FeedbackLoop::check_reputation(const std::string& configuration_set) {
  impl_->guard(configuration_set, true);
}

smtp::Reply FeedbackLoop::check_recipient(const std::string& mail_from, const std::string& rcpt) {
  (void)mail_from;
  const auto& o = impl_->options;
  std::string address = lower(rcpt);
  if (!o.bounce_domain.empty()) {
    std::string token = feedback::verp_token_of(address, o.bounce_domain);
    if (!token.empty()) {
      if (feedback::verp_row(token, o.verp_key)) return reply(250, "2.1.5", "OK");
      return reply(550, "5.1.1", "No such bounce address");
    }
    if (address == "postmaster@" + lower(o.bounce_domain)) return reply(250, "2.1.5", "OK");
  }
  if (std::find(o.complaint_addresses.begin(), o.complaint_addresses.end(), address) !=
      o.complaint_addresses.end())
    return reply(250, "2.1.5", "OK");
  return reply(550, "5.7.1",
               "Relaying denied: this server takes only bounces and feedback reports for its "
               "own addresses");
}

std::vector<std::string> FeedbackLoop::Impl::tokens_named(std::string_view raw,
                                                          const std::vector<std::string>& tokens) {
  auto report = feedback::parse_feedback(raw);
  if (!report) return {};
  std::set<std::string> named;
  for (const auto& e : report->entries) {
    if (!e.recipient.empty()) named.insert(lower(e.recipient));
  }
  std::vector<std::string> out;
  for (const auto& t : tokens) {
    auto row = feedback::verp_row(t, options.verp_key);
    if (!row) continue;
    auto r = spool.recipient(*row);
    if (r && named.count(lower(r->email))) out.push_back(t);
  }
  return out;
}

smtp::Reply FeedbackLoop::receive(const smtp::SubmissionEnvelope& envelope) {
  // A genuine report comes to one bounce address: the envelope sender of the one message it is
  // about. One that comes to several at once is read for the recipients it names: each bounce
  // address whose recipient it names is acted on; with none named, none is taken on trust (the
  // report is matched as if it came to no bounce address: by its returned message).
  std::vector<std::string> tokens;
  for (const auto& r : envelope.rcpt_to) {
    std::string t = feedback::verp_token_of(lower(r), impl_->options.bounce_domain);
    if (!t.empty() && std::find(tokens.begin(), tokens.end(), t) == tokens.end())
      tokens.push_back(t);
  }
  if (tokens.size() > 1) {
    size_t came_to = tokens.size();
    tokens = impl_->tokens_named(envelope.data, tokens);
    impl_->log->info("report from <{}> came to {} bounce addresses; {} of them named in it",
                     envelope.mail_from, came_to, tokens.size());
  }
  if (tokens.empty()) tokens.push_back("");
  Result<FeedbackResult> result = FeedbackResult{};
  for (const auto& token : tokens) {
    auto one = process(envelope.data, token);
    if (!one) {
      result = one.status();
      break;
    }
    result->kind = one->kind;
    result->matched += one->matched;
    result->unmatched += one->unmatched;
    result->suppressed += one->suppressed;
    result->repeated += one->repeated;
  }
  if (!result) {
    if (result.status().code() == StatusCode::kInvalidArgument)
      return reply(554, "5.6.0", result.status().message());
    impl_->log->error("feedback from {} not recorded: {}", envelope.mail_from,
                      result.status().message());
    return reply(451, "4.3.0", "Feedback could not be recorded; try again later");
  }
  return reply(250, "2.0.0",
               fmt::format("Feedback recorded: {} matched, {} unmatched", result->matched,
                           result->unmatched));
}

Result<FeedbackResult> FeedbackLoop::process(std::string_view raw, const std::string& verp_token) {
  Impl& m = *impl_;
  auto report = feedback::parse_feedback(raw);
  if (!report) return Status::invalid("not a message: " + report.status().message());
  // What the parser cut or refused (a flood of MIME parts, a recipient field that is not one
  // address): the report is still acted on for what it does name.
  for (const auto& note : report->notes) m.log->info("inbound feedback: {}", note);
  FeedbackResult result;
  result.kind = report->kind;
  if (report->kind != feedback::FeedbackKind::kBounce &&
      report->kind != feedback::FeedbackKind::kComplaint) {
    m.log->debug("inbound message is {}: nothing to do", feedback_kind_name(report->kind));
    return result;
  }

  // Which of our recipients it is about: the VERP token names one; else the returned
  // message's Message-ID (ours are <MessageId@domain>) names a message.
  std::optional<spool::RecipientRecord> by_token;
  std::string token = verp_token.empty() ? report->verp_token : verp_token;
  if (token.empty() && !report->original_mail_from.empty() && !m.options.bounce_domain.empty()) {
    // An ARF report's Original-Mail-From is the envelope sender we used: our VERP address.
    std::string from = report->original_mail_from;
    if (from.size() > 1 && from.front() == '<' && from.back() == '>')
      from = from.substr(1, from.size() - 2);
    token = feedback::verp_token_of(lower(from), m.options.bounce_domain);
  }
  if (!token.empty()) {
    if (auto row = feedback::verp_row(token, m.options.verp_key)) {
      auto r = m.spool.recipient(*row);
      if (r) {
        by_token = std::move(*r);
      } else if (r.status().code() != StatusCode::kNotFound) {
        return r.status();
      }
    }
  }
  std::vector<spool::RecipientRecord> of_message;
  if (!by_token && !report->original_message_id.empty()) {
    std::string id = report->original_message_id;
    id = id.substr(0, id.find('@'));
    auto listed = m.spool.recipients_of_message(id);
    if (!listed) return listed.status();
    of_message = std::move(*listed);
  }
  // The Message-ID is known to every recipient of a message, so one of them could name the
  // others in a report of their own making. When VERP is on, every genuine report about a
  // message with several recipients comes to a recipient's own VERP address; the Message-ID
  // then only matches a message sent to one recipient.
  bool verp_on = !m.options.bounce_domain.empty();
  if (verp_on && of_message.size() > 1) {
    size_t named = 0;
    for (const auto& e : report->entries) named += e.recipient.empty() ? 0 : 1;
    result.unmatched = std::max<size_t>(1, named);
    m.log->info(
        "{} for message {} names it only by Message-ID and it had {} recipients: not "
        "matched (reports about such messages come to VERP addresses)",
        feedback_kind_name(report->kind), of_message.front().message_id, of_message.size());
    return result;
  }
  // A report that does not say whom it is about (it names nobody, or only the returned
  // message's To does) is about the message's one recipient; with several, it cannot tell them
  // apart, and nobody is acted on.
  auto only_recipient = [&]() -> const spool::RecipientRecord* {
    return of_message.size() == 1 ? &of_message.front() : nullptr;
  };
  auto find_in_message = [&](const std::string& email) -> const spool::RecipientRecord* {
    for (const auto& r : of_message) {
      if (lower(r.email) == lower(email)) return &r;
    }
    return nullptr;
  };
  // A report is acted on once per recipient and message: repeated entries of one report and
  // the same report sent again are counted and published once.
  std::set<int64_t> seen_rows;
  auto first_time = [&](const spool::RecipientRecord& r, int mark) -> Result<bool> {
    if (!seen_rows.insert(r.row).second) return false;
    return m.spool.mark_feedback(r.row, mark);
  };
  // For rows already entered in seen_rows.
  auto first_time_marked = [&](const spool::RecipientRecord& r, int mark) -> Result<bool> {
    return m.spool.mark_feedback(r.row, mark);
  };

  std::string feedback_id = new_id();
  std::vector<PendingEvent> events;
  std::set<std::string> sets_touched;
  std::map<std::string, uint64_t> bounced;

  if (report->kind == feedback::FeedbackKind::kBounce) {
    bool token_used = false;
    for (const auto& e : report->entries) {
      if (!e.action.empty() && e.action != "failed") continue;  // delayed, delivered, relayed
      const spool::RecipientRecord* target = nullptr;
      if (by_token && !token_used) {
        // A VERP address is one recipient's: the report is about it, whatever address the
        // receiver wrote (forwarding, aliases).
        target = &*by_token;
        token_used = true;
      } else if (!by_token) {
        target = e.inferred ? only_recipient() : find_in_message(e.recipient);
      }
      if (!target) {
        ++result.unmatched;
        continue;
      }
      auto fresh = first_time(*target, spool::MessageSpool::kFeedbackBounce);
      if (!fresh) return fresh.status();
      if (!*fresh) {
        ++result.repeated;
        continue;
      }
      ++result.matched;
      Impl::Failure f;
      f.recipient = *target;
      f.cls = {e.reason, e.hard, e.bounce_type, e.bounce_subtype};
      f.status = e.status.empty() ? (e.hard ? "5.0.0" : "4.0.0") : e.status;
      // SES's diagnosticCode keeps the DSN's type ("smtp; 550 ...", "X-Postfix; ...").
      f.diagnostic =
          e.diagnostic.empty()
              ? ""
              : (e.diagnostic_type.empty() ? "smtp" : e.diagnostic_type) + "; " + e.diagnostic;
      f.reporting_mta = report->reporting_mta.empty() ? "" : "dns; " + report->reporting_mta;
      f.feedback_id = feedback_id;
      bool suppressed = false;
      if (Status s = m.act_on_bounce(f, events, bounced, suppressed); !s) return s;
      result.suppressed += suppressed ? 1 : 0;
      sets_touched.insert(target->configuration_set);
      m.log->info("bounce for {} (message {}): {} {}", target->email, target->message_id, e.reason,
                  e.hard ? "hard" : "soft");
    }
  } else {
    // A complaint: the token's recipient, else those the report names, else (a report that
    // names nobody, or only through the returned To) the message's one recipient.
    std::vector<const spool::RecipientRecord*> candidates;
    if (by_token) {
      candidates.push_back(&*by_token);
    } else {
      for (const auto& e : report->entries) {
        if (e.recipient.empty()) continue;
        if (const auto* r = e.inferred ? only_recipient() : find_in_message(e.recipient)) {
          candidates.push_back(r);
        } else {
          ++result.unmatched;
        }
      }
      if (candidates.empty() && result.unmatched == 0 && !report->recipients_unreadable) {
        if (const auto* r = only_recipient()) {
          candidates.push_back(r);
        } else if (of_message.size() > 1) {
          m.log->info("complaint about message {} names none of its {} recipients: not matched",
                      of_message.front().message_id, of_message.size());
          result.unmatched = 1;
        }
      }
    }
    if (candidates.empty() && result.unmatched == 0) result.unmatched = 1;
    // not-spam says the opposite of a complaint; auth-failure (RFC 6591) is about our
    // authentication, not about the reader's wish: neither suppresses or counts, and neither
    // marks the recipient as complained (a real complaint may follow).
    bool not_spam = report->feedback_type == "not-spam" || report->feedback_type == "auth-failure";
    std::vector<const spool::RecipientRecord*> targets;
    for (const auto* r : candidates) {
      bool new_here = seen_rows.insert(r->row).second;
      Result<bool> fresh = new_here;
      if (new_here && !not_spam)
        fresh = first_time_marked(*r, spool::MessageSpool::kFeedbackComplaint);
      if (!fresh) return fresh.status();
      if (*fresh) {
        targets.push_back(r);
      } else {
        ++result.repeated;
      }
    }
    std::map<std::string, std::vector<const spool::RecipientRecord*>> by_message;
    for (const auto* r : targets) by_message[r->message_id].push_back(r);
    for (const auto& [message_id, recipients] : by_message) {
      const auto& first = *recipients.front();
      for (const auto* r : recipients) {
        ++result.matched;
        if (not_spam) continue;
        bool suppressed = false;
        if (Status s = m.suppress(r->email, "COMPLAINT", r->configuration_set, r->message_id,
                                  feedback_id, suppressed);
            !s)
          return s;
        result.suppressed += suppressed ? 1 : 0;
        m.log->info("complaint ({}) for {} (message {})",
                    report->feedback_type.empty() ? "abuse" : report->feedback_type, r->email,
                    r->message_id);
      }
      if (!not_spam) m.complaint(first.configuration_set, first.accepted_ms);
      sets_touched.insert(first.configuration_set);
      if (m.publisher.wants(first.configuration_set, EventType::kComplaint)) {
        events::ComplaintDetail c;
        for (const auto* r : recipients) c.complained_recipients.push_back(r->email);
        c.timestamp_ms = wall_ms();
        c.feedback_id = feedback_id;
        c.user_agent = report->user_agent;
        c.complaint_feedback_type = report->feedback_type;
        if (report->arrival_date_ms > 0) c.arrival_date_ms = report->arrival_date_ms;
        auto json = events::make_event(first.mail_json, c);
        if (json) {
          events.push_back(
              {first.configuration_set, message_id, EventType::kComplaint, std::move(*json)});
        }
      }
    }
  }
  m.publish(events);
  m.record_bounces(bounced);
  for (const auto& set : sets_touched) m.guard(set, false);
  if (result.repeated) {
    m.log->info("{}: {} recipient(s) already acted on for the same message; not counted again",
                feedback_kind_name(report->kind), result.repeated);
  }
  if (result.unmatched) {
    m.log->info("{} from {}: {} recipient(s) not matched to a message of ours",
                feedback_kind_name(report->kind),
                report->reporting_mta.empty() ? "an unknown MTA" : report->reporting_mta,
                result.unmatched);
  }
  return result;
}

void FeedbackLoop::on_attempts(const std::vector<Attempt>& attempts) {
  Impl& m = *impl_;
  std::vector<PendingEvent> events;
  std::set<std::string> sets_touched;
  std::map<std::string, uint64_t> bounced;
  int64_t now = wall_ms();
  for (const Attempt& a : attempts) {
    spool::RecipientRecord r;
    r.row = a.recipient.id;
    r.message = a.recipient.message;
    r.message_id = a.recipient.message_id;
    r.email = a.recipient.email;
    if (a.known) {
      r.configuration_set = a.configuration_set;
      r.mail_json = a.mail_json;
      r.accepted_ms = a.accepted_ms;
    } else if (auto full = m.spool.recipient(a.recipient.id)) {
      r = std::move(*full);
    }
    const spool::Outcome& o = a.outcome;
    switch (o.state) {
      case spool::RecipientState::kDelivered: {
        // A handoff does not end a soft-bounce run: a receiver's 250 is often a relay's or a
        // front end's, and the mailbox-full DSN of the same message comes after it.
        if (!m.publisher.wants(r.configuration_set, EventType::kDelivery)) break;
        events::DeliveryDetail d;
        d.timestamp_ms = now;
        d.processing_time_millis = r.accepted_ms ? std::max<int64_t>(0, now - r.accepted_ms) : 0;
        d.recipients = {r.email};
        d.smtp_response = a.reply.to_string();
        d.reporting_mta = m.options.reporting_mta;
        d.remote_mta_ip = host_of(a.mx);
        if (auto json = events::make_event(r.mail_json, d))
          events.push_back({r.configuration_set, r.message_id, EventType::kDelivery, *json});
        break;
      }
      case spool::RecipientState::kBounced:
      case spool::RecipientState::kExpired: {
        bool expired = o.state == spool::RecipientState::kExpired;
        Impl::Failure f;
        f.recipient = r;
        if (expired) {
          // Retried until too old: SES reports it as a soft (Transient) bounce.
          f.cls = feedback::bounce_rules().class_of("expired", false);
          if (f.cls.bounce_type.empty()) f.cls.bounce_type = "Transient";
          if (f.cls.bounce_subtype.empty()) f.cls.bounce_subtype = "General";
        } else {
          feedback::FailureFacts facts;
          facts.status = a.reply.enhanced;
          facts.reply_code = a.reply.code;
          facts.diagnostic = a.reply.text;
          facts.permanent = true;
          facts.after_data = a.reply.stage == "data" || a.reply.stage == "dot";
          f.cls = feedback::bounce_rules().classify(facts);
        }
        bool not_attempted = a.reply.code == 0 && a.reply.stage.empty() && a.reply.text.empty();
        if (expired && not_attempted) {
          // Expired while its destination was suspended: no reply to quote. 4.4.7 is RFC 3463's
          // "delivery time expired".
          f.status = "4.4.7";
          f.diagnostic = o.reply;
        } else {
          f.status = status_or_class(a.reply.enhanced, a.reply.code, !expired);
          // A Transient bounce carries a transient status: one that expired after a permanent
          // refusal of our egress source (which defers, not bounces) says "delivery time
          // expired" and quotes the refusal in its diagnostic.
          if (expired && f.status.front() != '4') f.status = "4.4.7";
          f.diagnostic = diagnostic_code(a.reply.to_string());
        }
        f.reporting_mta = m.options.reporting_mta.empty() ? "" : "dns; " + m.options.reporting_mta;
        f.remote_mta_ip = host_of(a.mx);
        f.feedback_id = new_id();
        bool suppressed = false;
        if (Status s = m.act_on_bounce(f, events, bounced, suppressed); !s) {
          m.log->error("bounce of {} not acted on: {}", r.email, s.message());
        }
        sets_touched.insert(r.configuration_set);
        break;
      }
      case spool::RecipientState::kDeferred: {
        if (!m.publisher.wants(r.configuration_set, EventType::kDeliveryDelay)) break;
        events::DeliveryDelayDetail d;
        d.timestamp_ms = now;
        d.delay_type = delay_type(o.reason, a.reply, a.mx);
        d.expiration_time_ms = (r.accepted_ms        ? r.accepted_ms
                                : o.first_attempt_ms ? o.first_attempt_ms
                                                     : now) +
                               m.options.max_age.count();
        d.delayed_recipients.push_back({r.email,
                                        status_or_class(a.reply.enhanced, a.reply.code, false),
                                        diagnostic_code(a.reply.to_string())});
        d.reporting_mta = m.options.reporting_mta;
        if (auto json = events::make_event(r.mail_json, d))
          events.push_back({r.configuration_set, r.message_id, EventType::kDeliveryDelay, *json});
        break;
      }
      case spool::RecipientState::kSuppressed:
        // Suppressed after its message was accepted, found before the attempt.
        m.suppressed_bounce(r.configuration_set, r.message_id, r.mail_json, {r.email}, now, events);
        break;
      default:
        break;
    }
  }
  m.publish(events);
  m.record_bounces(bounced);
  for (const auto& set : sets_touched) m.guard(set, false);
}

void FeedbackLoop::publish_accepted(const std::vector<Accepted>& messages) {
  Impl& m = *impl_;
  std::vector<PendingEvent> events;
  int64_t now = wall_ms();
  for (const auto& msg : messages) {
    if (m.publisher.wants(msg.configuration_set, EventType::kSend)) {
      if (auto json = events::make_send_event(msg.mail_json))
        events.push_back({msg.configuration_set, msg.message_id, EventType::kSend, *json});
    }
    if (!msg.suppressed.empty()) {
      m.suppressed_bounce(msg.configuration_set, msg.message_id, msg.mail_json, msg.suppressed, now,
                          events);
    }
  }
  m.publish(events);
}

void FeedbackLoop::count_accepted(const std::vector<Accepted>& messages) {
  Impl& m = *impl_;
  if (!m.options.reputation.enabled) return;
  {
    std::lock_guard<std::mutex> lock(m.sent_mu);
    for (const auto& msg : messages) {
      m.unsaved_sent[""] += msg.recipients;
      if (!msg.configuration_set.empty()) m.unsaved_sent[msg.configuration_set] += msg.recipients;
    }
  }
  m.save_sent(false);
}

}  // namespace magnetic::service
