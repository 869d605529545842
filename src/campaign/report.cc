#include "campaign/report.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace magnetic::campaign {
namespace {
constexpr size_t kMaxInvalidRowsInReport = 10000;
}

Result<SendReport> build_report(spool::Spool& spool, const std::string& campaign_id,
                                double elapsed_s, uint64_t delivered_this_run) {
  auto counts = spool.counts(campaign_id);
  if (!counts) return counts.status();
  auto invalid = spool.invalid_rows(campaign_id, kMaxInvalidRowsInReport);
  if (!invalid) return invalid.status();
  auto duplicates = spool.counter(campaign_id, "possible_duplicates");
  const auto& t = counts->total;

  SendReport report;
  report.campaign_id = campaign_id;
  report.finished = t.pending == 0 && t.deferred == 0;
  double mps = elapsed_s > 0 ? static_cast<double>(delivered_this_run) / elapsed_s : 0;

  nlohmann::json j;
  j["campaign"] = campaign_id;
  j["finished"] = report.finished;
  j["recipients"] = t.recipients;
  j["delivered"] = t.delivered;
  j["deferred"] = t.deferred;
  j["bounced"] = t.bounced;
  j["expired"] = t.expired;
  j["failed"] = t.failed;
  j["pending"] = t.pending;
  j["invalid"] = counts->invalid;
  j["invalid_rows"] = nlohmann::json::array();
  for (const auto& r : *invalid) j["invalid_rows"].push_back({{"row", r.row}, {"error", r.error}});
  j["bounced_by_reason"] = counts->bounced_by_reason;
  j["deferred_by_reason"] = counts->deferred_by_reason;
  j["expired_by_reason"] = counts->expired_by_reason;
  j["by_domain"] = nlohmann::json::object();
  for (const auto& [domain, d] : counts->by_domain) {
    j["by_domain"][domain] = {{"recipients", d.recipients}, {"delivered", d.delivered},
                              {"deferred", d.deferred},     {"bounced", d.bounced},
                              {"expired", d.expired},       {"failed", d.failed},
                              {"pending", d.pending}};
  }
  j["possible_duplicates"] = duplicates ? *duplicates : 0;
  j["elapsed_s"] = static_cast<double>(static_cast<int64_t>(elapsed_s * 1000)) / 1000;
  j["messages_per_second"] = static_cast<double>(static_cast<int64_t>(mps * 10)) / 10;
  report.json = j;

  std::string& out = report.table;
  out += fmt::format("campaign {}{}\n\n", campaign_id,
                     report.finished ? "" : " (not finished: run again with --resume)");
  out += fmt::format("  {:<12}{:>10}\n", "recipients", t.recipients);
  out += fmt::format("  {:<12}{:>10}\n", "delivered", t.delivered);
  out += fmt::format("  {:<12}{:>10}\n", "bounced", t.bounced);
  for (const auto& [reason, n] : counts->bounced_by_reason) {
    out += fmt::format("    {:<18}{:>6}\n", reason, n);
  }
  out += fmt::format("  {:<12}{:>10}\n", "expired", t.expired);
  for (const auto& [reason, n] : counts->expired_by_reason) {
    out += fmt::format("    {:<18}{:>6}\n", reason, n);
  }
  out += fmt::format("  {:<12}{:>10}\n", "deferred", t.deferred);
  for (const auto& [reason, n] : counts->deferred_by_reason)
    out += fmt::format("    {:<18}{:>6}\n", reason, n);
  out += fmt::format("  {:<12}{:>10}\n", "failed", t.failed);
  if (t.pending) out += fmt::format("  {:<12}{:>10}\n", "pending", t.pending);
  out += fmt::format("  {:<12}{:>10}\n", "invalid", counts->invalid);
  for (size_t i = 0; i < invalid->size() && i < 10; ++i) out += "    " + (*invalid)[i].error + "\n";
  if (counts->invalid > 10)
    out += fmt::format("    ... {} more in the JSON report\n", counts->invalid - 10);
  if (j["possible_duplicates"].get<int64_t>() > 0) {
    out += fmt::format("  {:<12}{:>10}  (sent, reply lost before it was recorded)\n", "duplicates?",
                       j["possible_duplicates"].get<int64_t>());
  }
  out += "\n";
  out += fmt::format("  {:<28}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n", "domain", "recipients",
                     "delivered", "bounced", "expired", "deferred", "failed");
  size_t shown = 0;
  for (const auto& [domain, d] : counts->by_domain) {
    if (++shown > 50) {
      out +=
          fmt::format("  ... {} more domains in the JSON report\n", counts->by_domain.size() - 50);
      break;
    }
    out += fmt::format("  {:<28}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n", domain, d.recipients,
                       d.delivered, d.bounced, d.expired, d.deferred, d.failed);
  }
  out += fmt::format("\n  elapsed {:.2f} s, {:.1f} messages per second\n", elapsed_s, mps);
  return report;
}

Status write_report(const SendReport& report, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::io_error("cannot write report '" + path + "': " + std::strerror(errno));
  out << report.json.dump(2) << "\n";
  out.close();
  if (!out) return Status::io_error("cannot write report '" + path + "'");
  return Status::ok();
}

}  // namespace magnetic::campaign
