#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cli/commands.h"
#include "dkim/signer.h"

namespace magnetic::cli {

int keygen_command(const KeygenArgs& args) {
  dkim::Algorithm algorithm;
  if (args.algorithm == "ed25519") {
    algorithm = dkim::Algorithm::kEd25519Sha256;
  } else if (args.algorithm == "rsa") {
    algorithm = dkim::Algorithm::kRsaSha256;
  } else {
    std::fprintf(stderr, "magnetic dkim keygen: --algorithm must be rsa or ed25519\n");
    return 1;
  }
  auto key = dkim::DkimKey::generate(algorithm, args.bits);
  if (!key) {
    std::fprintf(stderr, "magnetic dkim keygen: %s\n", key.status().message().c_str());
    return 1;
  }
  // The private key is written owner-only, and never over an existing file.
  int fd = ::open(args.out.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "magnetic dkim keygen: cannot create '%s': %s\n", args.out.c_str(),
                 std::strerror(errno));
    return 1;
  }
  std::string pem = key->private_pem();
  bool ok = ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok) {
    std::fprintf(stderr, "magnetic dkim keygen: writing '%s' failed\n", args.out.c_str());
    return 1;
  }
  // A TXT record holds strings of at most 255 octets; longer values are split.
  std::string value = key->dns_txt_value();
  std::string quoted;
  for (size_t i = 0; i < value.size(); i += 255) {
    if (!quoted.empty()) quoted += " ";
    quoted += "\"" + value.substr(i, 255) + "\"";
  }
  std::printf("%s._domainkey.%s. IN TXT %s\n", args.selector.c_str(), args.domain.c_str(),
              quoted.c_str());
  std::fprintf(stderr, "private key written to %s; publish the TXT record above\n",
               args.out.c_str());
  return 0;
}

}  // namespace magnetic::cli
