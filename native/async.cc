#include "async.h"

#include <unistd.h>

namespace berth {
namespace {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name, Work work, Done done, Finally fin)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)),
        fin_(std::move(fin)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    LibbpfLogCapture capture;
    try {
      work_();
    } catch (const SysError& e) {
      failed_ = true;
      error_ = e;
    } catch (const std::exception& e) {
      failed_ = true;
      error_ = SysError{EIO, "internal", e.what(), ""};
    }
    log_ = std::move(capture.lines);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (fin_) fin_();
    ForwardLog(env, log_);
    if (failed_) {
      deferred_.Reject(ToJsError(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(done_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

  void OnError(const Napi::Error& e) override {
    if (fin_) fin_();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  Finally fin_;
  bool failed_ = false;
  SysError error_;
  std::vector<LogLine> log_;
};

}  // namespace

Napi::Promise RunAsync(Napi::Env env, const char* name, Work work, Done done, Finally fin) {
  auto* w = new PromiseWorker(env, name, std::move(work), std::move(done), std::move(fin));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

void ForwardLog(Napi::Env env, const std::vector<LogLine>& lines) {
  AddonData& d = Data(env);
  if (d.logger.IsEmpty() || lines.empty()) return;
  static const char* kLevels[] = {"warn", "info", "debug"};
  for (const auto& l : lines) {
    std::string text = l.text;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    if (text.empty()) continue;
    const char* level = l.level >= 0 && l.level <= 2 ? kLevels[l.level] : "debug";
    d.logger.Call({Napi::String::New(env, level), Napi::String::New(env, text)});
  }
}

AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

Fd::~Fd() {
  if (fd_ >= 0) close(fd_);
}

std::vector<uint8_t> BufferArg(const Napi::Value& v, const std::string& what) {
  if (!v.IsBuffer()) ThrowType(v.Env(), what + " must be a Buffer");
  auto b = v.As<Napi::Buffer<uint8_t>>();
  return std::vector<uint8_t>(b.Data(), b.Data() + b.Length());
}

std::string StringOpt(const Napi::Object& o, const char* key, const std::string& dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsString()) ThrowType(o.Env(), std::string("option '") + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

int64_t IntOpt(const Napi::Object& o, const char* key, int64_t dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) ThrowType(o.Env(), std::string("option '") + key + "' must be a number");
  return v.As<Napi::Number>().Int64Value();
}

}  // namespace berth
