// One small promise-returning worker for every blocking call: `work` runs on
// the libuv pool and must not touch JS; `done` builds the result on the main
// thread. libbpf's log printed during `work` is captured and handed to the
// JS logger set with setLogger(); a SysError thrown by `work` rejects the
// promise with a JS error carrying code, errno, syscall (and verifierLog).
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <vector>

#include "errors.h"
#include "libbpf_log.h"

namespace berth {

using Work = std::function<void()>;
using Done = std::function<Napi::Value(Napi::Env)>;
using Finally = std::function<void()>;

// Starts @work and returns the promise that @done (or an error) settles.
// @fin, when given, runs on the main thread after either outcome.
Napi::Promise RunAsync(Napi::Env env, const char* name, Work work, Done done, Finally fin = nullptr);

// Hands captured libbpf lines to the JS logger, if one is set.
void ForwardLog(Napi::Env env, const std::vector<LogLine>& lines);

// The addon's per-environment state: constructors and the JS logger.
struct AddonData {
  Napi::FunctionReference object_ctor;
  Napi::FunctionReference map_ctor;
  Napi::FunctionReference program_ctor;
  Napi::FunctionReference link_ctor;
  Napi::FunctionReference logger;
};
AddonData& Data(Napi::Env env);

// An owned file descriptor, shared between a JS object and the workers using
// it, so closing the JS object never frees a descriptor a worker still reads.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};
using FdPtr = std::shared_ptr<Fd>;

// Reads a Buffer argument (or throws a TypeError naming @what).
std::vector<uint8_t> BufferArg(const Napi::Value& v, const std::string& what);
std::string StringOpt(const Napi::Object& o, const char* key, const std::string& dflt = "");
int64_t IntOpt(const Napi::Object& o, const char* key, int64_t dflt);

}  // namespace berth
