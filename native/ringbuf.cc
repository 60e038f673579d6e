#include <bpf/libbpf.h>
#include <errno.h>

#include <atomic>
#include <thread>

#include "wraps.h"

namespace berth {
namespace {

// new RingBuffer(map, onRecord): a thread polls the BPF ring buffer and hands
// each record to onRecord(Buffer) on the JS thread. It never blocks on JS: when
// JS falls more than kQueue records behind, records are counted in `lost`.
class RingBuffer : public Napi::ObjectWrap<RingBuffer> {
 public:
  static constexpr size_t kQueue = 8192;

  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "RingBuffer",
        {InstanceMethod("close", &RingBuffer::Close), InstanceMethod("stats", &RingBuffer::Stats)});
    exports.Set("RingBuffer", f);
  }

  explicit RingBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingBuffer>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(Data(env).map_ctor.Value()))
      ThrowType(env, "new RingBuffer(map, onRecord): map must be a BpfMap");
    if (!info[1].IsFunction()) ThrowType(env, "new RingBuffer(map, onRecord): onRecord must be a function");
    map_fd_ = Napi::ObjectWrap<BpfMap>::Unwrap(info[0].As<Napi::Object>())->fd();
    if (!map_fd_) throw Napi::Error::New(env, "ring buffer map is closed");
    rb_ = ring_buffer__new(map_fd_->get(), &RingBuffer::OnSample, this, nullptr);
    if (!rb_) throw ToJsError(env, SysError{errno, "ring_buffer__new", "open ring buffer", ""});
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "berth.ringbuf", kQueue, 1);
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        int n = ring_buffer__poll(rb_, 100);
        if (n < 0 && n != -EINTR) break;
      }
    });
  }

  ~RingBuffer() override { Stop(); }

 private:
  static int OnSample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<RingBuffer*>(ctx);
    auto* rec = new std::vector<uint8_t>(static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
    // Counted before the call: the JS callback may run (and read the stats) before NonBlockingCall returns here.
    self->delivered_++;
    napi_status st = self->tsfn_.NonBlockingCall(rec, [](Napi::Env env, Napi::Function cb, std::vector<uint8_t>* r) {
      Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::Copy(env, r->data(), r->size());
      delete r;
      cb.Call({b});
    });
    if (st != napi_ok) {
      delete rec;
      self->delivered_--;
      self->lost_++;
    }
    return 0;
  }

  void Stop() {
    if (!rb_) return;
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ring_buffer__free(rb_);
    rb_ = nullptr;
    tsfn_.Release();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop();
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("delivered", static_cast<double>(delivered_.load()));
    o.Set("lost", static_cast<double>(lost_.load()));
    return o;
  }

  FdPtr map_fd_;
  struct ring_buffer* rb_ = nullptr;
  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> delivered_{0}, lost_{0};
};

}  // namespace

void InitRingBuffer(Napi::Env env, Napi::Object exports) { RingBuffer::Init(env, exports); }

}  // namespace berth
