#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "wraps.h"

namespace berth {
namespace {

// The .rodata variables of an object, from its BTF: name -> (offset, size).
struct ConstVar {
  std::string name;
  uint32_t offset, size;
};

std::vector<ConstVar> RodataVars(struct bpf_object* obj) {
  std::vector<ConstVar> out;
  struct btf* btf = bpf_object__btf(obj);
  if (!btf) return out;
  int id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
  if (id < 0) return out;
  const struct btf_type* sec = btf__type_by_id(btf, id);
  const struct btf_var_secinfo* vs = btf_var_secinfos(sec);
  for (int i = 0; i < btf_vlen(sec); i++, vs++) {
    const struct btf_type* var = btf__type_by_id(btf, vs->type);
    out.push_back({btf__name_by_offset(btf, var->name_off), vs->offset, vs->size});
  }
  return out;
}

struct bpf_map* RodataMap(struct bpf_object* obj) {
  struct bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    if (bpf_map__is_internal(m)) {
      const char* n = bpf_map__name(m);
      size_t len = strlen(n);
      if (len >= 7 && strcmp(n + len - 7, ".rodata") == 0) return m;
    }
  }
  return nullptr;
}

int Dup(int fd, const std::string& what) {
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) ThrowSys(errno, "fcntl", what);
  return d;
}

}  // namespace

void BpfObject::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function f = DefineClass(env, "BpfObject",
      {StaticMethod("open", &BpfObject::Open), InstanceMethod("consts", &BpfObject::Consts),
       InstanceMethod("setConst", &BpfObject::SetConst), InstanceMethod("setMaxEntries", &BpfObject::SetMaxEntries),
       InstanceMethod("load", &BpfObject::Load),
       InstanceMethod("maps", &BpfObject::Maps), InstanceMethod("map", &BpfObject::Map),
       InstanceMethod("programs", &BpfObject::Programs),
       InstanceMethod("program", &BpfObject::Program), InstanceMethod("close", &BpfObject::Close)});
  Data(env).object_ctor = Napi::Persistent(f);
  exports.Set("BpfObject", f);
}

BpfObject::BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
  if (!info[0].IsExternal()) ThrowType(info.Env(), "use BpfObject.open(path, options)");
  auto* init = info[0].As<Napi::External<std::pair<struct bpf_object*, std::string>>>().Data();
  obj_ = init->first;
  path_ = init->second;
}

BpfObject::~BpfObject() {
  if (obj_ && !busy_) bpf_object__close(obj_);
}

// open(path, {pinRoot?, name?}) -> Promise<BpfObject>: parses the ELF; nothing
// is in the kernel until load(). Maps marked pinning=by-name are reused from
// (or pinned to) pinRoot on load.
Napi::Value BpfObject::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "BpfObject.open(path): path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  Napi::Object opts = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  std::string pin_root = StringOpt(opts, "pinRoot");
  std::string name = StringOpt(opts, "name");
  auto result = std::make_shared<struct bpf_object*>(nullptr);
  return RunAsync(env, "berth.object.open",
      [path, pin_root, name, result] {
        LIBBPF_OPTS(bpf_object_open_opts, o);
        o.object_name = name.empty() ? nullptr : name.c_str();
        o.pin_root_path = pin_root.empty() ? nullptr : pin_root.c_str();
        struct bpf_object* obj = bpf_object__open_file(path.c_str(), &o);
        if (!obj) ThrowSys(errno, "bpf_object__open_file", "open BPF object '" + path + "'");
        if (pin_root.empty()) {
          // No pin root, no pins: libbpf would otherwise pin by-name maps
          // under /sys/fs/bpf, and berth pins only where it is told to.
          struct bpf_map* m;
          bpf_object__for_each_map(m, obj) bpf_map__set_pin_path(m, nullptr);
        }
        *result = obj;
      },
      [path, result](Napi::Env env) -> Napi::Value {
        std::pair<struct bpf_object*, std::string> init{*result, path};
        return Data(env).object_ctor.New({Napi::External<decltype(init)>::New(env, &init)});
      });
}

struct bpf_object* BpfObject::Ready(Napi::Env env, bool want_loaded) const {
  if (!obj_) throw Napi::Error::New(env, "BPF object '" + path_ + "' is closed");
  if (busy_) throw Napi::Error::New(env, "BPF object '" + path_ + "' is busy loading");
  if (want_loaded && !loaded_)
    throw Napi::Error::New(env, "BPF object '" + path_ + "' is not loaded yet: call load() first");
  if (!want_loaded && loaded_)
    throw Napi::Error::New(env, "BPF object '" + path_ + "' is already loaded: knobs are read-only");
  return obj_;
}

Napi::Value BpfObject::Consts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!obj_) throw Napi::Error::New(env, "BPF object '" + path_ + "' is closed");
  Napi::Array arr = Napi::Array::New(env);
  uint32_t i = 0;
  for (const auto& v : RodataVars(obj_)) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", v.name);
    o.Set("size", v.size);
    arr.Set(i++, o);
  }
  return arr;
}

// setConst(name, bytes): writes a `const volatile` knob before load.
Napi::Value BpfObject::SetConst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_object* obj = Ready(env, false);
  if (!info[0].IsString()) ThrowType(env, "setConst(name, value): name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  auto bytes = BufferArg(info[1], "value of knob '" + name + "'");
  std::string known;
  for (const auto& v : RodataVars(obj)) {
    known += (known.empty() ? "" : ", ") + v.name;
    if (v.name != name) continue;
    if (bytes.size() != v.size)
      ThrowType(env, "knob '" + name + "' is " + std::to_string(v.size) + " bytes, got " +
                         std::to_string(bytes.size()));
    size_t sz = 0;
    auto* data = static_cast<uint8_t*>(bpf_map__initial_value(RodataMap(obj), &sz));
    if (!data || v.offset + v.size > sz) throw Napi::Error::New(env, "cannot reach .rodata of '" + path_ + "'");
    memcpy(data + v.offset, bytes.data(), v.size);
    return env.Undefined();
  }
  ThrowType(env, "'" + path_ + "' has no knob '" + name + "' (knobs: " +
                     (known.empty() ? "none" : known) + ")");
}

// setMaxEntries(map, n): a map's size, between open and load (a pinned map reused must match it).
Napi::Value BpfObject::SetMaxEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_object* obj = Ready(env, false);
  if (!info[0].IsString() || !info[1].IsNumber()) ThrowType(env, "setMaxEntries(name, n): a map name and a number are required");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int64_t n = info[1].As<Napi::Number>().Int64Value();
  if (n < 1 || n > (1LL << 31)) ThrowType(env, "setMaxEntries: " + std::to_string(n) + " entries for map '" + name + "' is out of range");
  struct bpf_map* m = bpf_object__find_map_by_name(obj, name.c_str());
  if (!m) ThrowType(env, "'" + path_ + "' has no map '" + name + "'");
  try {
    CheckRet(bpf_map__set_max_entries(m, (uint32_t)n), "bpf_map__set_max_entries", "size map '" + name + "' to " + std::to_string(n));
  } catch (const SysError& e) {
    throw ToJsError(env, e);
  }
  return env.Undefined();
}

Napi::Value BpfObject::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_object* obj = Ready(env, false);
  busy_ = true;
  std::string path = path_;
  auto self = std::make_shared<Napi::ObjectReference>(Napi::Persistent(Value()));
  return RunAsync(env, "berth.object.load",
      [obj, path] {
        LibbpfLogCapture capture;  // nested: keeps the log for the verifier excerpt
        int ret = bpf_object__load(obj);
        std::string joined = capture.Joined();
        if (ret < 0)
          ThrowSys(-ret, "bpf_object__load", "load BPF object '" + path + "'",
                   ExtractVerifierLog(joined));
      },
      [this, self](Napi::Env env) -> Napi::Value {
        loaded_ = true;
        return env.Undefined();
      },
      [this, self] { busy_ = false; });
}

// maps(): every map with the layout libbpf will create it with (or demands
// of a pin it reuses); before load too, so a pinned map can be checked first.
Napi::Value BpfObject::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_object* obj = obj_;
  if (!obj) throw Napi::Error::New(env, "BPF object '" + path_ + "' is closed");
  if (busy_) throw Napi::Error::New(env, "BPF object '" + path_ + "' is busy loading");
  Napi::Array arr = Napi::Array::New(env);
  uint32_t i = 0;
  struct bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_map__name(m));
    const char* t = libbpf_bpf_map_type_str(bpf_map__type(m));
    o.Set("type", t ? t : "unknown");
    o.Set("internal", bpf_map__is_internal(m));
    o.Set("pinPath", bpf_map__pin_path(m) ? bpf_map__pin_path(m) : "");
    o.Set("keySize", bpf_map__key_size(m));
    o.Set("valueSize", bpf_map__value_size(m));
    o.Set("maxEntries", bpf_map__max_entries(m));
    o.Set("flags", bpf_map__map_flags(m));
    arr.Set(i++, o);
  }
  return arr;
}

Napi::Value BpfObject::Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_object* obj = Ready(env, true);
  if (!info[0].IsString()) ThrowType(env, "map(name): name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  struct bpf_map* m = bpf_object__find_map_by_name(obj, name.c_str());
  if (!m) ThrowType(env, "'" + path_ + "' has no map '" + name + "'");
  try {
    return BpfMap::New(env, Dup(bpf_map__fd(m), "duplicate map fd"));
  } catch (const SysError& e) {
    throw ToJsError(env, e);
  }
}

Napi::Value BpfObject::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_object* obj = obj_;
  if (!obj) throw Napi::Error::New(env, "BPF object '" + path_ + "' is closed");
  Napi::Array arr = Napi::Array::New(env);
  uint32_t i = 0;
  struct bpf_program* p;
  bpf_object__for_each_program(p, obj) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_program__name(p));
    o.Set("section", bpf_program__section_name(p));
    const char* t = libbpf_bpf_prog_type_str(bpf_program__type(p));
    o.Set("type", t ? t : "unknown");
    arr.Set(i++, o);
  }
  return arr;
}

Napi::Value BpfObject::Program(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_object* obj = Ready(env, true);
  if (!info[0].IsString()) ThrowType(env, "program(name): name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  struct bpf_program* p = bpf_object__find_program_by_name(obj, name.c_str());
  if (!p) ThrowType(env, "'" + path_ + "' has no program '" + name + "'");
  try {
    return BpfProgram::New(env, Dup(bpf_program__fd(p), "duplicate program fd"), name);
  } catch (const SysError& e) {
    throw ToJsError(env, e);
  }
}

// close(): frees the object. Maps and programs taken from it stay valid (they
// hold their own descriptors), and so do pins and attachments.
Napi::Value BpfObject::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (busy_) throw Napi::Error::New(env, "BPF object '" + path_ + "' is busy loading");
  if (obj_) bpf_object__close(obj_);
  obj_ = nullptr;
  return env.Undefined();
}

}  // namespace berth
