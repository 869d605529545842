#include "events/dispatcher.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "test_support.h"

namespace magnetic::events {
namespace {

using namespace std::chrono_literals;

// Waits up to a generous deadline for `done`; the assertion is on the condition, not the time.
bool eventually(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// A webhook receiver on 127.0.0.1. Its port is bound from the start but not listened on until
// open(), so that until then connections are refused. The first `fail_first` requests get a
// 500 (and the connection is closed); later ones a 200 on a kept-alive connection.
class Receiver {
 public:
  struct Request {
    std::string method, target;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    int status = 0;
  };

  Receiver() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::abort();
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Receiver() {
    stop_ = true;
    if (accept_thread_.joinable()) accept_thread_.join();
    for (auto& t : connection_threads_) t.join();
    ::close(fd_);
  }

  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  void open(int fail_first) {
    fail_first_ = fail_first;
    if (::listen(fd_, 16) != 0) std::abort();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }

  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  std::vector<Request> accepted() {
    std::vector<Request> out;
    for (auto& r : requests()) {
      if (r.status == 200) out.push_back(r);
    }
    return out;
  }
  int connections() const { return connections_; }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++connections_;
      connection_threads_.emplace_back([this, c] { serve(c); });
    }
  }

  // Reads until `buf` holds `n` bytes or the peer goes; false on close or stop.
  bool fill(int c, std::string& buf, size_t n) {
    while (buf.size() < n) {
      pollfd p{c, POLLIN, 0};
      if (stop_) return false;
      if (::poll(&p, 1, 50) <= 0) continue;
      char tmp[4096];
      ssize_t got = ::read(c, tmp, sizeof tmp);
      if (got <= 0) return false;
      buf.append(tmp, static_cast<size_t>(got));
    }
    return true;
  }

  void serve(int c) {
    std::string buf;
    while (!stop_) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!fill(c, buf, buf.size() + 1)) {
          ::close(c);
          return;
        }
      }
      Request r;
      std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      size_t line_end = head.find("\r\n");
      std::string first = head.substr(0, line_end);
      r.method = first.substr(0, first.find(' '));
      r.target = first.substr(first.find(' ') + 1, first.rfind(' ') - first.find(' ') - 1);
      size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
      while (pos < head.size()) {
        size_t eol = head.find("\r\n", pos);
        if (eol == std::string::npos) eol = head.size();
        std::string line = head.substr(pos, eol - pos);
        size_t colon = line.find(':');
        std::string name = line.substr(0, colon);
        for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        size_t v = line.find_first_not_of(' ', colon + 1);
        r.headers[name] = v == std::string::npos ? "" : line.substr(v);
        pos = eol + 2;
      }
      size_t length = std::stoul(r.headers.count("content-length") ? r.headers["content-length"]
                                                                   : std::string("0"));
      if (!fill(c, buf, length)) {
        ::close(c);
        return;
      }
      r.body = buf.substr(0, length);
      buf.erase(0, length);

      bool fail;
      {
        std::lock_guard<std::mutex> lock(mu_);
        fail = served_++ < fail_first_;
        r.status = fail ? 500 : 200;
        requests_.push_back(r);
      }
      std::string reply = fail ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n"
                                 "Connection: close\r\n\r\noops"
                               : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      if (::write(c, reply.data(), reply.size()) < 0) {
        ::close(c);
        return;
      }
      if (fail) {
        ::close(c);
        return;
      }
    }
    ::close(c);
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  int fail_first_ = 0;
  int served_ = 0;
  std::thread accept_thread_;
  std::vector<std::thread> connection_threads_;
  std::mutex mu_;
  std::vector<Request> requests_;
};

std::string hmac_hex(const std::string& key, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  std::string out;
  char two[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(two, sizeof two, "%02x", mac[i]);
    out += two;
  }
  return out;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

NewEvent event(int i, std::vector<Destination> dests) {
  NewEvent e;
  e.configuration_set = "marketing";
  e.message_id = "m" + std::to_string(i % 3);
  e.type = EventType::kDelivery;
  e.json = R"({"eventType":"Delivery","n":)" + std::to_string(i) + "}";
  e.destinations = std::move(dests);
  return e;
}

DispatcherOptions fast_options() {
  DispatcherOptions o;
  o.signing_secret = "topsecret";
  o.retry_initial = 10ms;
  o.retry_max = 40ms;
  o.jitter = 0;
  o.timeout = 5s;
  return o;
}

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override { open_outbox(); }
  void open_outbox() {
    outbox_.reset();
    auto o = Outbox::open((dir_.path() / kOutboxFileName).string());
    ASSERT_TRUE(o) << o.status().message();
    outbox_ = std::move(*o);
  }
  testing::TempDir dir_;
  std::unique_ptr<Outbox> outbox_;
};

TEST(WebhookSignatureTest, IsHmacSha256OfTimestampDotBody) {
  EXPECT_EQ(webhook_signature("topsecret", "1700000000", R"({"a":1})"),
            "v1=6a939b0c71853d606167625a15168ee9188c6a511c773ef4f42d307f3849e50f");
}

TEST(RetryDelayTest, DoublesFromTheInitialDelayUpToTheCap) {
  DispatcherOptions o;
  EXPECT_EQ(retry_delay(o, 0), 1s);
  EXPECT_EQ(retry_delay(o, 1), 2s);
  EXPECT_EQ(retry_delay(o, 8), 256s);
  EXPECT_EQ(retry_delay(o, 9), 300s);
  EXPECT_EQ(retry_delay(o, 1000), 300s);
}

// Refused, then 500s, then 200s: every event arrives once with a 200, in order, signed.
TEST_F(DispatcherTest, WebhookRetriesThroughRefusalAnd500sAndKeepsOrder) {
  Receiver rx;
  Destination hook{"marketing/hook", Destination::kWebhook, rx.url()};
  constexpr int kEvents = 12;
  std::vector<NewEvent> events;
  for (int i = 1; i <= kEvents; ++i) events.push_back(event(i, {hook}));
  ASSERT_TRUE(outbox_->append(events, now_ms()));

  Dispatcher d(*outbox_, fast_options());
  ASSERT_TRUE(d.start());
  ASSERT_TRUE(eventually([&] { return d.stats().failed_attempts >= 3; }));
  EXPECT_EQ(d.stats().delivered, 0u);
  EXPECT_GE(*outbox_->attempts(hook.id, 1), 3);
  EXPECT_EQ(*outbox_->attempts(hook.id, 2), 0);

  rx.open(2);
  ASSERT_TRUE(eventually([&] { return d.stats().delivered == kEvents; }));
  d.stop();

  auto all = rx.requests();
  ASSERT_EQ(all.size(), static_cast<size_t>(kEvents + 2));
  EXPECT_EQ(all[0].status, 500);
  EXPECT_EQ(all[0].headers["x-magnetic-event-id"], "1");
  EXPECT_EQ(all[1].status, 500);
  EXPECT_EQ(all[1].headers["x-magnetic-event-id"], "1");
  auto ok = rx.accepted();
  ASSERT_EQ(ok.size(), static_cast<size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) {
    const auto& r = ok[static_cast<size_t>(i)];
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/hook");
    EXPECT_EQ(r.headers.at("content-type"), "application/json");
    EXPECT_EQ(r.headers.at("host"), rx.url().substr(7, rx.url().size() - 7 - 5));
    EXPECT_EQ(r.headers.at("x-magnetic-event-id"), std::to_string(i + 1));
    EXPECT_EQ(r.body, R"({"eventType":"Delivery","n":)" + std::to_string(i + 1) + "}");
    const std::string& ts = r.headers.at("x-magnetic-timestamp");
    ASSERT_FALSE(ts.empty());
    EXPECT_EQ(ts.find_first_not_of("0123456789"), std::string::npos);
    EXPECT_EQ(r.headers.at("x-magnetic-signature"),
              "v1=" + hmac_hex("topsecret", ts + "." + r.body));
  }
  // The 200s came over one kept-alive connection; each 500 closed its own.
  EXPECT_EQ(rx.connections(), 3);
  EXPECT_EQ(*outbox_->pending(hook.id), 0u);
  EXPECT_EQ(outbox_->counts()->delivered, static_cast<uint64_t>(kEvents));
}

// A destination that refuses holds up only itself.
TEST_F(DispatcherTest, FailingDestinationDoesNotHoldUpOthers) {
  Receiver down, up;
  up.open(0);
  Destination bad{"a/down", Destination::kWebhook, down.url()};
  Destination good{"b/up", Destination::kWebhook, up.url()};
  std::vector<NewEvent> events;
  for (int i = 1; i <= 5; ++i) events.push_back(event(i, {bad, good}));
  ASSERT_TRUE(outbox_->append(events, now_ms()));

  Dispatcher d(*outbox_, fast_options());
  ASSERT_TRUE(d.start());
  ASSERT_TRUE(eventually([&] { return d.stats().delivered == 5; }));
  EXPECT_EQ(*outbox_->pending(good.id), 0u);
  EXPECT_EQ(*outbox_->pending(bad.id), 5u);
  d.stop();
  EXPECT_EQ(up.accepted().size(), 5u);
}

TEST_F(DispatcherTest, FileDestinationAppendsJsonLines) {
  std::string path = (dir_.path() / "events.jsonl").string();
  Destination file{"marketing/file", Destination::kFile, path};
  ASSERT_TRUE(outbox_->append({event(1, {file}), event(2, {file}), event(3, {file})}, now_ms()));

  Dispatcher d(*outbox_, fast_options());
  ASSERT_TRUE(d.start());
  ASSERT_TRUE(eventually([&] { return d.stats().delivered == 3; }));
  ASSERT_TRUE(outbox_->append({event(4, {file})}, now_ms()));
  d.wake();
  ASSERT_TRUE(eventually([&] { return d.stats().delivered == 4; }));
  d.stop();

  EXPECT_EQ(testing::read_file(path),
            "{\"eventType\":\"Delivery\",\"n\":1}\n{\"eventType\":\"Delivery\",\"n\":2}\n"
            "{\"eventType\":\"Delivery\",\"n\":3}\n{\"eventType\":\"Delivery\",\"n\":4}\n");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(*outbox_->pending(file.id), 0u);
}

TEST_F(DispatcherTest, FileThatCannotBeOpenedIsRetried) {
  std::string path = (dir_.path() / "later" / "events.jsonl").string();
  Destination file{"marketing/file", Destination::kFile, path};
  ASSERT_TRUE(outbox_->append({event(1, {file})}, now_ms()));
  Dispatcher d(*outbox_, fast_options());
  ASSERT_TRUE(d.start());
  ASSERT_TRUE(eventually([&] { return d.stats().failed_attempts >= 2; }));
  std::filesystem::create_directory(dir_.path() / "later");
  ASSERT_TRUE(eventually([&] { return d.stats().delivered == 1; }));
  d.stop();
  EXPECT_EQ(testing::read_file(path), "{\"eventType\":\"Delivery\",\"n\":1}\n");
}

TEST_F(DispatcherTest, EventsOlderThanMaxAgeAreDropped) {
  Receiver never;
  Destination hook{"marketing/hook", Destination::kWebhook, never.url()};
  ASSERT_TRUE(outbox_->append({event(1, {hook}), event(2, {hook})}, now_ms() - 1000));
  DispatcherOptions o = fast_options();
  o.max_age = 500ms;
  Dispatcher d(*outbox_, o);
  ASSERT_TRUE(d.start());
  ASSERT_TRUE(eventually([&] { return d.stats().dropped == 2; }));
  d.stop();
  EXPECT_EQ(d.stats().failed_attempts, 2u);
  EXPECT_EQ(*outbox_->pending(hook.id), 0u);
  EXPECT_EQ(outbox_->counts()->dropped, 2u);
}

// Regression (deleted_destination_keeps_receiving): events waiting for a destination that was
// deleted (or its configuration set) are dropped, not delivered; others go on.
TEST_F(DispatcherTest, DeletedDestinationKeepsReceiving) {
  std::string gone_path = (dir_.path() / "gone.jsonl").string();
  std::string kept_path = (dir_.path() / "kept.jsonl").string();
  Destination gone{"marketing/gone", Destination::kFile, gone_path};
  Destination kept{"marketing/kept", Destination::kFile, kept_path};
  ASSERT_TRUE(outbox_->append({event(1, {gone, kept}), event(2, {gone, kept})}, now_ms()));
  DispatcherOptions o = fast_options();
  o.destination_exists = [](const std::string& id) { return id != "marketing/gone"; };
  Dispatcher d(*outbox_, o);
  ASSERT_TRUE(d.start());
  ASSERT_TRUE(eventually([&] { return d.stats().delivered == 2 && d.stats().dropped == 2; }));
  d.stop();
  EXPECT_FALSE(std::filesystem::exists(gone_path));
  EXPECT_EQ(testing::read_file(kept_path),
            "{\"eventType\":\"Delivery\",\"n\":1}\n{\"eventType\":\"Delivery\",\"n\":2}\n");
  EXPECT_EQ(*outbox_->pending(gone.id), 0u);
}

TEST_F(DispatcherTest, BadCaFileIsAnError) {
  DispatcherOptions o = fast_options();
  o.ca_file = (dir_.path() / "missing.pem").string();
  Dispatcher d(*outbox_, o);
  Status s = d.start();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  // Regression (missing_ca_file_unclear): the message says the file is missing.
  EXPECT_EQ(s.message(),
            "events: cannot read the CA file '" + o.ca_file + "': No such file or directory");

  // A file that is there but holds no certificate.
  std::string junk = (dir_.path() / "junk.pem").string();
  std::FILE* f = std::fopen(junk.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("not a certificate\n", f);
  std::fclose(f);
  o.ca_file = junk;
  Dispatcher d2(*outbox_, o);
  s = d2.start();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message().rfind("events: cannot load the CA certificates from '" + junk + "': ", 0),
            0u)
      << s.message();
}

// A dispatcher killed with -9 while its destination is down: after a restart everything
// pending arrives, once each, in order.
TEST_F(DispatcherTest, PendingEventsSurviveKill9) {
  Receiver rx;
  Destination hook{"marketing/hook", Destination::kWebhook, rx.url()};
  std::string path = (dir_.path() / kOutboxFileName).string();
  outbox_.reset();

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto o = Outbox::open(path);
    if (!o) _exit(2);
    std::vector<NewEvent> events;
    for (int i = 1; i <= 6; ++i) events.push_back(event(i, {hook}));
    if (!(*o)->append(events, now_ms())) _exit(3);
    Dispatcher d(**o, fast_options());
    if (!d.start()) _exit(4);
    if (!eventually([&] { return d.stats().failed_attempts >= 2; })) _exit(5);
    kill(getpid(), SIGKILL);
    _exit(6);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);

  open_outbox();
  EXPECT_EQ(*outbox_->pending(hook.id), 6u);
  EXPECT_GE(*outbox_->attempts(hook.id, 1), 2);
  rx.open(0);
  Dispatcher d(*outbox_, fast_options());
  ASSERT_TRUE(d.start());
  ASSERT_TRUE(eventually([&] { return d.stats().delivered == 6; }));
  d.stop();
  auto ok = rx.accepted();
  ASSERT_EQ(ok.size(), 6u);
  for (size_t i = 0; i < ok.size(); ++i) {
    EXPECT_EQ(ok[i].headers["x-magnetic-event-id"], std::to_string(i + 1));
  }
}

// Destroying a dispatcher mid-retry (no stop() call) leaves the outbox as it was.
TEST_F(DispatcherTest, DestroyWithoutStopKeepsPendingEvents) {
  Receiver rx;
  Destination hook{"marketing/hook", Destination::kWebhook, rx.url()};
  ASSERT_TRUE(outbox_->append({event(1, {hook}), event(2, {hook})}, now_ms()));
  {
    Dispatcher d(*outbox_, fast_options());
    ASSERT_TRUE(d.start());
    ASSERT_TRUE(eventually([&] { return d.stats().failed_attempts >= 1; }));
  }
  open_outbox();
  EXPECT_EQ(*outbox_->pending(hook.id), 2u);
  rx.open(0);
  Dispatcher d(*outbox_, fast_options());
  ASSERT_TRUE(d.start());
  ASSERT_TRUE(eventually([&] { return d.stats().delivered == 2; }));
  d.stop();
  ASSERT_EQ(rx.accepted().size(), 2u);
  EXPECT_EQ(rx.accepted()[0].headers["x-magnetic-event-id"], "1");
  EXPECT_EQ(rx.accepted()[1].headers["x-magnetic-event-id"], "2");
}

}  // namespace
}  // namespace magnetic::events
