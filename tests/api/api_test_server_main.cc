// A tiny program for client tests of the API alone: the ApiServer on the real store in a given
// folder, with a Submitter that accepts every message and appends it as one JSON line to a
// file. It prints "PORT <port> KEY <access key id> SECRET <secret>" on one line, then serves
// until its standard input closes (so it never outlives the test that started it).
//
//   api_test_server <data dir> <messages.jsonl>
#include <utility>  // before Asio (Boost 1.74)

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/api_server.h"
#include "base/log.h"

namespace {

class FileSubmitter : public magnetic::service::Submitter {
 public:
  explicit FileSubmitter(std::string path) : path_(std::move(path)) {}
  std::vector<magnetic::service::SubmitResult> submit(
      std::vector<magnetic::service::OutboundMessage> messages) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::ofstream out(path_, std::ios::app | std::ios::binary);
    std::vector<magnetic::service::SubmitResult> results;
    for (const auto& m : messages) {
      nlohmann::json tags = nlohmann::json::array();
      for (const auto& [n, v] : m.tags) tags.push_back({n, v});
      out << nlohmann::json{{"message_id", m.message_id},
                            {"from", m.from},
                            {"envelope_from", m.envelope_from},
                            {"recipients", m.recipients},
                            {"configuration_set", m.configuration_set},
                            {"tags", tags},
                            {"data", m.data}}
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
          << "\n";
      magnetic::service::SubmitResult r;
      r.message_id = m.message_id;
      results.push_back(r);
    }
    return results;
  }

 private:
  std::string path_;
  std::mutex mu_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <data dir> <messages.jsonl>\n", argv[0]);
    return 2;
  }
  magnetic::set_log_level("warn");
  auto store = magnetic::store::Store::open(argv[1]);
  if (!store) {
    std::fprintf(stderr, "store: %s\n", store.status().message().c_str());
    return 1;
  }
  auto key = (*store)->create_key("client tests");
  if (!key) return 1;
  FileSubmitter submitter(argv[2]);
  boost::asio::io_context io;
  magnetic::api::ApiOptions options;
  auto server = magnetic::api::ApiServer::start(io, options, **store, submitter);
  if (!server) {
    std::fprintf(stderr, "api: %s\n", server.status().message().c_str());
    return 1;
  }
  auto guard = boost::asio::make_work_guard(io);
  std::thread runner([&io] { io.run(); });
  std::printf("PORT %u KEY %s SECRET %s\n", static_cast<unsigned>((*server)->port()),
              key->access_key_id.c_str(), key->secret.c_str());
  std::fflush(stdout);

  std::string line;
  while (std::getline(std::cin, line)) {
  }
  (*server)->stop();
  server->reset();
  guard.reset();
  io.stop();
  runner.join();
  return 0;
}
