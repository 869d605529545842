// Event destinations of configuration sets:
// Create/Get/Update/DeleteConfigurationSetEventDestination.
//
// SES sends events to AWS services; this service has none of them, so two of SES's destination
// shapes are given a local meaning and the others are refused:
//
//   SnsDestination {TopicArn: "http://..." or "https://..."}
//     -> a webhook: each event is posted to that URL (store kind kWebhook, target the URL).
//        The URL's grammar is base/http_url.h's, the one the dispatcher reads; at most 2048
//        characters.
//   KinesisFirehoseDestination {DeliveryStreamArn: "file:NAME", IamRoleArn: anything non-empty}
//     -> a JSON-lines file <data>/events/NAME.jsonl, one event a line (store kind kFile, target
//        NAME). NAME is 1 to 64 of [A-Za-z0-9._-] and does not start with '.', so it is always a
//        plain file name inside the events folder. IamRoleArn is required by the SES model and
//        means nothing here.
//   CloudWatchDestination, EventBridgeDestination, PinpointDestination, an SNS topic ARN, a
//   Firehose stream ARN -> BadRequestException saying which forms are supported.
//
// Exactly one destination must be given. MatchingEventTypes is required, non-empty, and holds
// SES EventType names (repeats are dropped). Enabled defaults to false, as in SES. A set holds at
// most 10 destinations (SES's quota; LimitExceededException beyond). The definition is stored as
// checked, and GetConfigurationSetEventDestinations answers it in SES's EventDestination shape:
// Name, Enabled, MatchingEventTypes and the destination object as it was given.
#include <algorithm>
#include <cctype>

#include "api/handler.h"
#include "base/http_url.h"

namespace magnetic::api {
namespace {

constexpr size_t kMaxDestinationsPerSet = 10;
constexpr size_t kMaxUrlLength = 2048;

constexpr const char* kSupported =
    " This service supports two destinations: SnsDestination with an http:// or https:// URL as "
    "TopicArn (events are posted to it as a webhook), and KinesisFirehoseDestination with "
    "DeliveryStreamArn 'file:NAME' (events are appended as JSON lines to NAME.jsonl in the "
    "service's events folder).";

// SES's destination members, in the model's order.
constexpr std::string_view kDestinationTypes[] = {"KinesisFirehoseDestination",
                                                  "CloudWatchDestination", "SnsDestination",
                                                  "EventBridgeDestination", "PinpointDestination"};

bool is_file_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && name.front() != '.' &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
         });
}

// Reads an EventDestinationDefinition into d (all but the two names). Failures go to the call.
void read_definition(JsonObject& o, store::EventDestination& d) {
  nlohmann::json definition = nlohmann::json::object();
  d.enabled = o.boolean("Enabled").value_or(false);
  definition["Enabled"] = d.enabled;

  if (auto list = o.array("MatchingEventTypes", Need::kRequired, 1)) {
    for (size_t i = 0; i < list->size(); ++i) {
      std::optional<std::string> t = list->string(i);
      if (!t) return;
      if (!store::is_event_type(*t)) {
        std::string names;
        for (const std::string& n : store::event_type_names()) {
          names += (names.empty() ? "" : ", ") + n;
        }
        o.state()->fail(list->item_path(i) + " must be one of " + names + "; got '" + *t + "'.");
        return;
      }
      auto& types = d.matching_event_types;
      if (std::find(types.begin(), types.end(), *t) == types.end()) types.push_back(*t);
    }
  }
  definition["MatchingEventTypes"] = d.matching_event_types;
  if (!o.ok()) return;

  // Exactly one destination.
  std::vector<std::string_view> given;
  for (std::string_view type : kDestinationTypes) {
    if (o.has(type)) given.push_back(type);
  }
  if (given.size() != 1) {
    std::string list;
    for (std::string_view type : kDestinationTypes) {
      list += (list.empty() ? "" : ", ") + std::string(type);
    }
    std::string got = given.empty() ? "none" : std::string(given[0]);
    for (size_t i = 1; i < given.size(); ++i) got += " and " + std::string(given[i]);
    o.state()->fail(o.path() + " must have exactly one of " + list + "; got " + got + "." +
                    kSupported);
    return;
  }
  std::string_view type = given[0];

  if (type == "SnsDestination") {
    std::optional<JsonObject> sns = o.object("SnsDestination");
    if (!sns) return;
    std::optional<std::string> topic = sns->string("TopicArn", Need::kRequired, 1, kMaxUrlLength);
    sns->finish();
    if (!topic || !sns->ok()) return;
    bool looks_like_url = topic->find("://") != std::string::npos;
    if (auto url = parse_http_url(*topic); !url) {
      o.state()->fail(sns->field("TopicArn") +
                      (looks_like_url ? " is not a usable webhook URL: " + url.status().message()
                                      : std::string(" must be an http:// or https:// URL")) +
                      "; got '" + *topic + "'." + (looks_like_url ? "" : kSupported));
      return;
    }
    d.kind = store::EventDestination::Kind::kWebhook;
    d.target = *topic;
    definition["SnsDestination"] = {{"TopicArn", *topic}};
  } else if (type == "KinesisFirehoseDestination") {
    std::optional<JsonObject> firehose = o.object("KinesisFirehoseDestination");
    if (!firehose) return;
    std::optional<std::string> role = firehose->string("IamRoleArn", Need::kRequired, 1, 2048);
    std::optional<std::string> stream =
        firehose->string("DeliveryStreamArn", Need::kRequired, 1, 2048);
    firehose->finish();
    if (!role || !stream || !firehose->ok()) return;
    std::string_view name = *stream;
    if (!name.starts_with("file:") || !is_file_name(name.substr(5))) {
      o.state()->fail(firehose->field("DeliveryStreamArn") +
                      " must be 'file:NAME', NAME 1 to 64 ASCII letters, digits, '.', '_' and "
                      "'-', not starting with '.'; got '" +
                      *stream + "'." + kSupported);
      return;
    }
    d.kind = store::EventDestination::Kind::kFile;
    d.target = std::string(name.substr(5));
    definition["KinesisFirehoseDestination"] = {{"IamRoleArn", *role},
                                                {"DeliveryStreamArn", *stream}};
  } else {
    (void)o.raw(type);  // known, so finish() does not call it unknown
    o.state()->fail(o.field(type) + " is not supported by this service." + kSupported);
    return;
  }
  o.finish();
  d.definition_json = definition.dump();
}

// The destination in SES's EventDestination shape.
nlohmann::json destination_json(const store::EventDestination& d) {
  nlohmann::json out = {
      {"Name", d.name}, {"Enabled", d.enabled}, {"MatchingEventTypes", d.matching_event_types}};
  nlohmann::json definition = nlohmann::json::parse(d.definition_json, nullptr, false);
  const char* member = d.kind == store::EventDestination::Kind::kFile ? "KinesisFirehoseDestination"
                                                                      : "SnsDestination";
  if (definition.is_object() && definition.contains(member) && definition[member].is_object()) {
    out[member] = definition[member];
  } else if (d.kind == store::EventDestination::Kind::kFile) {
    // A row written without its definition (by hand, or by another program): rebuilt.
    out[member] = {{"DeliveryStreamArn", "file:" + d.target}};
  } else {
    out[member] = {{"TopicArn", d.target}};
  }
  return out;
}

ApiError set_not_found(const std::string& name) {
  return not_found("Configuration set " + name + " does not exist.");
}

// A kNotFound of update or delete names either the set or the destination; the store's message
// is its own wording, so ask which.
ApiError not_found_of(Services& s, const std::string& set, const std::string& name) {
  Result<store::ConfigurationSet> found = s.store.get_configuration_set(set);
  if (!found) {
    if (found.status().code() == StatusCode::kNotFound) return set_not_found(set);
    return from_status(found.status());
  }
  return not_found("Event destination " + name + " does not exist in configuration set " + set +
                   ".");
}

// A file destination whose file another destination of the set already writes: every event
// would be written twice. The refusal, or nullopt.
std::optional<ApiError> shared_file(const store::EventDestination& d,
                                    const std::vector<store::EventDestination>& existing) {
  if (d.kind != store::EventDestination::Kind::kFile) return std::nullopt;
  for (const auto& e : existing) {
    if (e.name != d.name && e.kind == d.kind && e.target == d.target) {
      return bad_request(
          "EventDestination.KinesisFirehoseDestination.DeliveryStreamArn 'file:" + d.target +
          "' is already written by event destination " + e.name + " of configuration set " +
          d.configuration_set + "; every event would be written twice.");
    }
  }
  return std::nullopt;
}

}  // namespace

Reply create_configuration_set_event_destination(Services& s, Call& c) {
  store::EventDestination d;
  d.configuration_set = c.labels[0];
  if (auto name = c.body.string("EventDestinationName", Need::kRequired)) {
    check_ses_name(c, *name, "EventDestinationName");
    d.name = *name;
  }
  if (auto o = c.body.object("EventDestination", Need::kRequired)) read_definition(*o, d);
  c.body.finish();
  c.finish_query();
  if (c.error()) return *c.error();

  Result<std::vector<store::EventDestination>> existing =
      s.store.list_event_destinations(d.configuration_set);
  if (!existing) {
    if (existing.status().code() == StatusCode::kNotFound)
      return set_not_found(d.configuration_set);
    return from_status(existing.status());
  }
  if (existing->size() >= kMaxDestinationsPerSet) {
    return limit_exceeded("Configuration set " + d.configuration_set + " has " +
                          std::to_string(existing->size()) +
                          " event destinations, the most it may have.");
  }
  if (auto refused = shared_file(d, *existing)) return *refused;
  if (Status st = s.store.create_event_destination(d); !st) {
    if (st.code() == StatusCode::kAlreadyExists) {
      return already_exists("Event destination " + d.name +
                            " already exists in configuration set " + d.configuration_set + ".");
    }
    if (st.code() == StatusCode::kNotFound) return set_not_found(d.configuration_set);
    return from_status(st);
  }
  return nlohmann::json::object();
}

Reply get_configuration_set_event_destinations(Services& s, Call& c) {
  c.finish_query();
  if (c.error()) return *c.error();
  const std::string& set = c.labels[0];
  Result<std::vector<store::EventDestination>> list = s.store.list_event_destinations(set);
  if (!list) {
    if (list.status().code() == StatusCode::kNotFound) return set_not_found(set);
    return from_status(list.status());
  }
  nlohmann::json items = nlohmann::json::array();
  for (const store::EventDestination& d : *list) items.push_back(destination_json(d));
  return nlohmann::json{{"EventDestinations", items}};
}

Reply update_configuration_set_event_destination(Services& s, Call& c) {
  store::EventDestination d;
  d.configuration_set = c.labels[0];
  d.name = c.labels[1];
  check_ses_name(c, d.name, "EventDestinationName");
  if (auto o = c.body.object("EventDestination", Need::kRequired)) read_definition(*o, d);
  c.body.finish();
  c.finish_query();
  if (c.error()) return *c.error();
  if (auto existing = s.store.list_event_destinations(d.configuration_set); existing) {
    if (auto refused = shared_file(d, *existing)) return *refused;
  }
  if (Status st = s.store.update_event_destination(d); !st) {
    if (st.code() == StatusCode::kNotFound) return not_found_of(s, d.configuration_set, d.name);
    return from_status(st);
  }
  return nlohmann::json::object();
}

Reply delete_configuration_set_event_destination(Services& s, Call& c) {
  const std::string& set = c.labels[0];
  const std::string& name = c.labels[1];
  check_ses_name(c, name, "EventDestinationName");
  c.finish_query();
  if (c.error()) return *c.error();
  if (Status st = s.store.delete_event_destination(set, name); !st) {
    if (st.code() == StatusCode::kNotFound) return not_found_of(s, set, name);
    return from_status(st);
  }
  return nlohmann::json::object();
}

}  // namespace magnetic::api
