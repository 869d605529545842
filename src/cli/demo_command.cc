// `magnetic demo`: a whole campaign on this machine, with nothing leaving it. A capture sink
// listens on an ephemeral loopback port; a sample template, a list of synthetic recipients
// over reserved *.example domains and a fresh ed25519 key are written; the campaign is sent
// through the sink and its report printed.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli/commands.h"
#include "dkim/signer.h"
#include "smtp/sink.h"

namespace magnetic::cli {
namespace {

constexpr const char* kTemplate = R"json({
  "TemplateName": "demo-welcome",
  "TemplateContent": {
    "Subject": "Welcome to {{company}}, {{first_name}}!",
    "Text": "Hello {{first_name}},\n\nThanks for joining {{company}}.{{#if plan}} You are on the {{plan}} plan.{{/if}}\n\nYour city: {{address.city}}\n\n-- The {{company}} team\n123 Example Street, Springfield\n",
    "Html": "<!doctype html><html><body><h1>Hello {{first_name}}</h1><p>Thanks for joining <b>{{company}}</b>.</p>{{#if plan}}<p>You are on the <em>{{plan}}</em> plan.</p>{{/if}}<p>Your city: {{address.city}}</p><p style=\"color:#888\">123 Example Street, Springfield</p></body></html>"
  }
})json";

const char* kFirstNames[] = {"Ada", "Grace",    "Alan",   "Edsger", "Barbara", "Donald", "Frances",
                             "Ken", "Margaret", "Dennis", "Zoë",    "Élodie",  "Jürgen", "Søren"};
const char* kCities[] = {"Springfield", "Rivertown", "Lakeside", "Hillview", "Zürich", "Kraków"};
const char* kPlans[] = {"", "basic", "pro", "team"};

}  // namespace

int demo_command(const DemoArgs& args) {
  namespace fs = std::filesystem;
  fs::path dir = fs::absolute(args.dir);
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir / "maildir", ec);
  if (ec) {
    std::fprintf(stderr, "magnetic demo: cannot create %s: %s\n", dir.c_str(),
                 ec.message().c_str());
    return 1;
  }

  // The sink, on its own thread.
  boost::asio::io_context io;
  smtp::SinkOptions sink_options;
  sink_options.maildir = (dir / "maildir").string();
  auto sink = smtp::SinkServer::start(io, sink_options);
  if (!sink) {
    std::fprintf(stderr, "magnetic demo: cannot start the sink: %s\n",
                 sink.status().message().c_str());
    return 1;
  }
  auto work = boost::asio::make_work_guard(io);
  std::thread sink_thread([&io] { io.run(); });
  uint16_t port = (*sink)->port();
  std::printf("sink listening on 127.0.0.1:%u, storing into %s\n", port, (dir / "maildir").c_str());

  // Template, list and key.
  std::ofstream(dir / "template.json") << kTemplate;
  {
    std::ofstream csv(dir / "recipients.csv");
    csv << "email,first_name,company,plan,address.city\n";
    for (int i = 0; i < args.recipients; ++i) {
      csv << "user" << i << "@d" << (i % args.domains) << ".example,"
          << kFirstNames[i % std::size(kFirstNames)] << ",\"Magnetic, Inc.\","
          << kPlans[i % std::size(kPlans)] << "," << kCities[i % std::size(kCities)] << "\n";
    }
  }
  auto key = dkim::DkimKey::generate(dkim::Algorithm::kEd25519Sha256);
  if (!key) {
    std::fprintf(stderr, "magnetic demo: %s\n", key.status().message().c_str());
    return 1;
  }
  std::ofstream(dir / "dkim-ed25519.pem") << key->private_pem();
  std::printf("DKIM: publish demo._domainkey.example.com TXT \"%s\"\n",
              key->dns_txt_value().c_str());

  campaign::SendSettings settings;
  settings.template_path = (dir / "template.json").string();
  settings.recipients_path = (dir / "recipients.csv").string();
  settings.from = "Magnetic Demo <news@example.com>";
  settings.relay = "127.0.0.1:" + std::to_string(port);
  settings.dkim_domain = "example.com";
  settings.dkim_selector = "demo";
  settings.dkim_key = (dir / "dkim-ed25519.pem").string();
  settings.unsubscribe_url = "https://example.com/unsubscribe/{token}";
  settings.spool_path = (dir / "spool.db").string();
  settings.report_path = (dir / "report.json").string();
  settings.disposition_log = (dir / "dispositions.jsonl").string();
  settings.max_age = std::chrono::minutes(5);
  int rc = send_command(settings, false);

  (*sink)->stop();
  work.reset();
  io.stop();
  sink_thread.join();
  std::printf(
      "\nthe sink accepted %llu messages; they are in %s (one file each, envelope on top)\n",
      static_cast<unsigned long long>((*sink)->stats().messages.load()),
      (dir / "maildir" / "new").c_str());
  std::printf("report: %s; dispositions: %s\n", settings.report_path.c_str(),
              settings.disposition_log.c_str());
  return rc;
}

}  // namespace magnetic::cli
