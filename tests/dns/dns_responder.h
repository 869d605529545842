// A tiny authoritative DNS responder on 127.0.0.1 for the resolver tests: UDP only, answers from
// a table, counts every query it receives.
//
// Written by hand rather than running a real server (nsd, knot, dnsmasq): the tests need what
// those do not offer on demand (SERVFAIL for one name, an answer that never comes, a slow answer)
// and an exact count of the queries that reached the server. Plain sockets and one thread, since
// it serves one datagram at a time.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace magnetic::testing {

class DnsResponder {
 public:
  static constexpr int kA = 1, kSoa = 6, kMx = 15, kTxt = 16, kAaaa = 28;
  // Negative answers carry an SOA with this TTL and minimum: the negative TTL is 60 s.
  static constexpr uint32_t kSoaTtl = 120, kSoaMinimum = 60;

  enum class Mode { kAnswer, kNxdomain, kServfail, kSilent };

  DnsResponder() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      std::abort();
    }
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~DnsResponder() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  uint16_t port() const { return port_; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

  // Table edits. A name in the table with no record of the asked type answers NOERROR/no data;
  // a name not in the table answers NXDOMAIN.
  void add_mx(const std::string& name, uint16_t preference, const std::string& host,
              uint32_t ttl = 3600) {
    std::vector<uint8_t> rdata{static_cast<uint8_t>(preference >> 8),
                               static_cast<uint8_t>(preference)};
    append_name(rdata, host);
    add(name, kMx, ttl, std::move(rdata));
  }
  void add_a(const std::string& name, const std::string& address, uint32_t ttl = 3600) {
    std::vector<uint8_t> rdata(4);
    if (::inet_pton(AF_INET, address.c_str(), rdata.data()) != 1) std::abort();
    add(name, kA, ttl, std::move(rdata));
  }
  void add_aaaa(const std::string& name, const std::string& address, uint32_t ttl = 3600) {
    std::vector<uint8_t> rdata(16);
    if (::inet_pton(AF_INET6, address.c_str(), rdata.data()) != 1) std::abort();
    add(name, kAaaa, ttl, std::move(rdata));
  }
  void add_txt(const std::string& name, const std::string& text) {
    std::vector<uint8_t> rdata{static_cast<uint8_t>(text.size())};
    rdata.insert(rdata.end(), text.begin(), text.end());
    add(name, kTxt, 3600, std::move(rdata));
  }
  void set_mode(const std::string& name, Mode mode) {
    std::lock_guard lock(mutex_);
    names_[name].mode = mode;
  }
  void set_delay(const std::string& name, std::chrono::milliseconds delay) {
    std::lock_guard lock(mutex_);
    names_[name].delay = delay;
  }

  // Queries received for name (lower case) and type, and in all.
  int queries(const std::string& name, int type) const {
    std::lock_guard lock(mutex_);
    auto it = counts_.find({name, type});
    return it == counts_.end() ? 0 : it->second;
  }
  int total_queries() const {
    std::lock_guard lock(mutex_);
    int total = 0;
    for (const auto& [key, count] : counts_) total += count;
    return total;
  }
  // Every name asked, as received (not lower-cased), in order.
  std::vector<std::string> asked() const {
    std::lock_guard lock(mutex_);
    return asked_;
  }

 private:
  struct Record {
    int type;
    uint32_t ttl;
    std::vector<uint8_t> rdata;
  };
  struct Name {
    Mode mode = Mode::kAnswer;
    std::chrono::milliseconds delay{0};
    std::vector<Record> records;
  };

  void add(const std::string& name, int type, uint32_t ttl, std::vector<uint8_t> rdata) {
    std::lock_guard lock(mutex_);
    names_[name].records.push_back(Record{type, ttl, std::move(rdata)});
  }

  static void append_name(std::vector<uint8_t>& out, const std::string& name) {
    size_t start = 0;
    while (start < name.size()) {
      size_t dot = name.find('.', start);
      if (dot == std::string::npos) dot = name.size();
      out.push_back(static_cast<uint8_t>(dot - start));
      out.insert(out.end(), name.begin() + start, name.begin() + dot);
      start = dot + 1;
    }
    out.push_back(0);
  }
  static void append16(std::vector<uint8_t>& out, uint32_t v) {
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
  }
  static void append32(std::vector<uint8_t>& out, uint32_t v) {
    append16(out, v >> 16);
    append16(out, v & 0xffff);
  }

  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      uint8_t query[512];
      sockaddr_in peer{};
      socklen_t peer_length = sizeof peer;
      ssize_t n =
          ::recvfrom(fd_, query, sizeof query, 0, reinterpret_cast<sockaddr*>(&peer), &peer_length);
      if (n < 12) continue;
      std::vector<uint8_t> reply;
      if (!answer(query, static_cast<size_t>(n), reply)) continue;
      ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), peer_length);
    }
  }

  // Builds the reply to one query; false when there is to be none.
  bool answer(const uint8_t* q, size_t n, std::vector<uint8_t>& reply) {
    // The question: one name of uncompressed labels, then type and class.
    size_t p = 12;
    std::string name;
    while (p < n && q[p] != 0) {
      size_t length = q[p];
      if (p + 1 + length > n) return false;
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(q + p + 1), length);
      p += 1 + length;
    }
    if (p + 5 > n) return false;
    const size_t question_end = p + 5;
    const int type = (q[p + 1] << 8) | q[p + 2];
    std::string key;
    for (char c : name) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));

    Name entry;
    bool known = false;
    {
      std::lock_guard lock(mutex_);
      ++counts_[{key, type}];
      asked_.push_back(name);
      if (auto it = names_.find(key); it != names_.end()) {
        entry = it->second;
        known = true;
      }
    }
    if (entry.delay.count() > 0) std::this_thread::sleep_for(entry.delay);
    if (entry.mode == Mode::kSilent) return false;

    int rcode = 0;
    if (!known || entry.mode == Mode::kNxdomain) rcode = 3;
    if (entry.mode == Mode::kServfail) rcode = 2;
    std::vector<const Record*> answers;
    if (rcode == 0) {
      for (const Record& r : entry.records) {
        if (r.type == type) answers.push_back(&r);
      }
    }
    const bool with_soa = rcode == 3 || (rcode == 0 && answers.empty());

    // Header: same id, QR and AA set, RD copied, the rcode.
    reply.assign(q, q + 2);
    reply.push_back(static_cast<uint8_t>(0x84 | (q[2] & 0x01)));
    reply.push_back(static_cast<uint8_t>(rcode));
    append16(reply, 1);
    append16(reply, static_cast<uint32_t>(answers.size()));
    append16(reply, with_soa ? 1 : 0);
    append16(reply, 0);
    reply.insert(reply.end(), q + 12, q + question_end);

    // Every owner name is the question's name: a pointer to offset 12.
    for (const Record* r : answers) {
      append16(reply, 0xc00c);
      append16(reply, static_cast<uint32_t>(r->type));
      append16(reply, 1);
      append32(reply, r->ttl);
      append16(reply, static_cast<uint32_t>(r->rdata.size()));
      reply.insert(reply.end(), r->rdata.begin(), r->rdata.end());
    }
    if (with_soa) {
      std::vector<uint8_t> rdata;
      append_name(rdata, "ns.example");
      append_name(rdata, "hostmaster.example");
      for (uint32_t v : {1u, 3600u, 600u, 86400u, kSoaMinimum}) append32(rdata, v);
      append16(reply, 0xc00c);
      append16(reply, kSoa);
      append16(reply, 1);
      append32(reply, kSoaTtl);
      append16(reply, static_cast<uint32_t>(rdata.size()));
      reply.insert(reply.end(), rdata.begin(), rdata.end());
    }
    return true;
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::map<std::string, Name> names_;
  std::map<std::pair<std::string, int>, int> counts_;
  std::vector<std::string> asked_;
};

}  // namespace magnetic::testing
