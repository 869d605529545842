// The account (quota, sending switch, suppression reasons) and its suppression list.
#include <algorithm>

#include "api/content.h"
#include "api/handler.h"

namespace magnetic::api {
namespace {

std::optional<std::vector<std::string>> read_reasons(JsonObject& o, std::string_view key) {
  std::optional<JsonArray> list = o.array(key);
  if (!list) return std::nullopt;
  std::optional<std::vector<std::string>> reasons = list->strings();
  if (!reasons) return std::nullopt;
  for (size_t i = 0; i < reasons->size(); ++i) {
    const std::string& r = (*reasons)[i];
    if (r != "BOUNCE" && r != "COMPLAINT") {
      o.state()->fail(list->item_path(i) + " must be one of BOUNCE, COMPLAINT; got '" + r + "'.");
      return std::nullopt;
    }
  }
  std::sort(reasons->begin(), reasons->end());
  reasons->erase(std::unique(reasons->begin(), reasons->end()), reasons->end());
  return reasons;
}

// The address of a suppression list entry: a plain address, as SES keeps it.
std::optional<std::string> check_email(Call& c, const std::string& text, const std::string& field) {
  Result<mail::Mailbox> m = mail::parse_address(text);
  if (!m) {
    c.fail(field + " is not a valid email address ('" + text + "'): " + m.status().message());
    return std::nullopt;
  }
  return text;
}

nlohmann::json summary(const store::SuppressedDestination& d) {
  return {{"EmailAddress", d.email},
          {"Reason", d.reason},
          {"LastUpdateTime", epoch_seconds(d.last_update_ms)}};
}

}  // namespace

Reply get_account(Services& s, Call& c) {
  c.finish_query();
  if (c.error()) return *c.error();
  Result<store::Account> account = s.store.account();
  if (!account) return from_status(account.status());
  Result<uint64_t> sent = s.store.sent_last_24_hours(c.now_ms());
  if (!sent) return from_status(sent.status());
  return nlohmann::json{
      {"DedicatedIpAutoWarmupEnabled", false},
      {"EnforcementStatus", account->enforcement_status},
      {"ProductionAccessEnabled", true},
      {"SendQuota",
       {{"Max24HourSend", account->max_24_hour_send},
        {"MaxSendRate", account->max_send_rate},
        {"SentLast24Hours", static_cast<double>(*sent)}}},
      {"SendingEnabled", account->sending_enabled},
      {"SuppressionAttributes", {{"SuppressedReasons", account->suppressed_reasons}}},
  };
}

// Resuming sending (SendingEnabled true) also ends a pause by the reputation guard: the account
// is HEALTHY again, the reason is cleared, and the guard counts only from now, so that the
// bounces that paused the account do not pause it again at once.
Reply put_account_sending_attributes(Services& s, Call& c) {
  // As SES: an absent SendingEnabled is false, which pauses sending.
  bool enabled = c.body.boolean("SendingEnabled").value_or(false);
  c.body.finish();
  if (c.error()) return *c.error();
  Result<store::Account> account = s.store.account();
  if (!account) return from_status(account.status());
  account->sending_enabled = enabled;
  if (enabled) {
    account->enforcement_status = "HEALTHY";
    account->sending_paused_reason.clear();
    account->reputation_reset_ms = c.now_ms();
    // A fresh window for the guard. A failure leaves old counts in it: the guard may pause
    // again, never wrongly resume.
    (void)s.store.clear_reputation("");
  }
  if (Status st = s.store.put_account(*account); !st) return from_status(st);
  return nlohmann::json::object();
}

Reply put_account_suppression_attributes(Services& s, Call& c) {
  std::vector<std::string> reasons =
      read_reasons(c.body, "SuppressedReasons").value_or(std::vector<std::string>{});
  c.body.finish({"ValidationAttributes"});
  if (c.error()) return *c.error();
  Result<store::Account> account = s.store.account();
  if (!account) return from_status(account.status());
  account->suppressed_reasons = reasons;
  if (Status st = s.store.put_account(*account); !st) return from_status(st);
  return nlohmann::json::object();
}

Reply put_suppressed_destination(Services& s, Call& c) {
  std::optional<std::string> email = c.body.string("EmailAddress", Need::kRequired, 1, 320);
  std::optional<std::string> reason =
      c.body.enumeration("Reason", {"BOUNCE", "COMPLAINT"}, Need::kRequired);
  c.body.finish({"TenantName"});
  if (email && !c.error()) check_email(c, *email, "EmailAddress");
  if (c.error()) return *c.error();

  store::SuppressedDestination d;
  d.email = *email;
  d.reason = *reason;
  d.last_update_ms = c.now_ms();
  if (Status st = s.store.put_suppressed(d); !st) return from_status(st);
  return nlohmann::json::object();
}

Reply get_suppressed_destination(Services& s, Call& c) {
  c.finish_query({"TenantName"});
  if (c.error()) return *c.error();
  Result<store::SuppressedDestination> d = s.store.get_suppressed(c.labels[0]);
  if (!d) {
    if (d.status().code() == StatusCode::kNotFound) {
      return not_found(c.labels[0] + " is not on the suppression list.");
    }
    return from_status(d.status());
  }
  nlohmann::json entry = summary(*d);
  nlohmann::json attributes = nlohmann::json::object();
  if (!d->message_id.empty()) attributes["MessageId"] = d->message_id;
  if (!d->feedback_id.empty()) attributes["FeedbackId"] = d->feedback_id;
  if (!attributes.empty()) entry["Attributes"] = attributes;
  return nlohmann::json{{"SuppressedDestination", entry}};
}

Reply delete_suppressed_destination(Services& s, Call& c) {
  c.finish_query({"TenantName"});
  if (c.error()) return *c.error();
  if (Status st = s.store.delete_suppressed(c.labels[0]); !st) {
    if (st.code() == StatusCode::kNotFound) {
      return not_found(c.labels[0] + " is not on the suppression list.");
    }
    return from_status(st);
  }
  return nlohmann::json::object();
}

Reply list_suppressed_destinations(Services& s, Call& c) {
  std::vector<std::string> reasons = c.query_all("Reason");
  for (const std::string& r : reasons) {
    if (r != "BOUNCE" && r != "COMPLAINT") {
      c.fail("The query parameter Reason must be BOUNCE or COMPLAINT; got '" + r + "'.");
    }
  }
  int64_t start = c.query_time_ms("StartDate").value_or(0);
  int64_t end = c.query_time_ms("EndDate").value_or(0);
  store::Page page = read_page(c, 100, 1000);
  c.finish_query({"TenantName"});
  if (!c.error() && start && end && start > end) c.fail("StartDate must not be after EndDate.");
  if (c.error()) return *c.error();

  auto listing = s.store.list_suppressed(reasons, start, end, page);
  if (!listing) {
    if (listing.status().code() == StatusCode::kInvalidArgument) {
      return invalid_next_token("NextToken is not a token this service returned.");
    }
    return from_status(listing.status());
  }
  nlohmann::json items = nlohmann::json::array();
  for (const store::SuppressedDestination& d : listing->items) items.push_back(summary(d));
  nlohmann::json out = {{"SuppressedDestinationSummaries", items}};
  if (!listing->next_token.empty()) out["NextToken"] = listing->next_token;
  return out;
}

}  // namespace magnetic::api
