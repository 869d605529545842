// The campaign report: counts from the spool, as a table for people and JSON for tools.
//
// recipients counts accepted (valid, distinct) recipients; every one of them is in exactly one
// of delivered, bounced, expired, failed, deferred (still waiting for a retry) and pending
// (never attempted, after a stop). invalid counts rows of the list that were refused, listed in
// invalid_rows with their row number and why.
#pragma once

#include <string>

#include "base/status.h"
#include "campaign/send.h"
#include "spool/spool.h"

namespace magnetic::campaign {

// elapsed_s and delivered_this_run describe this run (a resumed campaign counts from the resume).
Result<SendReport> build_report(spool::Spool& spool, const std::string& campaign_id,
                                double elapsed_s, uint64_t delivered_this_run);

Status write_report(const SendReport& report, const std::string& path);

}  // namespace magnetic::campaign
