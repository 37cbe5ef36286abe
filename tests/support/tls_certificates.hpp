#pragma once
// Test helper: certificates for TLS tests, made with openssl (Debian package "openssl") in a
// temporary directory of their own: a CA, a server certificate for 127.0.0.1 and a client
// certificate (both signed by the CA), and a second CA that signed neither.

#include <cstdlib>
#include <fstream>
#include <string>

#include "child_process.hpp"

namespace custody_test {

class TlsCertificates {
 public:
  TlsCertificates() {
    const std::string& d = dir_.path();
    const auto self_signed = [&](const std::string& name) {
      return run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + name +
                 " -keyout " + d + "/" + name + ".key -out " + d + "/" + name + ".pem");
    };
    const auto signed_by_ca = [&](const std::string& name, const std::string& extension) {
      std::ofstream(d + "/" + name + ".ext", std::ios::binary) << extension;
      return run("openssl req -newkey rsa:2048 -nodes -subj /CN=" + name + " -keyout " + d + "/" +
                 name + ".key -out " + d + "/" + name + ".csr") &&
             run("openssl x509 -req -in " + d + "/" + name + ".csr -CA " + d + "/ca.pem -CAkey " +
                 d + "/ca.key -CAcreateserial -days 2 -extfile " + d + "/" + name + ".ext -out " +
                 d + "/" + name + ".pem");
    };
    made_ = !d.empty() && self_signed("ca") && self_signed("other-ca") &&
            signed_by_ca("server", "subjectAltName=IP:127.0.0.1\n") &&
            signed_by_ca("client", "extendedKeyUsage=clientAuth\n");
  }
  /// Every file was made (openssl is installed and worked).
  bool made() const { return made_; }
  /// One of ca.pem/.key, other-ca.pem/.key, server.pem/.key, client.pem/.key.
  std::string path(const std::string& file) const { return dir_.path() + "/" + file; }

 private:
  // Runs `command` through the shell, quietly; true when it exits 0.
  static bool run(const std::string& command) {
    return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
  }

  TempDir dir_;
  bool made_ = false;
};

}  // namespace custody_test
