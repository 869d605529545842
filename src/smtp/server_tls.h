// Internal to smtp/: the TLS side of the SMTP servers (the capture sink and the submission
// server). Every server context has TLS 1.2 as its floor, no compression and no renegotiation.
// Without a configured certificate a server presents a self-signed one for its hostname:
// EC P-256, CN and subjectAltName DNS both the hostname.
#pragma once

#include <utility>  // before Asio: Boost 1.74's headers use std::exchange without it

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "base/status.h"

namespace magnetic::smtp::internal {

// A context whose self-signed certificate for hostname is made now, valid from an hour ago for
// `days` days, and kept in memory only.
Result<std::shared_ptr<boost::asio::ssl::context>> self_signed_tls_context(
    const std::string& hostname, int days);

// A context for a long-running server:
//  - cert_file and key_file both exist: they are loaded (PEM; the certificate file may hold the
//    chain after the leaf) and must match; a key readable by group or others and a certificate
//    out of its validity are logged as warnings (they still load).
//  - neither exists, or both paths are empty: a self-signed certificate valid for 825 days (the
//    most some clients accept) is made and, when the paths are set, written there so the next
//    start presents the same one. The key file gets mode 0600. Both are written to temporary
//    files first and linked into place, so a file that exists is never replaced and a crash
//    never leaves half a key; missing parent folders are created.
//  - only one of them exists, or only one path is set: an invalid-argument error naming the
//    field, since making a new pair would leave the other file stale.
// Errors name the field (tls_cert_file, tls_key_file) and the path.
Result<std::shared_ptr<boost::asio::ssl::context>> server_tls_context(const std::string& hostname,
                                                                      const std::string& cert_file,
                                                                      const std::string& key_file);

}  // namespace magnetic::smtp::internal
