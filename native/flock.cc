// An exclusive flock(2) held on a file or directory for as long as the
// descriptor stays open: the kernel drops it when the holder exits, however
// it exits, so a dead holder never blocks the next one. berthd holds one on
// its bpffs pin directory (a bpffs takes directories, not files). Opened and
// locked on the JavaScript thread: LOCK_NB never blocks.
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "wraps.h"

namespace berth {
namespace {

// flockHold(path) -> fd, or null when another descriptor holds the lock.
Napi::Value FlockHold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "flockHold(path): path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  try {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) ThrowSys(errno, "open", "open '" + path + "' to lock it");
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
      int err = errno;
      close(fd);
      if (err == EWOULDBLOCK) return env.Null();
      ThrowSys(err, "flock", "lock '" + path + "'");
    }
    return Napi::Number::New(env, fd);
  } catch (const SysError& e) {
    throw ToJsError(env, e);
  }
}

Napi::Value FlockRelease(const Napi::CallbackInfo& info) {
  int fd = info[0].ToNumber().Int32Value();
  if (fd > 2) close(fd);
  return info.Env().Undefined();
}

}  // namespace

void InitFlock(Napi::Env env, Napi::Object exports) {
  exports.Set("flockHold", Napi::Function::New(env, FlockHold));
  exports.Set("flockRelease", Napi::Function::New(env, FlockRelease));
}

}  // namespace berth
