// An in-memory store::Store for the api tests: the contract of store/store.h (names exact,
// identities and suppressed addresses without ASCII case, pages by an opaque token) without
// SQLite, so the handlers can be tested before and apart from the real store.
#pragma once

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "store/store.h"

namespace magnetic::api::testing {

class FakeStore : public store::Store {
 public:
  // Access keys.
  Result<store::AccessKey> create_key(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    store::AccessKey k;
    k.access_key_id = "AKIATESTKEY" + std::to_string(100000000 + keys_.size());
    k.secret = "secret-of-" + k.access_key_id + "-0123456789abcdefghij";
    k.name = name;
    keys_[k.access_key_id] = k;
    return k;
  }
  Status add_key(const std::string& id, const std::string& secret) {
    std::lock_guard<std::mutex> lock(mu_);
    keys_[id] = store::AccessKey{id, secret, "test", "2026-01-01T00:00:00Z", true};
    return Status::ok();
  }
  Result<std::vector<store::AccessKey>> list_keys() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<store::AccessKey> out;
    for (auto [id, k] : keys_) {
      k.secret.clear();
      out.push_back(k);
    }
    return out;
  }
  Status revoke_key(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = keys_.find(id);
    if (it == keys_.end()) return Status::not_found("no key " + id);
    it->second.active = false;
    return Status::ok();
  }
  Result<store::AccessKey> find_key(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = keys_.find(id);
    if (it == keys_.end() || !it->second.active) return Status::not_found("no key " + id);
    return it->second;
  }

  // Templates.
  Status create_template(const store::EmailTemplate& t) override {
    return create(templates_, t.name, t, "template");
  }
  Result<store::EmailTemplate> get_template(const std::string& n) override {
    return get(templates_, n, "template");
  }
  Status update_template(const store::EmailTemplate& t) override {
    return update(templates_, t.name, t, "template");
  }
  Status delete_template(const std::string& n) override { return erase(templates_, n, "template"); }
  Result<store::Listing<store::EmailTemplate>> list_templates(const store::Page& p) override {
    return list(templates_, p);
  }

  // Identities.
  Status create_identity(const store::Identity& i) override {
    return create(identities_, lower(i.name), i, "identity");
  }
  Result<store::Identity> get_identity(const std::string& n) override {
    return get(identities_, lower(n), "identity");
  }
  Status update_identity(const store::Identity& i) override {
    return update(identities_, lower(i.name), i, "identity");
  }
  Status delete_identity(const std::string& n) override {
    return erase(identities_, lower(n), "identity");
  }
  Result<store::Listing<store::Identity>> list_identities(const store::Page& p) override {
    return list(identities_, p);
  }

  // Configuration sets.
  Status create_configuration_set(const store::ConfigurationSet& c) override {
    return create(sets_, c.name, c, "configuration set");
  }
  Result<store::ConfigurationSet> get_configuration_set(const std::string& n) override {
    return get(sets_, n, "configuration set");
  }
  Status update_configuration_set(const store::ConfigurationSet& c) override {
    return update(sets_, c.name, c, "configuration set");
  }
  Status delete_configuration_set(const std::string& n) override {
    Status s = erase(sets_, n, "configuration set");
    if (s) {
      std::lock_guard<std::mutex> lock(mu_);
      destinations_.erase(n);
      ++destinations_version_;
    }
    return s;
  }
  Result<store::Listing<store::ConfigurationSet>> list_configuration_sets(
      const store::Page& p) override {
    return list(sets_, p);
  }

  // Event destinations, per set by name.
  Status create_event_destination(const store::EventDestination& d) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!sets_.count(d.configuration_set)) return no_set(d.configuration_set);
    auto& of_set = destinations_[d.configuration_set];
    if (of_set.count(d.name)) {
      return {StatusCode::kAlreadyExists, "event destination " + d.name + " exists"};
    }
    of_set[d.name] = d;
    ++destinations_version_;
    return Status::ok();
  }
  Status update_event_destination(const store::EventDestination& d) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!sets_.count(d.configuration_set)) return no_set(d.configuration_set);
    auto& of_set = destinations_[d.configuration_set];
    auto it = of_set.find(d.name);
    if (it == of_set.end()) return Status::not_found("no event destination " + d.name);
    it->second = d;
    ++destinations_version_;
    return Status::ok();
  }
  Status delete_event_destination(const std::string& set, const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!sets_.count(set)) return no_set(set);
    if (!destinations_[set].erase(name)) return Status::not_found("no event destination " + name);
    ++destinations_version_;
    return Status::ok();
  }
  Result<std::vector<store::EventDestination>> list_event_destinations(
      const std::string& set) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!sets_.count(set)) return no_set(set);
    std::vector<store::EventDestination> out;
    for (const auto& [n, d] : destinations_[set]) out.push_back(d);
    return out;
  }
  Result<std::vector<store::EventDestination>> list_event_destinations_all() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<store::EventDestination> out;
    for (const auto& [set, of_set] : destinations_) {
      for (const auto& [n, d] : of_set) out.push_back(d);
    }
    return out;
  }
  Result<uint64_t> event_destinations_version() override {
    std::lock_guard<std::mutex> lock(mu_);
    return destinations_version_;
  }

  // Account.
  Result<store::Account> account() override {
    std::lock_guard<std::mutex> lock(mu_);
    return account_;
  }
  Status put_account(const store::Account& a) override {
    std::lock_guard<std::mutex> lock(mu_);
    account_ = a;
    return Status::ok();
  }

  // Suppression list.
  Status put_suppressed(const store::SuppressedDestination& d) override {
    std::lock_guard<std::mutex> lock(mu_);
    suppressed_[lower(d.email)] = d;
    return Status::ok();
  }
  Result<store::SuppressedDestination> get_suppressed(const std::string& e) override {
    return get(suppressed_, lower(e), "suppressed address");
  }
  Status delete_suppressed(const std::string& e) override {
    return erase(suppressed_, lower(e), "suppressed address");
  }
  Result<store::Listing<store::SuppressedDestination>> list_suppressed(
      const std::vector<std::string>& reasons, int64_t start_ms, int64_t end_ms,
      const store::Page& p) override {
    std::map<std::string, store::SuppressedDestination> matching;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [k, d] : suppressed_) {
        if (!reasons.empty() &&
            std::find(reasons.begin(), reasons.end(), d.reason) == reasons.end()) {
          continue;
        }
        if (start_ms && d.last_update_ms < start_ms) continue;
        if (end_ms && d.last_update_ms > end_ms) continue;
        matching[k] = d;
      }
    }
    return list(matching, p);
  }
  Result<std::vector<bool>> are_suppressed(const std::vector<std::string>& emails) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<bool> out;
    for (const auto& e : emails) out.push_back(suppressed_.count(lower(e)) > 0);
    return out;
  }

  // Quota.
  Status record_sent(int64_t, uint64_t count) override {
    std::lock_guard<std::mutex> lock(mu_);
    sent_ += count;
    return Status::ok();
  }
  Result<uint64_t> sent_last_24_hours(int64_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }

 private:
  static Status no_set(const std::string& name) {
    return Status::not_found("no configuration set " + name);
  }
  static std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  template <typename T>
  Status create(std::map<std::string, T>& m, const std::string& k, const T& v, const char* what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (m.count(k)) return {StatusCode::kAlreadyExists, std::string(what) + " " + k + " exists"};
    m[k] = v;
    return Status::ok();
  }
  template <typename T>
  Result<T> get(std::map<std::string, T>& m, const std::string& k, const char* what) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = m.find(k);
    if (it == m.end()) return Status::not_found(std::string("no ") + what + " " + k);
    return it->second;
  }
  template <typename T>
  Status update(std::map<std::string, T>& m, const std::string& k, const T& v, const char* what) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = m.find(k);
    if (it == m.end()) return Status::not_found(std::string("no ") + what + " " + k);
    it->second = v;
    return Status::ok();
  }
  template <typename T>
  Status erase(std::map<std::string, T>& m, const std::string& k, const char* what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!m.erase(k)) return Status::not_found(std::string("no ") + what + " " + k);
    return Status::ok();
  }
  // Token: the index of the next item, as decimal text.
  template <typename T>
  Result<store::Listing<T>> list(std::map<std::string, T>& m, const store::Page& p) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t start = 0;
    if (!p.token.empty()) {
      if (p.token.find_first_not_of("0123456789") != std::string::npos || p.token.size() > 9) {
        return Status::invalid("bad token");
      }
      start = std::stoul(p.token);
    }
    store::Listing<T> out;
    size_t i = 0;
    for (const auto& [k, v] : m) {
      if (i++ < start) continue;
      if (out.items.size() == p.size) {
        out.next_token = std::to_string(start + p.size);
        break;
      }
      out.items.push_back(v);
    }
    return out;
  }

  std::mutex mu_;
  std::map<std::string, store::AccessKey> keys_;
  std::map<std::string, store::EmailTemplate> templates_;
  std::map<std::string, store::Identity> identities_;
  std::map<std::string, store::ConfigurationSet> sets_;
  std::map<std::string, store::SuppressedDestination> suppressed_;
  std::map<std::string, std::map<std::string, store::EventDestination>> destinations_;
  uint64_t destinations_version_ = 0;
  store::Account account_;
  uint64_t sent_ = 0;
};

}  // namespace magnetic::api::testing
