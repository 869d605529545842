#include "api/ses_api.h"

#include <cctype>

#include "api/handler.h"
#include "api/sigv4.h"
#include "base/ids.h"
#include "base/log.h"

namespace magnetic::api {
namespace {

struct Route {
  const char* method;
  const char* pattern;  // segments after /v2/email; "{}" is a label
  Reply (*handler)(Services&, Call&);
  const char* operation;
};

const Route kRoutes[] = {
    {"POST", "outbound-emails", send_email, "SendEmail"},
    {"POST", "outbound-bulk-emails", send_bulk_email, "SendBulkEmail"},

    {"POST", "templates", create_email_template, "CreateEmailTemplate"},
    {"GET", "templates", list_email_templates, "ListEmailTemplates"},
    {"GET", "templates/{}", get_email_template, "GetEmailTemplate"},
    {"PUT", "templates/{}", update_email_template, "UpdateEmailTemplate"},
    {"DELETE", "templates/{}", delete_email_template, "DeleteEmailTemplate"},
    {"POST", "templates/{}/render", test_render_email_template, "TestRenderEmailTemplate"},

    {"GET", "account", get_account, "GetAccount"},
    {"PUT", "account/sending", put_account_sending_attributes, "PutAccountSendingAttributes"},
    {"PUT", "account/suppression", put_account_suppression_attributes,
     "PutAccountSuppressionAttributes"},

    {"POST", "identities", create_email_identity, "CreateEmailIdentity"},
    {"GET", "identities", list_email_identities, "ListEmailIdentities"},
    {"POST", "list-identities", list_email_identities_post, "ListEmailIdentities"},
    {"GET", "identities/{}", get_email_identity, "GetEmailIdentity"},
    {"DELETE", "identities/{}", delete_email_identity, "DeleteEmailIdentity"},

    {"POST", "configuration-sets", create_configuration_set, "CreateConfigurationSet"},
    {"GET", "configuration-sets", list_configuration_sets, "ListConfigurationSets"},
    {"POST", "list-configuration-sets", list_configuration_sets_post, "ListConfigurationSets"},
    {"GET", "configuration-sets/{}", get_configuration_set, "GetConfigurationSet"},
    {"DELETE", "configuration-sets/{}", delete_configuration_set, "DeleteConfigurationSet"},
    {"PUT", "configuration-sets/{}/delivery-options", put_configuration_set_delivery_options,
     "PutConfigurationSetDeliveryOptions"},
    {"PUT", "configuration-sets/{}/reputation-options", put_configuration_set_reputation_options,
     "PutConfigurationSetReputationOptions"},
    {"PUT", "configuration-sets/{}/sending", put_configuration_set_sending_options,
     "PutConfigurationSetSendingOptions"},
    {"PUT", "configuration-sets/{}/suppression-options", put_configuration_set_suppression_options,
     "PutConfigurationSetSuppressionOptions"},
    {"PUT", "configuration-sets/{}/tracking-options", put_configuration_set_tracking_options,
     "PutConfigurationSetTrackingOptions"},
    {"POST", "configuration-sets/{}/event-destinations", create_configuration_set_event_destination,
     "CreateConfigurationSetEventDestination"},
    {"GET", "configuration-sets/{}/event-destinations", get_configuration_set_event_destinations,
     "GetConfigurationSetEventDestinations"},
    {"PUT", "configuration-sets/{}/event-destinations/{}",
     update_configuration_set_event_destination, "UpdateConfigurationSetEventDestination"},
    {"DELETE", "configuration-sets/{}/event-destinations/{}",
     delete_configuration_set_event_destination, "DeleteConfigurationSetEventDestination"},

    {"PUT", "suppression/addresses", put_suppressed_destination, "PutSuppressedDestination"},
    {"GET", "suppression/addresses", list_suppressed_destinations, "ListSuppressedDestinations"},
    {"GET", "suppression/addresses/{}", get_suppressed_destination, "GetSuppressedDestination"},
    {"DELETE", "suppression/addresses/{}", delete_suppressed_destination,
     "DeleteSuppressedDestination"},
};

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    out.emplace_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

// The raw path's segments after "/v2/email/", still encoded; nullopt when not under it.
std::optional<std::vector<std::string>> operation_segments(std::string_view path) {
  constexpr std::string_view kPrefix = "/v2/email/";
  if (!path.starts_with(kPrefix)) return std::nullopt;
  std::string_view rest = path.substr(kPrefix.size());
  if (rest.ends_with('/')) rest.remove_suffix(1);  // a trailing slash is not a new segment
  if (rest.empty()) return std::nullopt;
  return split(rest, '/');
}

// Matches raw segments against a pattern; labels get the decoded values.
bool matches(const Route& route, const std::vector<std::string>& segments,
             std::vector<std::string>& labels) {
  std::vector<std::string> pattern = split(route.pattern, '/');
  if (pattern.size() != segments.size()) return false;
  std::vector<std::string> found;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == "{}") {
      if (segments[i].empty()) return false;
      found.push_back(percent_decode(segments[i]));
    } else if (pattern[i] != segments[i]) {
      return false;
    }
  }
  labels = std::move(found);
  return true;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  if (query.empty()) return out;
  for (const std::string& part : split(query, '&')) {
    if (part.empty()) continue;
    size_t eq = part.find('=');
    out.emplace_back(percent_decode(part.substr(0, eq)),
                     eq == std::string::npos ? "" : percent_decode(part.substr(eq + 1)));
  }
  return out;
}

HttpResponse json_response(const nlohmann::json& body, const std::string& request_id) {
  HttpResponse r;
  r.status = 200;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("x-amzn-RequestId", request_id);
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

}  // namespace

SesApi::SesApi(store::Store& store, service::Submitter& submitter, ApiOptions options)
    : store_(store), submitter_(submitter), options_(std::move(options)) {}

std::chrono::system_clock::time_point SesApi::now() const {
  return options_.clock ? options_.clock() : std::chrono::system_clock::now();
}

HttpResponse SesApi::handle(const HttpRequest& request) const {
  std::string request_id = new_id();
  auto log = logger("api");
  auto when = now();

  // Who is asking.
  auto identity = verify_sigv4(
      request,
      [this](const std::string& id) -> Result<std::string> {
        Result<store::AccessKey> key = store_.find_key(id);
        if (!key) return key.status();
        return key->secret;
      },
      when, options_.max_clock_skew);
  if (const ApiError* e = std::get_if<ApiError>(&identity)) {
    log->info("{} {} {}: {} {} ({})", request_id, request.method, request.path, e->status, e->type,
              request.remote);
    return error_response(*e, request_id);
  }
  const SigV4Identity& who = std::get<SigV4Identity>(identity);

  // Which operation.
  const Route* route = nullptr;
  std::vector<std::string> labels;
  std::vector<std::string> allowed;
  if (auto segments = operation_segments(request.path)) {
    for (const Route& r : kRoutes) {
      std::vector<std::string> found;
      if (!matches(r, *segments, found)) continue;
      if (request.method == r.method) {
        route = &r;
        labels = std::move(found);
        break;
      }
      allowed.emplace_back(r.method);
    }
  }
  if (!route) {
    ApiError e;
    if (allowed.empty()) {
      e = {404, "UnknownOperationException",
           request.method + " " + request.path +
               " is not an SES v2 operation that this service implements."};
      HttpResponse r = error_response(e, request_id);
      log->info("{} {} {}: 404 ({})", request_id, request.method, request.path, who.access_key_id);
      return r;
    }
    std::string list;
    for (const std::string& m : allowed) list += (list.empty() ? "" : ", ") + m;
    e = {405, "MethodNotAllowedException",
         "Method " + request.method + " is not allowed on " + request.path + "; use " + list + "."};
    HttpResponse r = error_response(e, request_id);
    r.headers.emplace_back("Allow", list);
    return r;
  }

  // The body, then the operation.
  bool has_body = request.method == "POST" || request.method == "PUT";
  ParsedBody body = parse_body(has_body ? std::string_view(request.body) : std::string_view());
  if (body.error) return error_response(*body.error, request_id);
  Call call(request, std::move(labels), parse_query(request.query), &body.json, request_id, when);
  Services services{store_, submitter_, options_};
  Reply reply = route->handler(services, call);
  if (const ApiError* e = std::get_if<ApiError>(&reply)) {
    // The client's mistakes are the client's to read; the service's own failures are warned.
    log->log(e->status >= 500 ? spdlog::level::warn : spdlog::level::debug,
             "{} {} {} ({}): {} {}: {}", request_id, route->operation, request.path,
             who.access_key_id, e->status, e->type, e->message);
    return error_response(*e, request_id);
  }
  log->debug("{} {} {} ({}): 200", request_id, route->operation, request.path, who.access_key_id);
  return json_response(std::get<nlohmann::json>(reply), request_id);
}

// Call.

Call::Call(const HttpRequest& h, std::vector<std::string> l,
           std::vector<std::pair<std::string, std::string>> query, const nlohmann::json* b,
           std::string id, std::chrono::system_clock::time_point n)
    : http(h),
      labels(std::move(l)),
      body(b, "", std::make_shared<ReadState>()),
      request_id(std::move(id)),
      now(n),
      query_(std::move(query)) {}

int64_t Call::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
}

std::optional<std::string> Call::query(std::string_view name) {
  query_read_.emplace_back(name);
  std::optional<std::string> out;
  for (const auto& [n, v] : query_) {
    if (n != name) continue;
    if (out) {
      fail("The query parameter " + std::string(name) + " is given more than once.");
      return std::nullopt;
    }
    out = v;
  }
  return out;
}

std::vector<std::string> Call::query_all(std::string_view name) {
  query_read_.emplace_back(name);
  std::vector<std::string> out;
  for (const auto& [n, v] : query_) {
    if (n == name) out.push_back(v);
  }
  return out;
}

std::optional<int64_t> Call::query_integer(std::string_view name, int64_t min, int64_t max) {
  std::optional<std::string> text = query(name);
  if (!text) return std::nullopt;
  bool digits = !text->empty() && text->size() <= 18 &&
                std::all_of(text->begin(), text->end(), [](char c) { return std::isdigit(c); });
  int64_t n = digits ? std::stoll(*text) : -1;
  if (!digits || n < min || n > max) {
    fail("The query parameter " + std::string(name) + " must be an integer between " +
         std::to_string(min) + " and " + std::to_string(max) + "; got '" + *text + "'.");
    return std::nullopt;
  }
  return n;
}

std::optional<int64_t> Call::query_time_ms(std::string_view name) {
  std::optional<std::string> text = query(name);
  if (!text) return std::nullopt;
  if (std::optional<int64_t> ms = parse_iso8601_ms(*text)) return ms;
  bool number =
      !text->empty() && text->size() <= 18 &&
      std::all_of(text->begin(), text->end(), [](char c) { return std::isdigit(c) || c == '.'; }) &&
      std::count(text->begin(), text->end(), '.') <= 1 && text->front() != '.';
  if (number) return static_cast<int64_t>(std::stod(*text) * 1000);
  fail("The query parameter " + std::string(name) +
       " must be an ISO 8601 date-time (2026-01-31T12:00:00Z) or epoch seconds; got '" + *text +
       "'.");
  return std::nullopt;
}

void Call::finish_query(std::initializer_list<std::string_view> unsupported) {
  if (error()) return;
  for (const auto& [n, v] : query_) {
    if (std::find(query_read_.begin(), query_read_.end(), n) != query_read_.end()) continue;
    for (std::string_view u : unsupported) {
      if (n == u) {
        fail("The query parameter " + n + " is not supported by this service.");
        return;
      }
    }
    fail("Unknown query parameter " + n + ".");
    return;
  }
}

store::Page read_page(Call& c, size_t default_size, size_t max_size) {
  store::Page page;
  page.size = default_size;
  if (auto token = c.query("NextToken")) page.token = *token;
  if (auto size = c.query_integer("PageSize", 0, static_cast<int64_t>(max_size))) {
    if (*size > 0) page.size = static_cast<size_t>(*size);
  }
  return page;
}

store::Page read_body_page(Call& c, size_t default_size, size_t max_size) {
  store::Page page;
  page.size = default_size;
  if (auto token = c.body.string("NextToken")) page.token = *token;
  if (auto size = c.body.integer("PageSize", Need::kOptional, 0, static_cast<int64_t>(max_size))) {
    if (*size > 0) page.size = static_cast<size_t>(*size);
  }
  return page;
}

// Time.

std::optional<int64_t> parse_iso8601_ms(std::string_view s) {
  // yyyy-mm-ddThh:mm:ss[.fff...](Z|+hh:mm|-hh:mm); 't' and ' ' are taken for 'T' too.
  auto digits = [&](size_t at, size_t n) -> int {
    if (at + n > s.size()) return -1;
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ')) {
    return std::nullopt;
  }
  int y = digits(0, 4), mo = digits(5, 2), d = digits(8, 2), h = digits(11, 2), mi = digits(14, 2),
      sec = digits(17, 2);
  if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0) return std::nullopt;
  size_t at = 19;
  int64_t ms = 0;
  if (at < s.size() && s[at] == '.') {
    ++at;
    int64_t scale = 100;
    size_t start = at;
    while (at < s.size() && std::isdigit(static_cast<unsigned char>(s[at]))) {
      ms += (s[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
    if (at == start) return std::nullopt;
  }
  int64_t offset_min = 0;
  if (at < s.size() && (s[at] == 'Z' || s[at] == 'z')) {
    ++at;
  } else if (at + 6 == s.size() && (s[at] == '+' || s[at] == '-') && s[at + 3] == ':') {
    int oh = digits(at + 1, 2), om = digits(at + 4, 2);
    if (oh < 0 || om < 0) return std::nullopt;
    offset_min = (s[at] == '+' ? 1 : -1) * (oh * 60 + om);
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != s.size()) return std::nullopt;
  using namespace std::chrono;
  year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  auto t = sys_days(ymd) + hours(h) + minutes(mi) + seconds(sec) - minutes(offset_min);
  return duration_cast<milliseconds>(t.time_since_epoch()).count() + ms;
}

double epoch_seconds(int64_t ms) { return static_cast<double>(ms) / 1000.0; }

double epoch_seconds(const std::string& text) {
  std::optional<int64_t> ms = parse_iso8601_ms(text);
  return ms ? epoch_seconds(*ms) : 0;
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto secs = floor<seconds>(t);
  auto d = floor<days>(secs);
  year_month_day ymd{d};
  hh_mm_ss hms{secs - d};
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

}  // namespace magnetic::api
