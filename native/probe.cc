#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/netdev.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "berth_abi.h"
#include "count_abi.h"
#include "netns.h"
#include "wraps.h"

#ifndef BERTH_LIBBPF_MODE
#define BERTH_LIBBPF_MODE "unknown"
#endif
#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

namespace berth {
namespace {

bool EnumHas(const struct btf* btf, const char* enum_name, const char* value) {
  int id = btf__find_by_name_kind(btf, enum_name, BTF_KIND_ENUM);
  if (id < 0) return false;
  const struct btf_type* t = btf__type_by_id(btf, id);
  const struct btf_enum* e = btf_enum(t);
  for (int i = 0; i < btf_vlen(t); i++, e++)
    if (strcmp(btf__name_by_offset(btf, e->name_off), value) == 0) return true;
  return false;
}

bool HasCap(int cap) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return data[cap / 32].effective & (1u << (cap % 32));
}

struct Probe {
  std::string kernel, bpffs_path;
  bool btf = false, tcx = false, netkit = false, ringbuf = false, sched_cls = false, xdp = false;
  bool bpffs = false, cap_bpf = false, cap_net_admin = false, cap_sys_admin = false;
  std::string prog_load_error;
};

}  // namespace

// probe({bpffs?}) -> kernel features berth's datapaths depend on. Read-only:
// it loads throwaway programs to test the kernel, and attaches nothing.
static Napi::Value ProbeFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object opts = info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  std::string bpffs = StringOpt(opts, "bpffs", "/sys/fs/bpf");
  auto p = std::make_shared<Probe>();
  p->bpffs_path = bpffs;
  return RunAsync(env, "berth.probe",
      [p] {
        struct utsname u;
        if (uname(&u) == 0) p->kernel = u.release;
        struct btf* vmlinux = btf__load_vmlinux_btf();
        if (vmlinux) {
          p->btf = true;
          p->tcx = EnumHas(vmlinux, "bpf_attach_type", "BPF_TCX_INGRESS");
          p->netkit = EnumHas(vmlinux, "bpf_attach_type", "BPF_NETKIT_PRIMARY");
          btf__free(vmlinux);
        }
        int r = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, nullptr);
        p->sched_cls = r == 1;
        if (r < 0) p->prog_load_error = strerror(-r);
        p->xdp = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, nullptr) == 1;
        p->ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1;
        struct statfs sf;
        p->bpffs = statfs(p->bpffs_path.c_str(), &sf) == 0 && sf.f_type == BPF_FS_MAGIC;
        p->cap_bpf = HasCap(39 /* CAP_BPF */);
        p->cap_net_admin = HasCap(CAP_NET_ADMIN);
        p->cap_sys_admin = HasCap(CAP_SYS_ADMIN);
      },
      [p](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("kernel", p->kernel);
        o.Set("btf", p->btf);
        o.Set("tcx", p->tcx);
        o.Set("netkit", p->netkit);
        o.Set("ringbuf", p->ringbuf);
        o.Set("progSchedCls", p->sched_cls);
        o.Set("progXdp", p->xdp);
        if (!p->prog_load_error.empty()) o.Set("progLoadError", p->prog_load_error);
        Napi::Object fs = Napi::Object::New(env);
        fs.Set("path", p->bpffs_path);
        fs.Set("mounted", p->bpffs);
        o.Set("bpffs", fs);
        Napi::Object caps = Napi::Object::New(env);
        caps.Set("bpf", p->cap_bpf);
        caps.Set("netAdmin", p->cap_net_admin);
        caps.Set("sysAdmin", p->cap_sys_admin);
        o.Set("caps", caps);
        return o;
      });
}

// xdpQuery({ifname|ifindex, netns?}) -> XDP state and driver features of one interface.
static Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "xdpQuery(options): options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  std::string netns = StringOpt(o, "netns"), ifname = StringOpt(o, "ifname");
  unsigned ifindex = IntOpt(o, "ifindex", 0);
  if (ifname.empty() && !ifindex) ThrowType(env, "xdpQuery needs 'ifname' or 'ifindex'");
  struct Out {
    unsigned ifindex = 0;
    uint8_t attach_mode = 0;
    uint32_t prog_id = 0;
    uint64_t features = 0;
  };
  auto out = std::make_shared<Out>();
  return RunAsync(env, "berth.xdpQuery",
      [netns, ifname, ifindex, out] {
        NetnsScope ns(netns);
        out->ifindex = ResolveIfindex(ifname, ifindex);
        LIBBPF_OPTS(bpf_xdp_query_opts, q);
        CheckRet(bpf_xdp_query(out->ifindex, 0, &q), "bpf_xdp_query",
                 "query XDP of ifindex " + std::to_string(out->ifindex));
        out->attach_mode = q.attach_mode;
        out->prog_id = q.prog_id;
        out->features = q.feature_flags;
      },
      [out](Napi::Env env) -> Napi::Value {
        Napi::Object r = Napi::Object::New(env);
        r.Set("ifindex", out->ifindex);
        r.Set("attachMode", out->attach_mode);
        r.Set("progId", out->prog_id);
        Napi::Object f = Napi::Object::New(env);
        f.Set("basic", (out->features & NETDEV_XDP_ACT_BASIC) != 0);
        f.Set("redirect", (out->features & NETDEV_XDP_ACT_REDIRECT) != 0);
        f.Set("ndoXmit", (out->features & NETDEV_XDP_ACT_NDO_XMIT) != 0);
        f.Set("zerocopy", (out->features & NETDEV_XDP_ACT_XSK_ZEROCOPY) != 0);
        r.Set("features", f);
        return r;
      });
}

// abiSizes(): sizeof every struct in bpf/include/berth_abi.h and the demo's
// bpf/demo/count_abi.h, as this compiler sees it, for the test that keeps the
// TS codecs honest.
static Napi::Value AbiSizes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("berth_ifcount_key", sizeof(struct berth_ifcount_key));
  o.Set("berth_counter", sizeof(struct berth_counter));
  o.Set("berth_pkt_event", sizeof(struct berth_pkt_event));
  o.Set("berth_dp_net", sizeof(struct berth_dp_net));
  o.Set("berth_dp_ep", sizeof(struct berth_dp_ep));
  o.Set("berth_dp_lpm_id", sizeof(struct berth_dp_lpm_id));
  o.Set("berth_dp_link_key", sizeof(struct berth_dp_link_key));
  o.Set("berth_dp_egress", sizeof(struct berth_dp_egress));
  o.Set("berth_dp_pub", sizeof(struct berth_dp_pub));
  o.Set("berth_dp_cfg", sizeof(struct berth_dp_cfg));
  o.Set("berth_ct_key", sizeof(struct berth_ct_key));
  o.Set("berth_ct_val", sizeof(struct berth_ct_val));
  o.Set("berth_dp_event", sizeof(struct berth_dp_event));
  return o;
}

// abiVersion(): BERTH_ABI_VERSION as this build's header defines it.
static Napi::Value AbiVersion(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), BERTH_ABI_VERSION);
}

// kernelEnum(name): the values of an enum of the running kernel, from its BTF
// ({name: value}); empty when the kernel has no BTF or no such enum.
static Napi::Value KernelEnum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "kernelEnum(name): name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = Napi::Object::New(env);
  struct btf* btf = btf__load_vmlinux_btf();
  if (!btf) return o;
  int id = btf__find_by_name_kind(btf, name.c_str(), BTF_KIND_ENUM);
  if (id > 0) {
    const struct btf_type* t = btf__type_by_id(btf, id);
    const struct btf_enum* e = btf_enum(t);
    for (int i = 0; i < btf_vlen(t); i++, e++) o.Set(btf__name_by_offset(btf, e->name_off), e->val);
  }
  btf__free(btf);
  return o;
}

static Napi::Value LibbpfInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", libbpf_version_string());
  o.Set("mode", BERTH_LIBBPF_MODE);  // "in-tree" or "system"
  o.Set("possibleCpus", libbpf_num_possible_cpus());
  return o;
}

static Napi::Value SetLogger(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info[0].IsFunction()) {
    Data(env).logger = Napi::Persistent(info[0].As<Napi::Function>());
  } else if (info[0].IsNull() || info[0].IsUndefined()) {
    Data(env).logger.Reset();
  } else {
    ThrowType(env, "setLogger(fn): fn must be a function or null");
  }
  return env.Undefined();
}

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, ProbeFeatures));
  exports.Set("kernelEnum", Napi::Function::New(env, KernelEnum));
  exports.Set("xdpQuery", Napi::Function::New(env, XdpQuery));
  exports.Set("abiSizes", Napi::Function::New(env, AbiSizes));
  exports.Set("abiVersion", Napi::Function::New(env, AbiVersion));
  exports.Set("libbpf", Napi::Function::New(env, LibbpfInfo));
  exports.Set("setLogger", Napi::Function::New(env, SetLogger));
}

}  // namespace berth
