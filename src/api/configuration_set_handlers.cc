// Configuration sets: Create/Get/List/Delete and the Put...Options routes.
//
// Each option group is stored as the JSON object of its SES shape (store::ConfigurationSet),
// holding the members the client gave, checked; the queue and the submitter read them from
// there. Get fills in SES's defaults for what was never set: TlsPolicy OPTIONAL, sending enabled,
// reputation metrics off.
#include "api/content.h"
#include "api/handler.h"

namespace magnetic::api {

bool check_ses_name(Call& c, const std::string& name, const std::string& field) {
  bool ok =
      !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-';
      });
  if (!ok) {
    c.fail(field + " must be 1 to 64 ASCII letters, digits, '_' and '-'; got '" + name + "'.");
  }
  return ok;
}

namespace {

// When absent_is_false, a missing boolean is written as false (the Put... routes, as SES);
// otherwise it is left out and Get shows the default.
nlohmann::json read_delivery(JsonObject& o) {
  nlohmann::json g = nlohmann::json::object();
  if (auto v = o.enumeration("TlsPolicy", {"REQUIRE", "OPTIONAL"})) g["TlsPolicy"] = *v;
  if (auto v = o.string("SendingPoolName", Need::kOptional, 1, 64)) g["SendingPoolName"] = *v;
  if (auto v = o.integer("MaxDeliverySeconds", Need::kOptional, 300, 50400)) {
    g["MaxDeliverySeconds"] = *v;
  }
  return g;
}

nlohmann::json read_reputation(JsonObject& o, bool absent_is_false) {
  nlohmann::json g = nlohmann::json::object();
  if (auto v = o.boolean("ReputationMetricsEnabled")) {
    g["ReputationMetricsEnabled"] = *v;
  } else if (absent_is_false) {
    g["ReputationMetricsEnabled"] = false;
  }
  if (auto v = o.timestamp_ms("LastFreshStart")) g["LastFreshStart"] = epoch_seconds(*v);
  return g;
}

nlohmann::json read_sending(JsonObject& o, bool absent_is_false) {
  nlohmann::json g = nlohmann::json::object();
  if (auto v = o.boolean("SendingEnabled")) {
    g["SendingEnabled"] = *v;
  } else if (absent_is_false) {
    g["SendingEnabled"] = false;
  }
  return g;
}

nlohmann::json read_suppression(JsonObject& o) {
  nlohmann::json g = nlohmann::json::object();
  if (auto list = o.array("SuppressedReasons")) {
    if (auto reasons = list->strings()) {
      nlohmann::json out = nlohmann::json::array();
      for (size_t i = 0; i < reasons->size(); ++i) {
        const std::string& r = (*reasons)[i];
        if (r != "BOUNCE" && r != "COMPLAINT") {
          o.state()->fail(list->item_path(i) + " must be one of BOUNCE, COMPLAINT; got '" + r +
                          "'.");
        } else if (std::find(out.begin(), out.end(), r) == out.end()) {
          out.push_back(r);
        }
      }
      g["SuppressedReasons"] = out;
    }
  } else {
    g["SuppressedReasons"] = nlohmann::json::array();
  }
  if (auto scope = o.enumeration("SuppressionScope", {"ACCOUNT", "TENANT"})) {
    if (*scope == "TENANT") {
      o.state()->fail(o.field("SuppressionScope") +
                      " TENANT is not supported by this service (it has no tenants).");
    }
    g["SuppressionScope"] = *scope;
  }
  return g;
}

nlohmann::json read_tracking(JsonObject& o, Need domain_need) {
  nlohmann::json g = nlohmann::json::object();
  if (auto v = o.string("CustomRedirectDomain", domain_need, 1, 253)) {
    Result<mail::Mailbox> m = mail::parse_address("postmaster@" + *v);
    if (!m || m->domain.front() == '[') {
      o.state()->fail(o.field("CustomRedirectDomain") + " is not a domain name; got '" + *v + "'.");
    }
    g["CustomRedirectDomain"] = m ? m->domain : *v;
  }
  if (auto v = o.enumeration("HttpsPolicy", {"REQUIRE", "REQUIRE_OPEN_ONLY", "OPTIONAL"})) {
    g["HttpsPolicy"] = *v;
  }
  return g;
}

nlohmann::json read_tags(JsonObject& o) {
  nlohmann::json tags = nlohmann::json::array();
  std::optional<JsonArray> list = o.array("Tags", Need::kOptional, 0, 50);
  if (!list) return tags;
  for (size_t i = 0; i < list->size(); ++i) {
    std::optional<JsonObject> t = list->object(i);
    if (!t) break;
    std::optional<std::string> key = t->string("Key", Need::kRequired, 1, 128);
    std::optional<std::string> value = t->string("Value", Need::kRequired, 0, 256);
    t->finish();
    if (!t->ok()) break;
    tags.push_back({{"Key", *key}, {"Value", *value}});
  }
  return tags;
}

std::string text(const nlohmann::json& group) { return group.dump(); }

// A stored group back as JSON; text that is not an object (written by hand, or damaged) reads as
// an unset group rather than failing the request.
nlohmann::json parse_group(const std::string& stored) {
  if (stored.empty()) return nlohmann::json::object();
  nlohmann::json j = nlohmann::json::parse(stored, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

nlohmann::json parse_tags(const std::string& stored) {
  if (stored.empty()) return nlohmann::json::array();
  nlohmann::json j = nlohmann::json::parse(stored, nullptr, false);
  return j.is_array() ? j : nlohmann::json::array();
}

ApiError set_not_found(const std::string& name) {
  return not_found("Configuration set " + name + " does not exist.");
}

// Read, change one group, write back: the Put...Options routes.
template <typename Change>
Reply update_group(Services& s, Call& c, Change change) {
  if (c.error()) return *c.error();
  const std::string& name = c.labels[0];
  Result<store::ConfigurationSet> set = s.store.get_configuration_set(name);
  if (!set) {
    if (set.status().code() == StatusCode::kNotFound) return set_not_found(name);
    return from_status(set.status());
  }
  change(*set);
  if (Status st = s.store.update_configuration_set(*set); !st) {
    if (st.code() == StatusCode::kNotFound) return set_not_found(name);
    return from_status(st);
  }
  return nlohmann::json::object();
}

}  // namespace

Reply create_configuration_set(Services& s, Call& c) {
  store::ConfigurationSet set;
  if (auto name = c.body.string("ConfigurationSetName", Need::kRequired)) {
    check_ses_name(c, *name, "ConfigurationSetName");
    set.name = *name;
  }
  if (auto o = c.body.object("DeliveryOptions")) {
    set.delivery_options = text(read_delivery(*o));
    o->finish();
  }
  if (auto o = c.body.object("ReputationOptions")) {
    set.reputation_options = text(read_reputation(*o, false));
    o->finish();
  }
  if (auto o = c.body.object("SendingOptions")) {
    set.sending_options = text(read_sending(*o, false));
    o->finish();
  }
  if (auto o = c.body.object("SuppressionOptions")) {
    set.suppression_options = text(read_suppression(*o));
    o->finish({"ValidationOptions"});
  }
  if (auto o = c.body.object("TrackingOptions")) {
    set.tracking_options = text(read_tracking(*o, Need::kRequired));
    o->finish();
  }
  nlohmann::json tags = read_tags(c.body);
  if (!tags.empty()) set.tags = text(tags);
  c.body.finish({"VdmOptions", "ArchivingOptions"});
  if (c.error()) return *c.error();

  set.created_at = rfc3339(c.now);
  if (Status st = s.store.create_configuration_set(set); !st) {
    if (st.code() == StatusCode::kAlreadyExists) {
      return already_exists("Configuration set " + set.name + " already exists.");
    }
    return from_status(st);
  }
  return nlohmann::json::object();
}

Reply get_configuration_set(Services& s, Call& c) {
  c.finish_query();
  if (c.error()) return *c.error();
  const std::string& name = c.labels[0];
  Result<store::ConfigurationSet> set = s.store.get_configuration_set(name);
  if (!set) {
    if (set.status().code() == StatusCode::kNotFound) return set_not_found(name);
    return from_status(set.status());
  }
  nlohmann::json delivery = parse_group(set->delivery_options);
  if (!delivery.contains("TlsPolicy")) delivery["TlsPolicy"] = "OPTIONAL";
  nlohmann::json reputation = parse_group(set->reputation_options);
  if (!reputation.contains("ReputationMetricsEnabled")) {
    reputation["ReputationMetricsEnabled"] = false;
  }
  nlohmann::json sending = parse_group(set->sending_options);
  if (!sending.contains("SendingEnabled")) sending["SendingEnabled"] = true;
  nlohmann::json tags = parse_tags(set->tags);
  nlohmann::json out = {{"ConfigurationSetName", set->name},
                        {"DeliveryOptions", delivery},
                        {"ReputationOptions", reputation},
                        {"SendingOptions", sending},
                        {"Tags", tags}};
  if (!set->suppression_options.empty()) {
    out["SuppressionOptions"] = parse_group(set->suppression_options);
  }
  if (!set->tracking_options.empty()) out["TrackingOptions"] = parse_group(set->tracking_options);
  return out;
}

namespace {

Reply set_listing(Services& s, const store::Page& page, const std::string& contains) {
  auto listing = filtered_listing<store::ConfigurationSet>(
      page, [&](const store::Page& p) { return s.store.list_configuration_sets(p); },
      [&](const store::ConfigurationSet& set) {
        return contains.empty() || set.name.find(contains) != std::string::npos;
      });
  if (!listing) {
    if (listing.status().code() == StatusCode::kInvalidArgument) {
      return bad_request("NextToken is not a token this service returned.");
    }
    return from_status(listing.status());
  }
  nlohmann::json names = nlohmann::json::array();
  for (const store::ConfigurationSet& set : listing->items) names.push_back(set.name);
  nlohmann::json out = {{"ConfigurationSets", names}};
  if (!listing->next_token.empty()) out["NextToken"] = listing->next_token;
  return out;
}

}  // namespace

Reply list_configuration_sets(Services& s, Call& c) {
  store::Page page = read_page(c, 100, 1000);
  c.finish_query();
  if (c.error()) return *c.error();
  return set_listing(s, page, "");
}

// The POST form of newer SES v2 models, with Filter CONFIGURATION_SET_NAME_CONTAINS.
Reply list_configuration_sets_post(Services& s, Call& c) {
  store::Page page = read_body_page(c, 100, 1000);
  std::string contains;
  if (auto f = c.body.object("Filter")) {
    contains = f->string("CONFIGURATION_SET_NAME_CONTAINS").value_or("");
    f->finish();
  }
  c.body.finish();
  if (c.error()) return *c.error();
  return set_listing(s, page, contains);
}

Reply delete_configuration_set(Services& s, Call& c) {
  c.finish_query();
  if (c.error()) return *c.error();
  if (Status st = s.store.delete_configuration_set(c.labels[0]); !st) {
    if (st.code() == StatusCode::kNotFound) return set_not_found(c.labels[0]);
    return from_status(st);
  }
  return nlohmann::json::object();
}

Reply put_configuration_set_delivery_options(Services& s, Call& c) {
  nlohmann::json g = read_delivery(c.body);
  c.body.finish();
  return update_group(s, c, [&](store::ConfigurationSet& set) { set.delivery_options = text(g); });
}

Reply put_configuration_set_reputation_options(Services& s, Call& c) {
  nlohmann::json g = read_reputation(c.body, true);
  c.body.finish();
  return update_group(s, c,
                      [&](store::ConfigurationSet& set) { set.reputation_options = text(g); });
}

// Resuming sending is a fresh start for the reputation guard: ReputationOptions.LastFreshStart
// becomes now (SES's field for it), and the guard counts bounces and complaints of the set only
// from then on, so that what paused it does not pause it again at once.
Reply put_configuration_set_sending_options(Services& s, Call& c) {
  nlohmann::json g = read_sending(c.body, true);
  c.body.finish();
  bool resumed = g.value("SendingEnabled", false);
  double now = epoch_seconds(c.now_ms());
  return update_group(s, c, [&](store::ConfigurationSet& set) {
    set.sending_options = text(g);
    if (resumed) {
      // A failure leaves old counts in the window: the guard may pause again, never wrongly
      // resume.
      (void)s.store.clear_reputation(set.name);
      nlohmann::json reputation = parse_group(set.reputation_options);
      reputation["LastFreshStart"] = now;
      set.reputation_options = text(reputation);
    }
  });
}

Reply put_configuration_set_suppression_options(Services& s, Call& c) {
  nlohmann::json g = read_suppression(c.body);
  c.body.finish({"ValidationOptions"});
  return update_group(s, c,
                      [&](store::ConfigurationSet& set) { set.suppression_options = text(g); });
}

Reply put_configuration_set_tracking_options(Services& s, Call& c) {
  // Without CustomRedirectDomain the group is removed: tracking links use the service's host.
  nlohmann::json g = read_tracking(c.body, Need::kOptional);
  c.body.finish();
  return update_group(s, c, [&](store::ConfigurationSet& set) {
    set.tracking_options = g.contains("CustomRedirectDomain") ? text(g) : "";
  });
}

}  // namespace magnetic::api
