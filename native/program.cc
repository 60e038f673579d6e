#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>

#include "netns.h"
#include "wraps.h"

namespace berth {

void BpfProgram::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function f = DefineClass(env, "BpfProgram",
      {InstanceMethod("info", &BpfProgram::Info), InstanceMethod("testRun", &BpfProgram::TestRun),
       InstanceMethod("attachTc", &BpfProgram::AttachTc),
       InstanceMethod("attachXdp", &BpfProgram::AttachXdp), InstanceMethod("attachTracing", &BpfProgram::AttachTracing),
       InstanceMethod("pin", &BpfProgram::Pin),
       InstanceMethod("close", &BpfProgram::Close)});
  Data(env).program_ctor = Napi::Persistent(f);
  exports.Set("BpfProgram", f);
}

namespace {
struct ProgInit {
  int fd;
  std::string name;
};
}  // namespace

Napi::Object BpfProgram::New(Napi::Env env, int fd, const std::string& name) {
  ProgInit init{fd, name};
  return Data(env).program_ctor.New({Napi::External<ProgInit>::New(env, &init)});
}

BpfProgram::BpfProgram(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfProgram>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsExternal()) ThrowType(env, "BpfProgram is made by BpfObject.program()");
  auto* init = info[0].As<Napi::External<ProgInit>>().Data();
  int fd = init->fd;
  fd_ = std::make_shared<Fd>(fd);
  struct bpf_prog_info pi = {};
  uint32_t len = sizeof(pi);
  int ret = bpf_prog_get_info_by_fd(fd, &pi, &len);
  if (ret < 0) throw ToJsError(env, SysError{-ret, "bpf_prog_get_info_by_fd", "read program info", ""});
  name_ = init->name.empty() ? pi.name : init->name;
  type_ = pi.type;
  id_ = pi.id;
}

FdPtr BpfProgram::Live(Napi::Env env) const {
  if (!fd_) throw Napi::Error::New(env, "program '" + name_ + "' is closed");
  return fd_;
}

Napi::Value BpfProgram::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", name_);
  const char* t = libbpf_bpf_prog_type_str(static_cast<enum bpf_prog_type>(type_));
  o.Set("type", t ? t : "unknown");
  o.Set("id", id_);
  return o;
}

// testRun({data, ctx?, repeat?, netns?}) -> {retval, data, duration}:
// BPF_PROG_TEST_RUN on a packet; the output buffer leaves room for programs
// that grow it. The kernel resolves ctx's ifindex, and programs do their FIB
// lookups, in the calling thread's namespace: @netns runs the call there.
Napi::Value BpfProgram::TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  if (!info[0].IsObject()) ThrowType(env, "testRun(options): options must be an object");
  Napi::Object opts = info[0].As<Napi::Object>();
  auto data = BufferArg(opts.Get("data"), "testRun data");
  std::vector<uint8_t> ctx;
  if (!opts.Get("ctx").IsUndefined()) ctx = BufferArg(opts.Get("ctx"), "testRun ctx");
  int64_t repeat = IntOpt(opts, "repeat", 1);
  if (repeat < 1) ThrowType(env, "testRun repeat must be >= 1, got " + std::to_string(repeat));
  std::string netns = StringOpt(opts, "netns");
  struct Out {
    std::vector<uint8_t> data, ctx;
    uint32_t retval = 0, duration = 0;
  };
  auto out = std::make_shared<Out>();
  std::string name = name_;
  return RunAsync(env, "berth.program.testRun",
      [fd, data, ctx, repeat, netns, out, name] {
        NetnsScope ns(netns);
        out->data.resize(data.size() + 1024);
        out->ctx.resize(ctx.size());
        LIBBPF_OPTS(bpf_test_run_opts, o);
        o.data_in = data.data();
        o.data_size_in = data.size();
        o.data_out = out->data.data();
        o.data_size_out = out->data.size();
        if (!ctx.empty()) {
          o.ctx_in = ctx.data();
          o.ctx_size_in = ctx.size();
          o.ctx_out = out->ctx.data();
          o.ctx_size_out = out->ctx.size();
        }
        o.repeat = repeat;
        CheckRet(bpf_prog_test_run_opts(fd->get(), &o), "bpf_prog_test_run_opts",
                 "test-run program '" + name + "' on a " + std::to_string(data.size()) + "-byte packet" +
                     (netns.empty() ? "" : " in netns '" + netns + "'"));
        out->data.resize(o.data_size_out);
        out->ctx.resize(o.ctx_size_out);
        out->retval = o.retval;
        out->duration = o.duration;
      },
      [out](Napi::Env env) -> Napi::Value {
        Napi::Object r = Napi::Object::New(env);
        r.Set("retval", Napi::Number::New(env, static_cast<int32_t>(out->retval)));
        r.Set("data", Napi::Buffer<uint8_t>::Copy(env, out->data.data(), out->data.size()));
        if (!out->ctx.empty())
          r.Set("ctx", Napi::Buffer<uint8_t>::Copy(env, out->ctx.data(), out->ctx.size()));
        r.Set("duration", out->duration);
        return r;
      });
}

namespace {

struct Target {
  std::string netns, ifname;
  unsigned ifindex = 0;
};

Target TargetOpts(Napi::Env env, const Napi::Object& o) {
  Target t{StringOpt(o, "netns"), StringOpt(o, "ifname"), (unsigned)IntOpt(o, "ifindex", 0)};
  if (t.ifname.empty() && !t.ifindex) ThrowType(env, "attach needs 'ifname' or 'ifindex'");
  return t;
}

std::string Where(const Target& t) {
  std::string dev = t.ifname.empty() ? "ifindex " + std::to_string(t.ifindex) : "'" + t.ifname + "'";
  return dev + (t.netns.empty() ? "" : " in netns '" + t.netns + "'");
}

uint32_t LinkId(int link_fd) {
  struct bpf_link_info li = {};
  uint32_t len = sizeof(li);
  return bpf_link_get_info_by_fd(link_fd, &li, &len) == 0 ? li.id : 0;
}

}  // namespace

// attachTc({ifname|ifindex, netns?, direction, mode: auto|tcx|clsact, priority?, handle?, replace?})
// auto picks tcx (a bpf_link: detaches itself if berth dies unpinned, and never
// disturbs other tc programs) and falls back to clsact + cls_bpf on kernels
// without it.
Napi::Value BpfProgram::AttachTc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  if (!info[0].IsObject()) ThrowType(env, "attachTc(options): options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  Target t = TargetOpts(env, o);
  std::string dir = StringOpt(o, "direction", "ingress");
  if (dir != "ingress" && dir != "egress")
    ThrowType(env, "direction must be 'ingress' or 'egress', got '" + dir + "'");
  std::string mode = StringOpt(o, "mode", "auto");
  if (mode != "auto" && mode != "tcx" && mode != "clsact")
    ThrowType(env, "tc mode must be 'auto', 'tcx' or 'clsact', got '" + mode + "'");
  uint32_t prio = IntOpt(o, "priority", 0), handle = IntOpt(o, "handle", 0);
  bool replace = o.Has("replace") && o.Get("replace").ToBoolean().Value();
  auto at = std::make_shared<Attachment>();
  auto link_fd = std::make_shared<int>(-1);
  std::string name = name_;
  uint32_t prog_id = id_;
  return RunAsync(env, "berth.program.attachTc",
      [fd, t, dir, mode, prio, handle, replace, at, link_fd, name, prog_id] {
        NetnsScope ns(t.netns);
        unsigned ifindex = ResolveIfindex(t.ifname, t.ifindex);
        *at = Attachment{"", t.netns, ifindex, dir, "", prog_id};
        std::string what = "attach '" + name + "' at tc " + dir + " of " + Where(t);
        if (mode != "clsact") {
          LIBBPF_OPTS(bpf_link_create_opts, lo);
          int lfd = bpf_link_create(fd->get(), ifindex,
                                    dir == "ingress" ? BPF_TCX_INGRESS : BPF_TCX_EGRESS, &lo);
          if (lfd >= 0) {
            at->kind = "tcx";
            at->link_id = LinkId(lfd);
            *link_fd = lfd;
            return;
          }
          // Only "this kernel has no tcx" falls through to clsact.
          if (mode == "tcx" || (lfd != -EINVAL && lfd != -EOPNOTSUPP))
            ThrowSys(-lfd, "bpf_link_create", what + " (tcx)");
        }
        LIBBPF_OPTS(bpf_tc_hook, hook);
        hook.ifindex = ifindex;
        hook.attach_point = dir == "ingress" ? BPF_TC_INGRESS : BPF_TC_EGRESS;
        int ret = bpf_tc_hook_create(&hook);
        if (ret < 0 && ret != -EEXIST) ThrowSys(-ret, "bpf_tc_hook_create", what + " (clsact qdisc)");
        at->hook_created = ret == 0;
        LIBBPF_OPTS(bpf_tc_opts, opts);
        opts.prog_fd = fd->get();
        opts.handle = handle;
        opts.priority = prio;
        // replace: swap the program of the filter at this handle and priority in one step (no gap).
        if (replace) opts.flags = BPF_TC_F_REPLACE;
        CheckRet(bpf_tc_attach(&hook, &opts), "bpf_tc_attach", what + " (cls_bpf)");
        at->kind = "clsact";
        at->handle = opts.handle;
        at->priority = opts.priority;
      },
      [at, link_fd](Napi::Env env) -> Napi::Value { return BpfLink::New(env, *at, *link_fd); });
}

// attachXdp({ifname|ifindex, netns?, mode: native|generic}) as a bpf_link.
Napi::Value BpfProgram::AttachXdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  if (!info[0].IsObject()) ThrowType(env, "attachXdp(options): options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  Target t = TargetOpts(env, o);
  std::string mode = StringOpt(o, "mode", "native");
  if (mode != "native" && mode != "generic")
    ThrowType(env, "xdp mode must be 'native' or 'generic', got '" + mode + "'");
  auto at = std::make_shared<Attachment>();
  auto link_fd = std::make_shared<int>(-1);
  std::string name = name_;
  uint32_t prog_id = id_;
  return RunAsync(env, "berth.program.attachXdp",
      [fd, t, mode, at, link_fd, name, prog_id] {
        NetnsScope ns(t.netns);
        unsigned ifindex = ResolveIfindex(t.ifname, t.ifindex);
        LIBBPF_OPTS(bpf_link_create_opts, lo);
        lo.flags = mode == "native" ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
        int lfd = bpf_link_create(fd->get(), ifindex, BPF_XDP, &lo);
        if (lfd < 0)
          ThrowSys(-lfd, "bpf_link_create", "attach '" + name + "' at XDP (" + mode + ") of " + Where(t));
        *at = Attachment{"xdp", t.netns, ifindex, "", mode, prog_id, LinkId(lfd)};
        *link_fd = lfd;
      },
      [at, link_fd](Napi::Env env) -> Napi::Value { return BpfLink::New(env, *at, *link_fd); });
}

// attachTracing(): a tp_btf/fentry program to the kernel function or tracepoint it names, as a bpf_link.
Napi::Value BpfProgram::AttachTracing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  auto at = std::make_shared<Attachment>();
  auto link_fd = std::make_shared<int>(-1);
  std::string name = name_;
  uint32_t prog_id = id_;
  return RunAsync(env, "berth.program.attachTracing",
      [fd, at, link_fd, name, prog_id] {
        int lfd = bpf_raw_tracepoint_open(nullptr, fd->get());
        if (lfd < 0) ThrowSys(errno, "bpf_raw_tracepoint_open", "attach tracing program '" + name + "'");
        *at = Attachment{"tracing", "", 0, "", "", prog_id, LinkId(lfd)};
        *link_fd = lfd;
      },
      [at, link_fd](Napi::Env env) -> Napi::Value { return BpfLink::New(env, *at, *link_fd); });
}

Napi::Value BpfProgram::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdPtr fd = Live(env);
  if (!info[0].IsString()) ThrowType(env, "pin(path): path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value(), name = name_;
  return RunAsync(env, "berth.program.pin",
      [fd, path, name] {
        if (bpf_obj_pin(fd->get(), path.c_str()) < 0)
          ThrowSys(errno, "bpf_obj_pin", "pin program '" + name + "' at '" + path + "'");
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value BpfProgram::Close(const Napi::CallbackInfo& info) {
  fd_.reset();
  return info.Env().Undefined();
}

}  // namespace berth
