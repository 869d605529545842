// magnetic: the command line. Each subcommand's options map onto its settings struct; the
// work itself is done by the modules.
#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>

#include "base/duration.h"
#include "base/log.h"
#include "cli/commands.h"
#include "cli/feedback_command.h"
#include "events/record.h"
#include "smtp/sink_main.h"

namespace {

// CLI11 validators for the value kinds the commands take.
std::string check_rate(const std::string& v) {
  auto r = magnetic::parse_rate(v);
  return r ? std::string() : r.status().message();
}
std::string check_duration(const std::string& v) {
  auto d = magnetic::parse_duration(v);
  return d ? std::string() : d.status().message();
}

// A region name as SES spells them ("us-east-1"): it goes into the SMTP password, so a typo
// would make a password that never works.
std::string check_region(const std::string& v) {
  bool ok = !v.empty() && v.size() <= 64 && v.front() != '-' && v.back() != '-';
  for (char c : v) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  return ok ? std::string() : "region must be lower-case letters, digits and '-', like us-east-1";
}

// An SES API event type name, as `events tail --type` takes it.
std::string check_event_type(const std::string& v) {
  auto t = magnetic::events::event_type_from_api_name(v);
  return t ? std::string() : t.status().message();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace magnetic;
  CLI::App app{"magnetic: a self-hosted bulk email sending service"};
  app.require_subcommand(1);
  app.fallthrough();  // --log-level may come after the subcommand too
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn, error or off")
      ->capture_default_str();

  // send
  campaign::SendSettings send;
  std::string rate, max_age, retry_initial, slow_backoff, suspend_for, tls = "opportunistic", auth;
  bool print_json = false, no_progress = false;
  auto* s = app.add_subcommand("send", "send a campaign: a template to every recipient of a list");
  s->add_option("--template", send.template_path,
                "template JSON (SES shape or CreateEmailTemplate)")
      ->required();
  s->add_option("--recipients", send.recipients_path,
                "recipient list: CSV with an email column, or JSON lines")
      ->required();
  s->add_option("--from", send.from, "\"Name <addr@domain>\"")->required();
  auto* relay = s->add_option("--relay", send.relay, "send everything through HOST:PORT");
  s->add_option("--route", send.routes,
                "DOMAIN=HOST:PORT: deliver a domain to a fixed host (repeatable)")
      ->excludes(relay);
  s->add_option("--dns-server", send.dns_servers,
                "IP[:PORT] to ask for MX records instead of the system's");
  s->add_option("--smtp-port", send.smtp_port, "port of MX hosts (default 25; tests use others)");
  s->add_option("--rate", rate, "campaign-wide cap, N/PERIOD (100/s, 20000/h)")->check(check_rate);
  s->add_option("--domain-connections", send.domain_connections,
                "concurrent connections per destination domain")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  s->add_option("--total-connections", send.total_connections, "concurrent connections in all")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  s->add_option("--batch-size", send.batch_size, "recipients accepted and scheduled together")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  s->add_option("--max-age", max_age,
                "give up on a deferred recipient after this long (default 4h)")
      ->check(check_duration);
  s->add_option("--retry-initial", retry_initial,
                "first retry delay, doubled each time (default 1m)")
      ->check(check_duration);
  s->add_option("--slow-backoff", slow_backoff,
                "pause of a domain that asked us to slow down (default 5s)")
      ->check(check_duration);
  s->add_option("--suspend-for", suspend_for,
                "rest of a domain that refuses our sending IP or host (default 1h, at least 1s)")
      ->check(check_duration);
  s->add_option("--dkim-domain", send.dkim_domain, "DKIM d=");
  s->add_option("--dkim-selector", send.dkim_selector, "DKIM s=");
  s->add_option("--dkim-key", send.dkim_key, "PEM private key (RSA or Ed25519)");
  s->add_option("--unsubscribe-url", send.unsubscribe_url,
                "one-click unsubscribe URL; {token} is the recipient's token");
  s->add_option("--spool", send.spool_path, "spool file (SQLite)")->capture_default_str();
  auto* resume = s->add_flag("--resume", send.resume, "go on with the last campaign in the spool");
  s->add_flag("--new-campaign", send.new_campaign,
              "start a new campaign even if the spool holds an unfinished one")
      ->excludes(resume);
  s->add_option("--report", send.report_path, "write the report as JSON to this file");
  s->add_option("--disposition-log", send.disposition_log,
                "JSON lines, one per attempt (default: SPOOL.dispositions.jsonl)");
  s->add_option("--tls", tls, "off, opportunistic or require")
      ->capture_default_str()
      ->check(CLI::IsMember({"off", "opportunistic", "require"}));
  s->add_option("--auth", auth, "USER:PASSWORD for AUTH with the relay");
  s->add_option("--ehlo", send.ehlo_name, "EHLO name (default: the From domain)");
  s->add_flag("--allow-missing", send.allow_missing,
              "render variables missing from the data as empty");
  s->add_flag("--no-progress", no_progress, "no progress bar or progress lines");
  s->add_flag("--json", print_json, "also print the JSON report");
  s->add_option("--io-threads", send.io_threads, "delivery threads (default: one per core)")
      ->check(CLI::Range(0, 64));

  // render
  cli::RenderArgs render;
  auto* r = app.add_subcommand("render", "preview one recipient's message");
  r->add_option("--template", render.template_path, "template JSON")->required();
  r->add_option("--data", render.data_path, "the recipient's data, a JSON object");
  r->add_option("--part", render.part, "print one part exactly as rendered")
      ->check(CLI::IsMember({"subject", "text", "html"}));
  r->add_option("--from", render.from, "\"Name <addr@domain>\"")->capture_default_str();
  r->add_option("--to", render.to, "recipient address (default: data.email)");
  r->add_option("--unsubscribe-url", render.unsubscribe_url, "as for send");
  r->add_flag("--allow-missing", render.allow_missing, "render missing variables as empty");

  // dkim keygen
  cli::KeygenArgs keygen;
  auto* d = app.add_subcommand("dkim", "DKIM keys");
  d->require_subcommand(1);
  auto* kg = d->add_subcommand("keygen", "write a new key and print its DNS TXT record");
  kg->add_option("--domain", keygen.domain, "signing domain")->required();
  kg->add_option("--selector", keygen.selector, "selector")->required();
  kg->add_option("--algorithm", keygen.algorithm, "rsa or ed25519")
      ->capture_default_str()
      ->check(CLI::IsMember({"rsa", "ed25519"}));
  kg->add_option("--bits", keygen.bits, "RSA key size")
      ->capture_default_str()
      ->check(CLI::Range(1024, 8192));
  kg->add_option("--out", keygen.out, "PEM file to create (mode 0600)")->required();

  // sink
  smtp::SinkOptions sink;
  std::string listen = "127.0.0.1:2525";
  int reply_delay_ms = 0;
  auto* k = app.add_subcommand("sink", "a capture SMTP server for tests and demos");
  k->add_option("--listen", listen, "HOST:PORT (port 0: any free port)")->capture_default_str();
  k->add_option("--maildir", sink.maildir, "store messages here (Maildir); none: count only");
  k->add_option("--rcpt-code", sink.faults.rcpt_code, "answer RCPT with this code (e.g. 451, 550)");
  k->add_option("--rcpt-fail-times", sink.faults.rcpt_fail_times,
                "... for the first N attempts per recipient (0: always)");
  k->add_option("--rcpt-text", sink.faults.rcpt_text, "text of that reply");
  k->add_option("--disconnect-after", sink.faults.disconnect_after,
                "421 and close after N messages on a connection");
  k->add_option("--reply-delay", reply_delay_ms, "milliseconds before every reply");
  k->add_option("--drop-mid-data-every", sink.faults.drop_mid_data_every,
                "drop the connection during DATA of every N-th message");

  // demo
  cli::DemoArgs demo;
  // serve
  cli::ServeArgs serve;
  std::string smtp_listen;
  auto* sv = app.add_subcommand(
      "serve", "run the SES v2 HTTP API, SMTP submission and delivery as a service");
  sv->add_option("--config", serve.config_path, "TOML configuration file");
  sv->add_option("--data", serve.data_dir,
                 "data directory: metadata, spool, keys (default ./magnetic-data)");
  sv->add_option("--api-listen", serve.api_listen,
                 "HOST:PORT of the HTTP API (default 127.0.0.1:8585; port 0: any)");
  auto* smtp_opt =
      sv->add_option("--smtp-listen", smtp_listen,
                     "HOST:PORT of SMTP submission (default 127.0.0.1:2587; \"\" turns it off)");
  auto* serve_relay =
      sv->add_option("--relay", serve.relay, "deliver everything through HOST:PORT");
  sv->add_option("--route", serve.routes,
                 "DOMAIN=HOST:PORT: deliver a domain to a fixed host (repeatable)")
      ->excludes(serve_relay);
  sv->add_option("--region", serve.region,
                 "region the SMTP passwords are derived for (default us-east-1)");

  auto* m = app.add_subcommand("demo", "run a whole campaign into a local sink");
  m->add_option("--dir", demo.dir, "where the demo writes its files")->capture_default_str();
  m->add_option("--recipients", demo.recipients, "how many synthetic recipients")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000000));
  m->add_option("--domains", demo.domains, "over how many *.example domains")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));

  // keys
  cli::KeysArgs keys;
  auto* ks = app.add_subcommand("keys", "access keys for the SES API and SMTP submission");
  ks->require_subcommand(1);
  auto* kc = ks->add_subcommand("create", "make a key; prints its secret and SMTP password once");
  kc->add_option("--data", keys.data_dir, "data directory")->capture_default_str();
  kc->add_option("--name", keys.name, "a name to tell the key by");
  kc->add_option("--region", keys.region, "region the SMTP password is derived for")
      ->capture_default_str()
      ->check(check_region);
  auto* kl = ks->add_subcommand("list", "the keys, without their secrets, as a JSON array");
  kl->add_option("--data", keys.data_dir, "data directory")->capture_default_str();
  auto* kr = ks->add_subcommand("revoke", "make a key unusable");
  kr->add_option("--data", keys.data_dir, "data directory")->capture_default_str();
  kr->add_option("ACCESS_KEY_ID", keys.access_key_id, "the key to revoke")->required();

  // events tail
  cli::EventsTailArgs events_tail;
  auto* ev = app.add_subcommand("events", "the event records of a data directory");
  ev->require_subcommand(1);
  auto* et = ev->add_subcommand("tail", "print logged events as JSON lines");
  et->add_option("--data", events_tail.data_dir, "data directory")->capture_default_str();
  et->add_flag("--follow", events_tail.follow, "keep printing new events until interrupted");
  et->add_option("--type", events_tail.type, "only this event type (SEND, BOUNCE, ...)")
      ->check(check_event_type);
  et->add_option("--configuration-set", events_tail.configuration_set,
                 "only events of this configuration set");
  et->add_option("--after", events_tail.after, "only events after this sequence number")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            int64_t seq = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seq);
            if (ec != std::errc() || end != text.data() + text.size() || seq < 0)
              return "a sequence number is a whole number from 0 to 9223372036854775807; got '" +
                     text + "'";
            return "";
          },
          "SEQ"));

  magnetic::cli::add_feedback_commands(app);

  // A usage error exits 2 (help and version exit 0), apart from the 1 of an error in the input.
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    // A subcommand run from its callback (feedback) failed on its input: exit 1, not 2.
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  set_log_level(log_level);

  if (*s) {
    if (!rate.empty()) send.rate = *parse_rate(rate);
    if (!max_age.empty()) send.max_age = *parse_duration(max_age);
    if (!retry_initial.empty()) send.retry_initial = *parse_duration(retry_initial);
    if (!slow_backoff.empty()) send.slow_backoff = *parse_duration(slow_backoff);
    if (!suspend_for.empty()) {
      send.suspend_for = *parse_duration(suspend_for);
      if (send.suspend_for < std::chrono::seconds(1)) {
        std::cerr << "error: --suspend-for must be at least 1s\n";
        return 2;
      }
    }
    send.tls = tls == "off"       ? smtp::TlsMode::kOff
               : tls == "require" ? smtp::TlsMode::kRequire
                                  : smtp::TlsMode::kOpportunistic;
    if (!auth.empty()) {
      auto colon = auth.find(':');
      if (colon == std::string::npos) {
        std::fprintf(stderr, "magnetic send: --auth must be USER:PASSWORD\n");
        return 1;
      }
      send.relay_auth = smtp::Credentials{auth.substr(0, colon), auth.substr(colon + 1)};
    }
    send.progress = !no_progress;
    return cli::send_command(send, print_json);
  }
  if (*r) return cli::render_command(render);
  if (*kg) return cli::keygen_command(keygen);
  if (*k) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "magnetic sink: --listen must be HOST:PORT\n");
      return 1;
    }
    sink.listen_host = listen.substr(0, colon);
    try {
      sink.listen_port = static_cast<uint16_t>(std::stoi(listen.substr(colon + 1)));
    } catch (...) {
      std::fprintf(stderr, "magnetic sink: bad port in --listen '%s'\n", listen.c_str());
      return 1;
    }
    sink.faults.reply_delay = std::chrono::milliseconds(reply_delay_ms);
    return smtp::run_sink_command(sink);
  }
  if (*m) return cli::demo_command(demo);
  if (*ks) {
    keys.action = *kc   ? cli::KeysArgs::Action::kCreate
                  : *kr ? cli::KeysArgs::Action::kRevoke
                        : cli::KeysArgs::Action::kList;
    return cli::keys_command(keys);
  }
  if (*et) return cli::events_tail_command(events_tail);
  if (*sv) {
    if (smtp_opt->count()) serve.smtp_listen = smtp_listen;
    return cli::serve_command(serve);
  }
  return 0;
}
