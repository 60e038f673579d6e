// Errors that cross from native code to JavaScript.
#pragma once
#include <napi.h>

#include <string>

namespace berth {

// A failed system or libbpf call, raised on a worker thread (never touching JS)
// and turned into a JS Error with code, errno and syscall on the main thread.
struct SysError {
  int err = 0;           // positive errno
  std::string syscall;   // the call that failed, e.g. "bpf_map_update_elem"
  std::string what;      // what berth was doing, with the values involved
  std::string log;       // trimmed verifier log, when a program failed to load
};

[[noreturn]] void ThrowSys(int err, std::string syscall, std::string what, std::string log = "");

// Throws SysError when ret < 0 (libbpf's -errno convention), else returns ret.
int CheckRet(int ret, const char* syscall, const std::string& what);

Napi::Error ToJsError(Napi::Env env, const SysError& e);

// "ENOENT" for ENOENT; "E<n>" when the C library has no name.
std::string ErrnoName(int err);

// Argument validation on the JS thread: throws a TypeError naming the bad value.
[[noreturn]] void ThrowType(Napi::Env env, const std::string& message);

}  // namespace berth
