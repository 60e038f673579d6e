// Named network namespaces, made and removed the way `ip netns add/del` does:
// a namespace lives as long as its nsfs file is bind-mounted on a path in a
// shared run directory, so other mount namespaces see it too.
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "rtnl.h"

namespace berth::rtnl {
namespace {

std::string PathArg(const Napi::CallbackInfo& info, const char* fn) {
  if (!info[0].IsString()) ThrowType(info.Env(), std::string(fn) + "(path): path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.size() < 2 || path[0] != '/' || path.back() == '/' || path.find('\0') != std::string::npos)
    ThrowType(info.Env(), std::string(fn) + "(path): '" + path + "' must be an absolute path such as /var/run/netns/NAME");
  return path;
}

void MakeDirs(const std::string& dir, const std::string& what) {
  for (size_t at = dir.find('/', 1);; at = dir.find('/', at + 1)) {
    std::string part = dir.substr(0, at);
    if (mkdir(part.c_str(), 0755) < 0 && errno != EEXIST) ThrowSys(errno, "mkdir", what + ": cannot create '" + part + "'");
    if (at == std::string::npos) break;
  }
}

// iproute2's rule: the run directory must be a shared mount point, so a
// namespace mounted there propagates to (and from) other mount namespaces.
void EnsureSharedDir(const std::string& dir, const std::string& what) {
  bool bound = false;
  while (mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) < 0) {
    // EINVAL: not a mount point yet; make it one by binding it onto itself.
    if (errno != EINVAL || bound) ThrowSys(errno, "mount", what + ": cannot make '" + dir + "' a shared mount");
    if (mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) < 0)
      ThrowSys(errno, "mount", what + ": cannot bind-mount '" + dir + "' onto itself");
    bound = true;
  }
}

// Returns the thread to the namespace it came from, whatever happens.
class ReturnToNetns {
 public:
  explicit ReturnToNetns(const std::string& what) {
    fd_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) ThrowSys(errno, "open", what + ": cannot open /proc/thread-self/ns/net");
  }
  ~ReturnToNetns() {
    if (setns(fd_, CLONE_NEWNET) < 0) {
      // See NetnsScope: a pool thread left in the new namespace would
      // misdirect every later call that runs on it.
      perror("berth: cannot return worker thread to its network namespace");
      abort();
    }
    close(fd_);
  }
  ReturnToNetns(const ReturnToNetns&) = delete;
  ReturnToNetns& operator=(const ReturnToNetns&) = delete;

 private:
  int fd_ = -1;
};

void LoopbackUp(const std::string& what) {
  RtnlSocket sk;
  ifinfomsg ifi = {};
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  NlMsg req(RTM_NEWLINK, 0, &ifi, sizeof(ifi));
  req.PutStr(IFLA_IFNAME, "lo");
  sk.Request(req, what + ": bring 'lo' up");
}

void CreateNetns(const std::string& path) {
  std::string what = "create network namespace '" + path + "'";
  std::string dir = path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  MakeDirs(dir, what);
  EnsureSharedDir(dir, what);
  int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) ThrowSys(errno, "open", what + ": cannot create '" + path + "'");
  close(fd);
  try {
    ReturnToNetns back(what);
    // unshare() moves only this worker thread into the new namespace.
    if (unshare(CLONE_NEWNET) < 0) ThrowSys(errno, "unshare", what);
    if (mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) < 0)
      ThrowSys(errno, "mount", what + ": cannot bind-mount the namespace onto '" + path + "'");
    LoopbackUp(what);
  } catch (...) {
    umount2(path.c_str(), MNT_DETACH);
    unlink(path.c_str());
    throw;
  }
}

// false: there was nothing at @path.
bool DeleteNetns(const std::string& path) {
  std::string what = "delete network namespace '" + path + "'";
  // EINVAL: not a mount point (a stale file); remove it all the same.
  if (umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL) {
    if (errno == ENOENT) return false;
    ThrowSys(errno, "umount2", what);
  }
  if (unlink(path.c_str()) < 0) {
    if (errno == ENOENT) return false;
    ThrowSys(errno, "unlink", what);
  }
  return true;
}

// netnsCreate(path): a new network namespace mounted at @path, 'lo' up.
Napi::Value NetnsCreate(const Napi::CallbackInfo& info) {
  std::string path = PathArg(info, "netnsCreate");
  // Its directory becomes a shared mount point: never do that to "/".
  if (path.rfind('/') == 0)
    ThrowType(info.Env(), "netnsCreate(path): '" + path + "' must be inside a directory such as /var/run/netns");
  return RunAsync(info.Env(), "berth.netlink.netnsCreate", [path] { CreateNetns(path); }, Undefined);
}

// netnsDelete(path) -> false when there was none.
Napi::Value NetnsDelete(const Napi::CallbackInfo& info) {
  std::string path = PathArg(info, "netnsDelete");
  auto existed = std::make_shared<bool>(false);
  return RunAsync(info.Env(), "berth.netlink.netnsDelete", [path, existed] { *existed = DeleteNetns(path); },
                  [existed](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, *existed); });
}

}  // namespace

void InitNetns(Napi::Env env, Napi::Object nl) {
  nl.Set("netnsCreate", Napi::Function::New(env, NetnsCreate));
  nl.Set("netnsDelete", Napi::Function::New(env, NetnsDelete));
}

}  // namespace berth::rtnl
