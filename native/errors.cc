#include "errors.h"

#include <string.h>

#include "libbpf_log.h"

namespace berth {

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}

void ThrowSys(int err, std::string syscall, std::string what, std::string log) {
  throw SysError{err, std::move(syscall), std::move(what), std::move(log)};
}

int CheckRet(int ret, const char* syscall, const std::string& what) {
  if (ret < 0) ThrowSys(-ret, syscall, what);
  return ret;
}

Napi::Error ToJsError(Napi::Env env, const SysError& e) {
  std::string msg = e.what + ": " + strerror(e.err) + " (" + ErrnoName(e.err) + ")";
  if (!e.log.empty()) msg += "; verifier: " + VerifierReason(e.log);
  Napi::Error js = Napi::Error::New(env, msg);
  js.Set("code", Napi::String::New(env, ErrnoName(e.err)));
  js.Set("errno", Napi::Number::New(env, e.err));
  js.Set("syscall", Napi::String::New(env, e.syscall));
  if (!e.log.empty()) js.Set("verifierLog", Napi::String::New(env, e.log));
  return js;
}

void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

}  // namespace berth
