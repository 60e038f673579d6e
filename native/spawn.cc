// Starting a sandbox's process without forking berthd: posix_spawn (glibc
// clones with CLONE_VM | CLONE_VFORK, so nothing of berthd's address space is
// copied; node's child_process forks, about 5 ms at berthd's size, on every
// attach). The child gets a session of its own, default signal dispositions,
// no blocked signals, /dev/null as stdin and the log file as stdout and
// stderr. It stays berthd's child: childReap() collects its exit status
// (berthd calls it on SIGCHLD; libuv reaps only the children it started).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "errors.h"
#include "wraps.h"

namespace berth {
namespace {

std::vector<std::string> StringList(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) ThrowType(o.Env(), std::string("spawnDetached: option '") + key + "' must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value s = a.Get(i);
    if (!s.IsString()) ThrowType(o.Env(), std::string("spawnDetached: ") + key + "[" + std::to_string(i) + "] is not a string");
    std::string str = s.As<Napi::String>().Utf8Value();
    if (str.find('\0') != std::string::npos) ThrowType(o.Env(), std::string("spawnDetached: ") + key + "[" + std::to_string(i) + "] contains a NUL byte");
    out.push_back(std::move(str));
  }
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// spawnDetached({file, argv, env, output}) -> pid. @file: an absolute path;
// @env: "K=V" strings; @output: an open descriptor for stdout and stderr.
Napi::Value SpawnDetached(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "spawnDetached({file, argv, env, output}): an options object is required");
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value f = o.Get("file");
  if (!f.IsString()) ThrowType(env, "spawnDetached: option 'file' must be a string");
  std::string file = f.As<Napi::String>().Utf8Value();
  if (file.empty() || file[0] != '/') ThrowType(env, "spawnDetached: file '" + file + "' is not an absolute path");
  std::vector<std::string> argv = StringList(o, "argv");
  if (argv.empty()) ThrowType(env, "spawnDetached: argv is empty");
  std::vector<std::string> envs = StringList(o, "env");
  Napi::Value out = o.Get("output");
  if (!out.IsNumber() || out.As<Napi::Number>().Int32Value() < 0) ThrowType(env, "spawnDetached: option 'output' must be an open file descriptor");
  int outFd = out.As<Napi::Number>().Int32Value();
  std::string what = "start '" + file + "'";

  try {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, outFd, 1);
    posix_spawn_file_actions_adddup2(&fa, outFd, 2);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    auto cargv = CStrings(argv);
    auto cenv = CStrings(envs);
    pid_t pid = 0;
    int err = posix_spawn(&pid, file.c_str(), &fa, &attr, cargv.data(), cenv.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (err) ThrowSys(err, "posix_spawn", what);
    return Napi::Number::New(env, pid);
  } catch (const SysError& e) {
    throw ToJsError(env, e);
  }
}

// childReap(pid) -> null while it runs, else {code, signal} (both null when
// it is not berthd's child, or was collected already).
Napi::Value ChildReap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || info[0].As<Napi::Number>().Int32Value() <= 0) ThrowType(env, "childReap(pid): pid must be a positive number");
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  siginfo_t si = {};
  int r;
  do r = waitid(P_PID, pid, &si, WEXITED | WNOHANG);
  while (r < 0 && errno == EINTR);
  Napi::Object res = Napi::Object::New(env);
  if (r < 0) {
    res.Set("code", env.Null());
    res.Set("signal", env.Null());
    return res;
  }
  if (si.si_pid == 0) return env.Null();
  bool exited = si.si_code == CLD_EXITED;
  res.Set("code", exited ? Napi::Number::New(env, si.si_status) : env.Null());
  res.Set("signal", exited ? env.Null() : Napi::Number::New(env, si.si_status));
  return res;
}

}  // namespace

void InitSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnDetached", Napi::Function::New(env, SpawnDetached));
  exports.Set("childReap", Napi::Function::New(env, ChildReap));
}

}  // namespace berth
