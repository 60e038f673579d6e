// Per-namespace sysctls (net.*). A /proc/sys/net file shows the namespace of
// the task that opens it, so the worker thread opens it from inside.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "errors.h"
#include "rtnl.h"

namespace berth::rtnl {

namespace {
std::string KeyPath(std::string key) {
  for (char& c : key)
    if (c == '.') c = '/';
  return "/proc/sys/" + key;
}
}  // namespace

int WriteSysctlHere(const std::string& key, const std::string& value, const std::string& what, bool enoent_ok) {
  std::string path = KeyPath(key);
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && enoent_ok) return ENOENT;
  if (fd < 0) ThrowSys(errno, "open", what + ": cannot open " + path);
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n < 0) ThrowSys(err, "write", what);
  if (static_cast<size_t>(n) != value.size()) ThrowSys(EIO, "write", what + ": short write");
  return 0;
}

// "net.ipv4.ip_forward" -> "/proc/sys/net/ipv4/ip_forward", refusing
// anything that could name a file outside /proc/sys/net.
std::string CheckSysctlKey(Napi::Env env, const std::string& key, const char* fn) {
  bool ok = key.size() > 4 && key.compare(0, 4, "net.") == 0 && key.back() != '.';
  for (size_t i = 0; ok && i < key.size(); i++) {
    char c = key[i];
    ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || (c == '.' && key[i + 1] != '.');
  }
  if (!ok)
    ThrowType(env, std::string(fn) + ": sysctl key '" + key +
                       "' must start with 'net.' and use only a-z, 0-9, '_', '-' and single '.' separators");
  return key;
}

namespace {

std::string KeyArg(const Napi::Object& o, const char* fn) {
  return CheckSysctlKey(o.Env(), RequiredString(o, "key"), fn);
}

Napi::Value SysctlWrite(const Napi::CallbackInfo& info) {
  Napi::Object o = OptionsArg(info, "sysctlWrite");
  std::string netns = NetnsOpt(o, "netns");
  std::string key = KeyArg(o, "sysctlWrite");
  Napi::Value v = o.Get("value");
  if (!v.IsString()) ThrowType(info.Env(), "sysctlWrite: option 'value' must be a string");
  std::string value = v.As<Napi::String>().Utf8Value();
  return RunAsync(info.Env(), "berth.netlink.sysctlWrite",
      [netns, key, value] {
        std::string what = "set sysctl " + key + " = '" + value + "'" + InNs(netns);
        EnterNetns ns(netns, what);
        WriteSysctlHere(key, value, what, false);
      },
      Undefined);
}

Napi::Value SysctlRead(const Napi::CallbackInfo& info) {
  Napi::Object o = OptionsArg(info, "sysctlRead");
  std::string netns = NetnsOpt(o, "netns");
  std::string key = KeyArg(o, "sysctlRead");
  auto value = std::make_shared<std::string>();
  return RunAsync(info.Env(), "berth.netlink.sysctlRead",
      [netns, key, value] {
        std::string what = "read sysctl " + key + InNs(netns);
        EnterNetns ns(netns, what);
        std::string path = KeyPath(key);
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) ThrowSys(errno, "open", what + ": cannot open " + path);
        char buf[4096];
        for (;;) {
          ssize_t n = read(fd, buf, sizeof(buf));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            int err = errno;
            close(fd);
            ThrowSys(err, "read", what);
          }
          if (n == 0) break;
          value->append(buf, n);
        }
        close(fd);
        while (!value->empty() && value->back() == '\n') value->pop_back();
      },
      [value](Napi::Env env) -> Napi::Value { return Napi::String::New(env, *value); });
}

}  // namespace

void InitSysctl(Napi::Env env, Napi::Object nl) {
  nl.Set("sysctlWrite", Napi::Function::New(env, SysctlWrite));
  nl.Set("sysctlRead", Napi::Function::New(env, SysctlRead));
}

}  // namespace berth::rtnl
