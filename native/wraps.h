// The JS classes the addon exports, and how native code makes instances.
#pragma once
#include <napi.h>

#include "async.h"

namespace berth {

// A BPF map held by file descriptor (from a loaded object or a bpffs pin).
class BpfMap : public Napi::ObjectWrap<BpfMap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  // Takes ownership of @fd.
  static Napi::Object New(Napi::Env env, int fd);
  explicit BpfMap(const Napi::CallbackInfo& info);

  FdPtr fd() const { return fd_; }
  Napi::Object InfoObject(Napi::Env env) const;

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value UpdateBatch(const Napi::CallbackInfo& info);
  // The same on the JS thread, for a few entries: a syscall of microseconds beats a thread-pool round trip.
  Napi::Value UpdateSync(const Napi::CallbackInfo& info);
  Napi::Value UpdateBatchSync(const Napi::CallbackInfo& info);
  Napi::Value DeleteBatch(const Napi::CallbackInfo& info);
  Napi::Value Entries(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  FdPtr Live(Napi::Env env) const;
  size_t ValueBytes() const;  // what user space reads and writes (per-CPU aware)
  // records in @keys (thrown when it is not a whole number of keys)
  uint32_t KeyCount(Napi::Env env, const std::vector<uint8_t>& keys) const;
  void CheckLen(Napi::Env env, size_t got, size_t want, const char* what) const;

  FdPtr fd_;
  std::string name_;
  uint32_t type_ = 0, key_size_ = 0, value_size_ = 0, max_entries_ = 0, flags_ = 0, id_ = 0;
  bool percpu_ = false;
  int ncpus_ = 1;
};

// A loaded BPF program held by file descriptor.
class BpfProgram : public Napi::ObjectWrap<BpfProgram> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  // Takes ownership of @fd; @name is the object's (the kernel keeps 15 chars).
  static Napi::Object New(Napi::Env env, int fd, const std::string& name);
  explicit BpfProgram(const Napi::CallbackInfo& info);

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value AttachTc(const Napi::CallbackInfo& info);
  Napi::Value AttachXdp(const Napi::CallbackInfo& info);
  Napi::Value AttachTracing(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  FdPtr Live(Napi::Env env) const;

  FdPtr fd_;
  std::string name_;
  uint32_t type_ = 0, id_ = 0;
};

// Where and how a program is attached; what detach() needs to undo it.
struct Attachment {
  std::string kind;       // "tcx" | "clsact" | "xdp" | "tracing"
  std::string netns;      // namespace the interface lives in ("" = ours)
  unsigned ifindex = 0;
  std::string direction;  // "ingress" | "egress" (tc only)
  std::string mode;       // "native" | "generic" (xdp only)
  uint32_t prog_id = 0;
  uint32_t link_id = 0;   // tcx/xdp
  uint32_t handle = 0, priority = 0;  // clsact
  bool hook_created = false;          // clsact qdisc made by us
};

// A program attached to an interface: a bpf_link (tcx, xdp) or a cls_bpf
// filter on a clsact qdisc. Detaching removes exactly this attachment.
class BpfLink : public Napi::ObjectWrap<BpfLink> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object New(Napi::Env env, const Attachment& at, int link_fd);
  explicit BpfLink(const Napi::CallbackInfo& info);

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  Attachment at_;
  FdPtr fd_;  // link fd; null for clsact
  bool detached_ = false;
};

// An ELF object with its programs and maps; rodata knobs are set between
// open and load.
class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit BpfObject(const Napi::CallbackInfo& info);
  ~BpfObject() override;

 private:
  static Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Consts(const Napi::CallbackInfo& info);
  Napi::Value SetConst(const Napi::CallbackInfo& info);
  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Maps(const Napi::CallbackInfo& info);
  Napi::Value Map(const Napi::CallbackInfo& info);
  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value Program(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  struct bpf_object* Ready(Napi::Env env, bool want_loaded) const;

  struct bpf_object* obj_ = nullptr;
  std::string path_;
  bool loaded_ = false;
  bool busy_ = false;
};

// Records from a BPF ring buffer delivered to a JS callback.
void InitRingBuffer(Napi::Env env, Napi::Object exports);

// Feature probes, ABI sizes and misc module functions.
void InitProbe(Napi::Env env, Napi::Object exports);
void InitPorts(Napi::Env env, Napi::Object exports);
void InitFlock(Napi::Env env, Napi::Object exports);
void InitSpawn(Napi::Env env, Napi::Object exports);
void InitInject(Napi::Env env, Napi::Object exports);

}  // namespace berth
