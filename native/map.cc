#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>

#include <algorithm>
#include <string.h>
#include <unistd.h>

#include "wraps.h"

namespace berth {
namespace {

bool IsPercpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

Napi::Value Copy(Napi::Env env, const std::vector<uint8_t>& v) {
  return Napi::Buffer<uint8_t>::Copy(env, v.data(), v.size());
}

}  // namespace

void BpfMap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function f = DefineClass(env, "BpfMap",
      {InstanceMethod("info", &BpfMap::Info), InstanceMethod("lookup", &BpfMap::Lookup),
       InstanceMethod("update", &BpfMap::Update), InstanceMethod("delete", &BpfMap::Delete),
       InstanceMethod("updateBatch", &BpfMap::UpdateBatch),
       InstanceMethod("updateSync", &BpfMap::UpdateSync),
       InstanceMethod("updateBatchSync", &BpfMap::UpdateBatchSync),
       InstanceMethod("deleteBatch", &BpfMap::DeleteBatch),
       InstanceMethod("entries", &BpfMap::Entries), InstanceMethod("pin", &BpfMap::Pin),
       InstanceMethod("close", &BpfMap::Close)});
  Data(env).map_ctor = Napi::Persistent(f);
  exports.Set("BpfMap", f);

  // openPinnedMap(path): a map someone (usually an earlier berthd) pinned.
  exports.Set("openPinnedMap", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) ThrowType(env, "openPinnedMap(path): path must be a string");
    std::string path = info[0].As<Napi::String>().Utf8Value();
    auto fd = std::make_shared<int>(-1);
    return RunAsync(env, "berth.openPinnedMap",
        [path, fd] {
          *fd = bpf_obj_get(path.c_str());
          if (*fd < 0) ThrowSys(errno, "bpf_obj_get", "open pinned map '" + path + "'");
        },
        [fd](Napi::Env env) -> Napi::Value { return BpfMap::New(env, *fd); });
  }));
}

Napi::Object BpfMap::New(Napi::Env env, int fd) {
  return Data(env).map_ctor.New({Napi::External<int>::New(env, &fd)});
}

BpfMap::BpfMap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfMap>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsExternal()) ThrowType(env, "BpfMap is made by BpfObject.map() or openPinnedMap()");
  int fd = *info[0].As<Napi::External<int>>().Data();
  fd_ = std::make_shared<Fd>(fd);
  struct bpf_map_info mi = {};
  uint32_t len = sizeof(mi);
  int ret = bpf_map_get_info_by_fd(fd, &mi, &len);
  if (ret < 0) throw ToJsError(env, SysError{-ret, "bpf_map_get_info_by_fd", "read map info", ""});
  name_ = mi.name;
  type_ = mi.type;
  key_size_ = mi.key_size;
  value_size_ = mi.value_size;
  max_entries_ = mi.max_entries;
  flags_ = mi.map_flags;
  id_ = mi.id;
  percpu_ = IsPercpu(type_);
  ncpus_ = percpu_ ? libbpf_num_possible_cpus() : 1;
}

FdPtr BpfMap::Live(Napi::Env env) const {
  if (!fd_) throw Napi::Error::New(env, "map '" + name_ + "' is closed");
  return fd_;
}

size_t BpfMap::ValueBytes() const {
  return percpu_ ? ((value_size_ + 7) / 8 * 8) * ncpus_ : value_size_;
}

void BpfMap::CheckLen(Napi::Env env, size_t got, size_t want, const char* what) const {
  if (got != want)
    ThrowType(env, std::string(what) + " is " + std::to_string(got) + " bytes; map '" + name_ +
                       "' needs " + std::to_string(want));
}

Napi::Object BpfMap::InfoObject(Napi::Env env) const {
  Napi::Object o = Napi::Object::New(env);
  const char* tname = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(type_));
  o.Set("name", name_);
  o.Set("type", tname ? tname : "unknown");
  o.Set("keySize", key_size_);
  o.Set("valueSize", value_size_);
  o.Set("maxEntries", max_entries_);
  o.Set("flags", flags_);
  o.Set("id", id_);
  o.Set("percpu", percpu_);
  o.Set("ncpus", ncpus_);
  o.Set("valueBytes", static_cast<double>(ValueBytes()));
  return o;
}

Napi::Value BpfMap::Info(const Napi::CallbackInfo& info) { return InfoObject(info.Env()); }

Napi::Value BpfMap::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  auto key = BufferArg(info[0], "key");
  CheckLen(env, key.size(), key_size_, "key");
  auto value = std::make_shared<std::vector<uint8_t>>(ValueBytes());
  auto found = std::make_shared<bool>(false);
  std::string name = name_;
  return RunAsync(env, "berth.map.lookup",
      [fd, key, value, found, name] {
        int ret = bpf_map_lookup_elem(fd->get(), key.data(), value->data());
        if (ret == -ENOENT) return;
        CheckRet(ret, "bpf_map_lookup_elem", "look up a key in map '" + name + "'");
        *found = true;
      },
      [value, found](Napi::Env env) -> Napi::Value {
        return *found ? Copy(env, *value) : env.Null();
      });
}

Napi::Value BpfMap::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  auto key = BufferArg(info[0], "key");
  auto value = BufferArg(info[1], "value");
  CheckLen(env, key.size(), key_size_, "key");
  CheckLen(env, value.size(), ValueBytes(), "value");
  uint64_t flags = info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : uint64_t{BPF_ANY};
  std::string name = name_;
  return RunAsync(env, "berth.map.update",
      [fd, key, value, flags, name] {
        CheckRet(bpf_map_update_elem(fd->get(), key.data(), value.data(), flags),
                 "bpf_map_update_elem", "update map '" + name + "'");
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value BpfMap::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  auto key = BufferArg(info[0], "key");
  CheckLen(env, key.size(), key_size_, "key");
  auto existed = std::make_shared<bool>(true);
  std::string name = name_;
  return RunAsync(env, "berth.map.delete",
      [fd, key, existed, name] {
        int ret = bpf_map_delete_elem(fd->get(), key.data());
        if (ret == -ENOENT) {
          *existed = false;
          return;
        }
        CheckRet(ret, "bpf_map_delete_elem", "delete from map '" + name + "'");
      },
      [existed](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, *existed); });
}

uint32_t BpfMap::KeyCount(Napi::Env env, const std::vector<uint8_t>& keys) const {
  if (keys.size() % key_size_)
    ThrowType(env, "keys is " + std::to_string(keys.size()) + " bytes, not a multiple of " +
                       std::to_string(key_size_));
  return keys.size() / key_size_;
}

// updateBatch(keys, values, flags): keys and values are concatenated records.
Napi::Value BpfMap::UpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  auto keys = BufferArg(info[0], "keys");
  auto values = BufferArg(info[1], "values");
  uint64_t flags = info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : uint64_t{BPF_ANY};
  uint32_t count = KeyCount(env, keys);
  CheckLen(env, values.size(), count * ValueBytes(), "values");
  auto done = std::make_shared<uint32_t>(0);
  std::string name = name_;
  return RunAsync(env, "berth.map.updateBatch",
      [fd, keys, values, count, flags, done, name] {
        uint32_t n = count;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        opts.elem_flags = flags;
        int ret = count ? bpf_map_update_batch(fd->get(), keys.data(), values.data(), &n, &opts) : 0;
        *done = n;
        CheckRet(ret, "bpf_map_update_batch",
                 "batch-update " + std::to_string(count) + " entries of map '" + name + "'");
      },
      [done](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, *done); });
}

// updateSync(key, value, flags): update() without the thread pool.
Napi::Value BpfMap::UpdateSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  auto key = BufferArg(info[0], "key");
  auto value = BufferArg(info[1], "value");
  CheckLen(env, key.size(), key_size_, "key");
  CheckLen(env, value.size(), ValueBytes(), "value");
  uint64_t flags = info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : uint64_t{BPF_ANY};
  int ret = bpf_map_update_elem(fd->get(), key.data(), value.data(), flags);
  if (ret < 0) throw ToJsError(env, SysError{-ret, "bpf_map_update_elem", "update map '" + name_ + "'", ""});
  return env.Undefined();
}

// updateBatchSync(keys, values, flags) -> entries written: updateBatch() without the thread pool.
Napi::Value BpfMap::UpdateBatchSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  auto keys = BufferArg(info[0], "keys");
  auto values = BufferArg(info[1], "values");
  uint64_t flags = info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : uint64_t{BPF_ANY};
  uint32_t count = KeyCount(env, keys);
  CheckLen(env, values.size(), count * ValueBytes(), "values");
  uint32_t n = count;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  opts.elem_flags = flags;
  int ret = count ? bpf_map_update_batch(fd->get(), keys.data(), values.data(), &n, &opts) : 0;
  if (ret < 0)
    throw ToJsError(env, SysError{-ret, "bpf_map_update_batch",
                                  "batch-update " + std::to_string(count) + " entries of map '" + name_ + "'", ""});
  return Napi::Number::New(env, n);
}

Napi::Value BpfMap::DeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  auto keys = BufferArg(info[0], "keys");
  uint32_t count = KeyCount(env, keys);
  auto done = std::make_shared<uint32_t>(0);
  std::string name = name_;
  size_t ks = key_size_;
  return RunAsync(env, "berth.map.deleteBatch",
      [fd, keys, count, done, name, ks] {
        // A key that is not there (expired, evicted, or deleted by a program meanwhile) is
        // skipped: the kernel stops a batch at the first missing key, so go on after it.
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        uint32_t off = 0;
        while (off < count) {
          uint32_t n = count - off;
          int ret = bpf_map_delete_batch(fd->get(), keys.data() + static_cast<size_t>(off) * ks, &n, &opts);
          *done += n;
          if (ret == 0) break;
          if (ret != -ENOENT)
            CheckRet(ret, "bpf_map_delete_batch",
                     "batch-delete " + std::to_string(count) + " entries of map '" + name + "'");
          off += n + 1;
        }
      },
      [done](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, *done); });
}

namespace {

// Reads the whole map with BPF_MAP_LOOKUP_BATCH, thousands of entries a
// system call (a 100,000-flow connection table is read in milliseconds, not
// a second). False when the map type has no batch lookup: nothing was read.
bool LookupBatchAll(int fd, size_t ks, size_t vs, std::vector<uint8_t>& keys, std::vector<uint8_t>& values,
                    const std::string& name) {
  constexpr uint32_t kChunk = 4096;
  std::vector<uint8_t> kbuf(kChunk * ks), vbuf(kChunk * vs);
  // The batch token is opaque (a bucket index for hash maps): room for either.
  std::vector<uint8_t> in(std::max<size_t>(ks, 8)), out(std::max<size_t>(ks, 8));
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  bool first = true;
  for (;;) {
    uint32_t n = kChunk;
    int ret = bpf_map_lookup_batch(fd, first ? nullptr : in.data(), out.data(), kbuf.data(), vbuf.data(), &n, &opts);
    if (ret && ret != -ENOENT) {
      // The kernel's ENOTSUPP (524, no user-space name) is what a map type without batch ops answers.
      if (first && (ret == -EINVAL || ret == -524 || ret == -EOPNOTSUPP)) return false;
      CheckRet(ret, "bpf_map_lookup_batch", "read map '" + name + "'");
    }
    keys.insert(keys.end(), kbuf.begin(), kbuf.begin() + static_cast<size_t>(n) * ks);
    values.insert(values.end(), vbuf.begin(), vbuf.begin() + static_cast<size_t>(n) * vs);
    if (ret == -ENOENT) return true;  // the last batch
    first = false;
    in.swap(out);
  }
}

}  // namespace

// entries(): every key and value, as two concatenated buffers. Batch lookup
// where the map type has it; otherwise a walk with get_next_key, which works
// on every iterable map type; a key deleted during the walk restarts it, so
// the walk is bounded by twice max_entries.
Napi::Value BpfMap::Entries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  auto keys = std::make_shared<std::vector<uint8_t>>();
  auto values = std::make_shared<std::vector<uint8_t>>();
  size_t ks = key_size_, vs = ValueBytes(), limit = static_cast<size_t>(max_entries_) * 2;
  std::string name = name_;
  return RunAsync(env, "berth.map.entries",
      [fd, keys, values, ks, vs, limit, name] {
        if (LookupBatchAll(fd->get(), ks, vs, *keys, *values, name)) return;
        std::vector<uint8_t> cur(ks), next(ks), val(vs);
        bool first = true;
        for (size_t i = 0; i < limit; i++) {
          int ret = bpf_map_get_next_key(fd->get(), first ? nullptr : cur.data(), next.data());
          if (ret == -ENOENT) break;
          CheckRet(ret, "bpf_map_get_next_key", "walk map '" + name + "'");
          first = false;
          ret = bpf_map_lookup_elem(fd->get(), next.data(), val.data());
          if (ret == 0) {
            keys->insert(keys->end(), next.begin(), next.end());
            values->insert(values->end(), val.begin(), val.end());
          } else if (ret != -ENOENT) {
            CheckRet(ret, "bpf_map_lookup_elem", "read map '" + name + "'");
          }
          cur.swap(next);
        }
      },
      [keys, values, ks](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("keys", Copy(env, *keys));
        o.Set("values", Copy(env, *values));
        o.Set("count", Napi::Number::New(env, ks ? keys->size() / ks : 0));
        return o;
      });
}

Napi::Value BpfMap::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  if (!info[0].IsString()) ThrowType(env, "pin(path): path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string name = name_;
  return RunAsync(env, "berth.map.pin",
      [fd, path, name] {
        if (bpf_obj_pin(fd->get(), path.c_str()) < 0)
          ThrowSys(errno, "bpf_obj_pin", "pin map '" + name + "' at '" + path + "'");
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value BpfMap::Close(const Napi::CallbackInfo& info) {
  fd_.reset();
  return info.Env().Undefined();
}

}  // namespace berth
