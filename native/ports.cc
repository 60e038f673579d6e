// Holding published host ports: a socket bound to the port and never
// listened on, as Docker does, so that no other program can take a port
// berth publishes (its bind fails with EADDRINUSE), while a connection that
// reaches the host port itself is refused by the kernel. Bound on the
// JavaScript thread: socket() and bind() do not block.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "wraps.h"

namespace berth {
namespace {

// portHold({proto: 'tcp'|'udp', address: '' | IPv4 | IPv6, port, reuse?}) -> fd
// reuse: SO_REUSEADDR, for a probe that a TIME_WAIT connection must not fail
// (a hold has none: a program with SO_REUSEADDR could bind beside it).
Napi::Value PortHold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "portHold({proto, address, port}): an options object is required");
  Napi::Object o = info[0].As<Napi::Object>();
  std::string proto = o.Get("proto").ToString().Utf8Value();
  std::string address = o.Has("address") ? o.Get("address").ToString().Utf8Value() : "";
  int port = o.Get("port").ToNumber().Int32Value();
  bool reuse = o.Has("reuse") && o.Get("reuse").ToBoolean().Value();
  if (proto != "tcp" && proto != "udp") ThrowType(env, "portHold: proto '" + proto + "' is neither tcp nor udp");
  if (port < 1 || port > 65535) ThrowType(env, "portHold: port " + std::to_string(port) + " is out of range");
  int type = proto == "tcp" ? SOCK_STREAM : SOCK_DGRAM;
  std::string what = "hold host port " + (address.empty() ? std::string("*") : address) + ":" + std::to_string(port) + "/" + proto;

  struct sockaddr_in6 a6 = {};
  struct sockaddr_in a4 = {};
  bool v4 = !address.empty() && address.find(':') == std::string::npos;
  if (v4) {
    a4.sin_family = AF_INET;
    a4.sin_port = htons(port);
    if (inet_pton(AF_INET, address.c_str(), &a4.sin_addr) != 1) ThrowType(env, "portHold: '" + address + "' is not an IP address");
  } else {
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(port);
    if (!address.empty() && inet_pton(AF_INET6, address.c_str(), &a6.sin6_addr) != 1)
      ThrowType(env, "portHold: '" + address + "' is not an IP address");
  }
  try {
    int fd = socket(v4 ? AF_INET : AF_INET6, type | SOCK_CLOEXEC, 0);
    if (fd < 0) ThrowSys(errno, "socket", what);
    if (reuse) {
      int on = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    }
    if (!v4 && address.empty()) {
      // Every address of both families, as a publish without an address means.
      int off = 0;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    }
    int r = v4 ? bind(fd, (struct sockaddr*)&a4, sizeof(a4)) : bind(fd, (struct sockaddr*)&a6, sizeof(a6));
    if (r < 0) {
      int err = errno;
      close(fd);
      ThrowSys(err, "bind", what);
    }
    return Napi::Number::New(env, fd);
  } catch (const SysError& e) {
    throw ToJsError(env, e);
  }
}

Napi::Value PortRelease(const Napi::CallbackInfo& info) {
  int fd = info[0].ToNumber().Int32Value();
  if (fd > 2) close(fd);
  return info.Env().Undefined();
}

// Raises the open-file soft limit to the hard one (a socket a held port); returns it.
Napi::Value RaiseNofile(const Napi::CallbackInfo& info) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return Napi::Number::New(info.Env(), (double)rl.rlim_cur);
}

}  // namespace

void InitPorts(Napi::Env env, Napi::Object exports) {
  exports.Set("portHold", Napi::Function::New(env, PortHold));
  exports.Set("portRelease", Napi::Function::New(env, PortRelease));
  exports.Set("raiseNofile", Napi::Function::New(env, RaiseNofile));
}

}  // namespace berth
