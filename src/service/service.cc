#include "service/service.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/ids.h"
#include "base/log.h"
#include "dkim/signer.h"
#include "events/outbox.h"
#include "events/record.h"
#include "mail/address.h"
#include "mail/address_list.h"
#include "mail/header.h"
#include "service/publisher.h"
#include "spool/message_spool.h"

namespace magnetic::service {
namespace {

using Clock = std::chrono::steady_clock;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// SES's MaxSendRate is a number of recipients per second with about a second of burst. The
// queue::Throttle books one event at a time; a send asks for all its recipients at once, or none,
// so this small token bucket does that.
class SendRate {
 public:
  bool take(double rate, double n) {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = Clock::now();
    if (rate != rate_) {
      rate_ = rate;
      tokens_ = rate;
    } else {
      tokens_ = std::min(rate, tokens_ + rate * std::chrono::duration<double>(now - last_).count());
    }
    last_ = now;
    if (n > tokens_ && !(n > rate && tokens_ >= rate)) return false;
    tokens_ -= n;
    return true;
  }

 private:
  std::mutex mu_;
  double rate_ = -1, tokens_ = 0;
  Clock::time_point last_ = Clock::now();
};

// A cached read of the store, refreshed after a short time, so that the hot path of a bulk send
// does not read the same identity or configuration set fifty times.
template <typename T>
class TtlCache {
 public:
  template <typename Load>
  T get(const std::string& key, Load load) {
    auto now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = entries_.find(key);
      if (it != entries_.end() && it->second.second > now) return it->second.first;
    }
    T value = load();
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.size() > 10000) entries_.clear();
    entries_[key] = {value, now + std::chrono::seconds(2)};
    return value;
  }
  void erase(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.erase(key);
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::pair<T, Clock::time_point>> entries_;
};

// The `mail` object of the message's event records (events/record.h): what SES says of a
// message in every event about it, from its header fields and envelope.
std::string mail_json_of(const OutboundMessage& msg, const spool::NewMessage& nm, int64_t now,
                         const std::string& region) {
  events::MailInfo info;
  info.message_id = nm.message_id;
  info.timestamp_ms = now;
  info.source = msg.from;
  info.source_arn = "arn:aws:ses:" + region + ":000000000000:identity/" + nm.identity;
  info.sending_account_id = "000000000000";
  info.destination = msg.recipients;
  auto addresses = [](std::string_view value) {
    std::vector<std::string> out;
    auto list = mail::parse_address_list(value);
    if (list) {
      for (const auto& mb : *list) {
        std::string name = mail::decode_words(mb.display_name);
        out.push_back(name.empty() ? mb.address() : name + " <" + mb.address() + ">");
      }
    }
    return out;
  };
  if (auto parts = dkim::split_message(msg.data)) {
    size_t bytes = 0;
    for (const auto& f : parts->fields) {
      std::string name(f.name);
      std::string value = mail::decode_words(f.value);
      while (!value.empty() && value.front() == ' ') value.erase(value.begin());
      bytes += name.size() + value.size();
      // SES cuts the header list of very large headers (headersTruncated).
      if (bytes > 10 * 1024) {
        info.headers_truncated = true;
      } else {
        info.headers.emplace_back(name, value);
      }
      std::string key = lower(name);
      auto& ch = info.common_headers;
      if (key == "from")
        ch.from = addresses(f.value);
      else if (key == "to")
        ch.to = addresses(f.value);
      else if (key == "cc")
        ch.cc = addresses(f.value);
      else if (key == "reply-to")
        ch.reply_to = addresses(f.value);
      else if (key == "subject")
        ch.subject = value;
      else if (key == "date")
        ch.date = value;
      else if (key == "message-id")
        ch.message_id = value;
    }
  }
  info.tags["ses:configuration-set"] = {nm.configuration_set};
  info.tags["ses:from-domain"] = {nm.identity.substr(nm.identity.rfind('@') + 1)};
  for (const auto& [k, v] : msg.tags) info.tags[k].push_back(v);
  return events::mail_json(info);
}

struct PendingGroup {
  std::vector<spool::NewMessage> messages;
  uint64_t recipients = 0;
  std::promise<Status> done;
};

}  // namespace

struct Service::Impl {
  ServiceOptions options;
  store::Store& store;
  std::unique_ptr<spool::MessageSpool> spool;
  std::unique_ptr<dns::Resolver> resolver;
  std::unique_ptr<DeliveryEngine> engine;
  std::unique_ptr<events::Outbox> outbox;
  std::unique_ptr<events::Dispatcher> dispatcher;
  std::unique_ptr<Publisher> publisher;
  std::unique_ptr<FeedbackLoop> feedback;
  std::shared_ptr<spdlog::logger> log = logger("service");

  SendRate rate;
  TtlCache<std::optional<store::Identity>> identities;
  TtlCache<std::optional<store::ConfigurationSet>> sets;
  struct SignerEntry {
    bool identity_gone = false;
    std::shared_ptr<const dkim::DkimSigner> signer;
  };
  TtlCache<SignerEntry> signers;

  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<PendingGroup*> queue;
  bool stopping = false;
  std::thread committer;

  Impl(ServiceOptions o, store::Store& s) : options(std::move(o)), store(s) {}

  std::optional<store::Identity> identity(const std::string& name) {
    return identities.get(lower(name), [&]() -> std::optional<store::Identity> {
      auto i = store.get_identity(name);
      if (!i) return std::nullopt;
      return *i;
    });
  }
  std::optional<store::ConfigurationSet> configuration_set(const std::string& name) {
    return sets.get(name, [&]() -> std::optional<store::ConfigurationSet> {
      auto c = store.get_configuration_set(name);
      if (!c) return std::nullopt;
      return *c;
    });
  }
  // The identity that lets `address` send: the address itself, its domain, or a parent
  // domain (SES: a verified domain covers its subdomains). A domain identity comes first: it
  // holds the DKIM key.
  std::optional<store::Identity> sender_identity(const std::string& address) {
    auto at = address.rfind('@');
    if (at == std::string::npos) return std::nullopt;
    std::string domain = lower(address.substr(at + 1));
    if (auto d = identity(domain)) return d;
    if (auto a = identity(address)) return a;
    for (auto dot = domain.find('.'); dot != std::string::npos; dot = domain.find('.')) {
      domain = domain.substr(dot + 1);
      if (domain.find('.') == std::string::npos) break;  // never a top-level domain alone
      if (auto d = identity(domain)) return d;
    }
    return std::nullopt;
  }
  Result<std::shared_ptr<const dkim::DkimSigner>> signer(const std::string& identity_name);
  MessagePolicy policy(const std::string& set_name);
  // Whether the address is suppressed now for the reasons in force for the set.
  bool suppressed_now(const std::string& email, const std::string& set_name);
  void commit_loop();
};

Result<std::shared_ptr<const dkim::DkimSigner>> Service::Impl::signer(
    const std::string& identity_name) {
  SignerEntry e = signers.get(lower(identity_name), [&]() -> SignerEntry {
    auto id = identity(identity_name);
    if (!id) return {true, nullptr};
    if (!id->dkim_signing_enabled || id->dkim_private_key_pem.empty()) return {};
    auto key = dkim::DkimKey::from_pem(id->dkim_private_key_pem);
    if (!key) {
      log->warn("identity {}: its DKIM key is not usable: {}", id->name, key.status().message());
      return {};
    }
    dkim::SignerOptions so;
    std::string domain = id->name.substr(id->name.rfind('@') + 1);
    so.domain = lower(domain);
    so.selector = id->dkim_selector;
    auto s = dkim::DkimSigner::create(so, *key);
    if (!s) {
      log->warn("identity {}: cannot sign: {}", id->name, s.status().message());
      return {};
    }
    return {false, std::make_shared<const dkim::DkimSigner>(std::move(*s))};
  });
  if (e.identity_gone) {
    return Status::not_found("the identity " + identity_name +
                             " was deleted after the message was accepted; not sent unsigned");
  }
  return e.signer;
}

bool Service::Impl::suppressed_now(const std::string& email, const std::string& set_name) {
  auto entry = store.get_suppressed(email);
  if (!entry) return false;  // not listed; a store failure leaves acceptance's decision
  auto account = store.account();
  if (!account) return false;
  std::optional<store::ConfigurationSet> set;
  if (!set_name.empty()) set = configuration_set(set_name);
  auto reasons = effective_suppressed_reasons(*account, set);
  return std::find(reasons.begin(), reasons.end(), entry->reason) != reasons.end();
}

MessagePolicy Service::Impl::policy(const std::string& set_name) {
  MessagePolicy p;
  if (set_name.empty()) return p;
  auto set = configuration_set(set_name);
  if (!set || set->delivery_options.empty()) return p;
  auto j = nlohmann::json::parse(set->delivery_options, nullptr, false);
  if (j.is_object() && j.value("TlsPolicy", "") == "REQUIRE") p.require_tls = true;
  return p;
}

void Service::Impl::commit_loop() {
  while (true) {
    std::deque<PendingGroup*> groups;
    {
      std::unique_lock<std::mutex> lock(queue_mu);
      queue_cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty() && stopping) return;
      groups.swap(queue);
    }
    std::vector<spool::NewMessage> all;
    uint64_t recipients = 0;
    for (auto* g : groups) {
      recipients += g->recipients;
      for (auto& m : g->messages) all.push_back(std::move(m));
    }
    // Send events go to the outbox before the messages reach the spool, where delivery can
    // take them: a message's Delivery event never comes before its Send.
    std::vector<FeedbackLoop::Accepted> accepted;
    accepted.reserve(all.size());
    for (const auto& msg : all) {
      FeedbackLoop::Accepted a{msg.message_id, msg.configuration_set, msg.mail_json, 0, {}};
      for (const auto& r : msg.recipients) {
        if (r.suppressed) {
          a.suppressed.push_back(r.email);
        } else {
          ++a.recipients;
        }
      }
      accepted.push_back(std::move(a));
    }
    feedback->publish_accepted(accepted);
    int64_t now = wall_ms();
    Status s = spool->accept(all, now);
    if (s && recipients) {
      if (Status q = store.record_sent(now, recipients); !q)
        log->warn("quota counter not updated: {}", q.message());
    }
    if (!s) {
      log->error("spool: could not accept {} messages: {} (their Send events were published)",
                 all.size(), s.message());
    }
    if (s) {
      for (const auto& msg : all) {
        for (const auto& r : msg.recipients) {
          if (r.suppressed)
            engine->record_suppressed(msg.message_id, r.email, msg.configuration_set);
        }
      }
      feedback->count_accepted(accepted);
    }
    for (auto* g : groups) g->done.set_value(s);
    if (s) engine->wake();
  }
}

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Service::~Service() { stop(); }

Result<std::unique_ptr<Service>> Service::start(ServiceOptions options, store::Store& store) {
  auto impl = std::make_unique<Impl>(std::move(options), store);
  auto spool = spool::MessageSpool::open(impl->options.spool_path);
  if (!spool) return spool.status();
  impl->spool = std::move(*spool);
  impl->resolver = std::make_unique<dns::Resolver>(impl->options.resolver);
  Impl* m = impl.get();
  auto outbox = events::Outbox::open(impl->options.outbox_path);
  if (!outbox) return outbox.status();
  impl->outbox = std::move(*outbox);
  events::DispatcherOptions dispatch = impl->options.dispatcher;
  dispatch.destination_exists = [m](const std::string& id) {
    return m->publisher->destination_exists(id);
  };
  impl->dispatcher = std::make_unique<events::Dispatcher>(*impl->outbox, dispatch);
  impl->publisher = std::make_unique<Publisher>(store, *impl->outbox, impl->options.events_dir,
                                                [m] { m->dispatcher->wake(); });
  FeedbackOptions fo = impl->options.feedback;
  fo.reporting_mta = impl->options.delivery.ehlo_name;
  fo.max_age = impl->options.delivery.max_age;
  fo.on_paused = [m](const std::string& scope) {
    if (!scope.empty()) m->sets.erase(scope);
  };
  impl->feedback = std::make_unique<FeedbackLoop>(fo, store, *impl->spool, *impl->publisher);
  DeliveryOptions delivery = impl->options.delivery;
  delivery.verp_domain = fo.bounce_domain;
  delivery.verp_key = fo.verp_key;
  impl->engine = std::make_unique<DeliveryEngine>(
      delivery, *impl->spool, *impl->resolver,
      [m](const std::string& identity) { return m->signer(identity); },
      [m](const std::string& set) { return m->policy(set); },
      [m](const std::vector<Attempt>& attempts) { m->feedback->on_attempts(attempts); });
  impl->engine->set_suppression_check([m](const std::string& email, const std::string& set) {
    return m->suppressed_now(email, set);
  });
  if (Status s = impl->dispatcher->start(); !s) return s;
  if (Status s = impl->engine->start(); !s) return s;
  impl->committer = std::thread([m] { m->commit_loop(); });
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

void Service::stop() {
  if (!impl_ || !impl_->committer.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(impl_->queue_mu);
    impl_->stopping = true;
  }
  impl_->queue_cv.notify_all();
  impl_->committer.join();
  impl_->engine->stop();
  impl_->dispatcher->stop();
}

const DeliveryStats& Service::delivery_stats() const { return impl_->engine->stats(); }

bool Service::may_send_as(const std::string& address) {
  return impl_->sender_identity(address).has_value();
}
spool::MessageSpool& Service::spool() { return *impl_->spool; }
FeedbackLoop& Service::feedback() { return *impl_->feedback; }

void Service::rendering_failed(const RenderingFailure& f) {
  Impl& m = *impl_;
  std::string set = f.configuration_set;
  std::optional<store::Identity> identity;
  if (auto from = mail::parse_address(f.from)) identity = m.sender_identity(from->address());
  if (set.empty() && identity) set = identity->configuration_set;
  if (!m.publisher->wants(set, events::EventType::kRenderingFailure)) return;
  // The mail object of a message that was never built: the envelope and tags, no headers.
  events::MailInfo info;
  info.message_id = new_id();
  info.timestamp_ms = wall_ms();
  info.source = f.from;
  info.sending_account_id = "000000000000";
  info.destination = f.recipients;
  info.common_headers.from = {f.from};
  info.tags["ses:configuration-set"] = {set};
  if (identity) {
    info.source_arn =
        "arn:aws:ses:" + m.options.region + ":000000000000:identity/" + identity->name;
    info.tags["ses:from-domain"] = {identity->name.substr(identity->name.rfind('@') + 1)};
  }
  for (const auto& [k, v] : f.tags) info.tags[k].push_back(v);
  events::RenderingFailureDetail detail{f.template_name, f.error};
  auto json = events::make_event(events::mail_json(info), detail);
  if (!json) return;
  PendingEvent e{set, info.message_id, events::EventType::kRenderingFailure, std::move(*json)};
  if (Status s = m.publisher->publish({e}); !s)
    m.log->warn("rendering failure event not stored: {}", s.message());
}

std::vector<SubmitResult> Service::submit(std::vector<OutboundMessage> messages) {
  Impl& m = *impl_;
  std::vector<SubmitResult> results(messages.size());
  auto account = m.store.account();
  if (!account) {
    for (auto& r : results) {
      r.refusal = Refusal::kTemporary;
      r.message = "the account settings cannot be read: " + account.status().message();
    }
    return results;
  }

  PendingGroup group;
  std::vector<size_t> accepted;  // indexes into results
  std::vector<std::string> all_recipients;
  for (const auto& msg : messages) {
    for (const auto& r : msg.recipients) all_recipients.push_back(r);
  }
  // Which recipients are on the account suppression list, and for what reason (an entry counts
  // only for the reasons the account, or the message's configuration set, suppresses).
  std::vector<std::string> suppressed_for(all_recipients.size());
  if (!all_recipients.empty()) {
    auto listed = m.store.are_suppressed(all_recipients);
    if (listed) {
      for (size_t k = 0; k < listed->size(); ++k) {
        if (!(*listed)[k]) continue;
        auto entry = m.store.get_suppressed(all_recipients[k]);
        suppressed_for[k] = entry ? entry->reason : "BOUNCE";
      }
    }
  }
  size_t rcpt_index = 0;
  uint64_t sent_so_far = 0;
  bool quota_read = false;
  for (size_t i = 0; i < messages.size(); ++i) {
    OutboundMessage& msg = messages[i];
    SubmitResult& res = results[i];
    size_t first_rcpt = rcpt_index;
    rcpt_index += msg.recipients.size();

    if (!account->sending_enabled) {
      std::string why = "Sending is paused for this account.";
      if (!account->sending_paused_reason.empty())
        why += " Reason: " + account->sending_paused_reason + ".";
      res = {Refusal::kAccountPaused, why, "", {}};
      continue;
    }
    if (msg.recipients.empty()) {
      res = {Refusal::kInvalidParameter, "The message has no recipients.", "", {}};
      continue;
    }
    if (msg.recipients.size() > 50) {
      res = {Refusal::kInvalidParameter,
             "A message may have at most 50 recipients (To, Cc and Bcc together).",
             "",
             {}};
      continue;
    }
    auto from = mail::parse_address(msg.from);
    if (!from) {
      res = {Refusal::kInvalidParameter,
             "The From address '" + msg.from + "' is not valid: " + from.status().message(),
             "",
             {}};
      continue;
    }
    auto identity = m.sender_identity(from->address());
    if (!identity) {
      res = {Refusal::kMessageRejected,
             "Email address is not verified. The following identities failed the check: " +
                 from->address(),
             "",
             {}};
      continue;
    }
    // The envelope sender (FeedbackForwardingEmailAddress, MAIL FROM) and a Sender field must be
    // verified too (SES checks From, Sender, Return-Path): bounces go there, readers see it.
    std::string unverified;
    for (const std::string* other : {&msg.envelope_from, &msg.sender}) {
      if (!other->empty() && !m.sender_identity(*other)) unverified = *other;
    }
    if (!unverified.empty()) {
      res = {
          Refusal::kMessageRejected,
          "Email address is not verified. The following identities failed the check: " + unverified,
          "",
          {}};
      continue;
    }
    std::string signing_identity = identity->name;
    std::string set_name = msg.configuration_set;
    if (set_name.empty()) set_name = identity->configuration_set;
    std::vector<std::string> reasons = account->suppressed_reasons;
    if (!set_name.empty()) {
      auto set = m.configuration_set(set_name);
      if (!set) {
        res = {Refusal::kConfigurationSetNotFound,
               "Configuration set <" + set_name + "> does not exist.",
               "",
               {}};
        continue;
      }
      if (!set->sending_options.empty()) {
        auto j = nlohmann::json::parse(set->sending_options, nullptr, false);
        if (j.is_object() && j.value("SendingEnabled", true) == false) {
          res = {Refusal::kConfigurationSetPaused,
                 "Sending is paused for configuration set <" + set_name + ">.",
                 "",
                 {}};
          continue;
        }
      }
      reasons = effective_suppressed_reasons(*account, set);
    }
    if (!quota_read) {
      auto sent = m.store.sent_last_24_hours(wall_ms());
      sent_so_far = sent ? *sent : 0;
      quota_read = true;
    }
    uint64_t n = msg.recipients.size();
    if (static_cast<double>(sent_so_far + group.recipients + n) > account->max_24_hour_send) {
      res = {Refusal::kDailyQuotaExceeded, "Daily message quota exceeded.", "", {}};
      continue;
    }
    if (!m.rate.take(account->max_send_rate, static_cast<double>(n))) {
      res = {Refusal::kThrottled, "Maximum sending rate exceeded.", "", {}};
      continue;
    }

    spool::NewMessage nm;
    nm.message_id = msg.message_id.empty() ? new_id() : msg.message_id;
    nm.identity = signing_identity;
    nm.configuration_set = set_name;
    nm.envelope_from = msg.envelope_from.empty() ? from->address() : msg.envelope_from;
    // One time for the event records' mail.timestamp and the spool's acceptance (max_age and
    // DeliveryDelay's expirationTime count from it).
    nm.accepted_ms = wall_ms();
    if (!set_name.empty()) nm.mail_json = mail_json_of(msg, nm, nm.accepted_ms, m.options.region);
    nm.data = std::move(msg.data);
    for (size_t k = 0; k < msg.recipients.size(); ++k) {
      const std::string& to = msg.recipients[k];
      spool::NewMessage::Recipient r;
      r.email = to;
      auto parsed = mail::parse_address(to);
      r.domain = parsed ? parsed->domain : lower(to.substr(to.rfind('@') + 1));
      const std::string& why = suppressed_for[first_rcpt + k];
      r.suppressed =
          !why.empty() && std::find(reasons.begin(), reasons.end(), why) != reasons.end();
      if (r.suppressed) res.suppressed.push_back(to);
      nm.recipients.push_back(std::move(r));
    }
    res.message_id = nm.message_id;
    group.recipients += n;
    group.messages.push_back(std::move(nm));
    accepted.push_back(i);
  }
  if (group.messages.empty()) return results;

  auto done = group.done.get_future();
  {
    std::lock_guard<std::mutex> lock(m.queue_mu);
    if (m.stopping) {
      for (size_t i : accepted) {
        results[i] = {Refusal::kTemporary, "The service is stopping; try again.", "", {}};
      }
      return results;
    }
    m.queue.push_back(&group);
  }
  m.queue_cv.notify_one();
  Status s = done.get();
  if (!s) {
    for (size_t i : accepted) {
      results[i] = {Refusal::kTemporary, "The message could not be stored; try again.", "", {}};
    }
  } else {
    for (size_t i : accepted) {
      m.log->debug("accepted {} from {} for {} recipients", results[i].message_id,
                   messages[i].source, messages[i].recipients.size());
    }
  }
  return results;
}

}  // namespace magnetic::service
