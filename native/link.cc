#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <unistd.h>

#include "netns.h"
#include "wraps.h"

namespace berth {

Napi::Value TcFilter(const Napi::CallbackInfo& info);

void BpfLink::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function f = DefineClass(env, "BpfLink",
      {InstanceMethod("info", &BpfLink::Info), InstanceMethod("pin", &BpfLink::Pin),
       InstanceMethod("detach", &BpfLink::Detach), InstanceMethod("close", &BpfLink::Close)});
  Data(env).link_ctor = Napi::Persistent(f);
  exports.Set("BpfLink", f);
  exports.Set("tcFilter", Napi::Function::New(env, TcFilter));

  // openPinnedLink(path): adopts a tcx/xdp link an earlier berthd pinned.
  exports.Set("openPinnedLink", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) ThrowType(env, "openPinnedLink(path): path must be a string");
    std::string path = info[0].As<Napi::String>().Utf8Value();
    auto at = std::make_shared<Attachment>();
    auto fd = std::make_shared<int>(-1);
    return RunAsync(env, "berth.openPinnedLink",
        [path, at, fd] {
          *fd = bpf_obj_get(path.c_str());
          if (*fd < 0) ThrowSys(errno, "bpf_obj_get", "open pinned link '" + path + "'");
          struct bpf_link_info li = {};
          uint32_t len = sizeof(li);
          CheckRet(bpf_link_get_info_by_fd(*fd, &li, &len), "bpf_link_get_info_by_fd",
                   "read pinned link '" + path + "'");
          at->link_id = li.id;
          at->prog_id = li.prog_id;
          if (li.type == BPF_LINK_TYPE_TCX) {
            at->kind = "tcx";
            at->ifindex = li.tcx.ifindex;
            at->direction = li.tcx.attach_type == BPF_TCX_INGRESS ? "ingress" : "egress";
          } else if (li.type == BPF_LINK_TYPE_XDP) {
            at->kind = "xdp";
            at->ifindex = li.xdp.ifindex;
          } else if (li.type == BPF_LINK_TYPE_TRACING || li.type == BPF_LINK_TYPE_RAW_TRACEPOINT) {
            at->kind = "tracing";
          } else {
            close(*fd);
            ThrowSys(EINVAL, "bpf_obj_get", "'" + path + "' is not a tcx, XDP or tracing link");
          }
        },
        [at, fd](Napi::Env env) -> Napi::Value { return BpfLink::New(env, *at, *fd); });
  }));
}

struct LinkInit {
  const Attachment* at;
  int fd;
};

Napi::Object BpfLink::New(Napi::Env env, const Attachment& at, int link_fd) {
  LinkInit init{&at, link_fd};
  return Data(env).link_ctor.New({Napi::External<LinkInit>::New(env, &init)});
}

BpfLink::BpfLink(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfLink>(info) {
  if (!info[0].IsExternal()) ThrowType(info.Env(), "BpfLink is made by attachTc()/attachXdp()");
  auto* init = info[0].As<Napi::External<LinkInit>>().Data();
  at_ = *init->at;
  if (init->fd >= 0) fd_ = std::make_shared<Fd>(init->fd);
}

Napi::Value BpfLink::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", at_.kind);
  o.Set("ifindex", at_.ifindex);
  o.Set("netns", at_.netns);
  if (!at_.direction.empty()) o.Set("direction", at_.direction);
  if (!at_.mode.empty()) o.Set("mode", at_.mode);
  o.Set("progId", at_.prog_id);
  if (at_.kind == "clsact") {
    o.Set("handle", at_.handle);
    o.Set("priority", at_.priority);
    o.Set("qdiscCreated", at_.hook_created);
  } else {
    o.Set("linkId", at_.link_id);
  }
  o.Set("detached", detached_);
  return o;
}

// pin(path): keeps a tcx/xdp link attached after this process exits.
Napi::Value BpfLink::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!fd_) throw Napi::Error::New(env, at_.kind + " attachment has no link to pin (clsact filters persist by themselves)");
  if (!info[0].IsString()) ThrowType(env, "pin(path): path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  FdPtr fd = fd_;
  return RunAsync(env, "berth.link.pin",
      [fd, path] {
        if (bpf_obj_pin(fd->get(), path.c_str()) < 0)
          ThrowSys(errno, "bpf_obj_pin", "pin link at '" + path + "'");
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

// detach(): removes exactly this attachment. A link is detached through the
// kernel (so pins of it no longer hold anything); a clsact filter is deleted
// only while it still runs our program, and the qdisc is left in place since
// other tools' filters may share it.
Napi::Value BpfLink::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (detached_) return RunAsync(env, "berth.link.detach", [] {}, [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
  Attachment at = at_;
  FdPtr fd = fd_;
  detached_ = true;
  return RunAsync(env, "berth.link.detach",
      [at, fd] {
        std::string where = at.kind + " attachment on ifindex " + std::to_string(at.ifindex);
        if (fd) {
          int ret = bpf_link_detach(fd->get());
          // ENOLINK: already detached (its device went away).
          if (ret < 0 && ret != -ENOLINK) CheckRet(ret, "bpf_link_detach", "detach " + where);
          return;
        }
        NetnsScope ns(at.netns);
        LIBBPF_OPTS(bpf_tc_hook, hook);
        hook.ifindex = at.ifindex;
        hook.attach_point = at.direction == "ingress" ? BPF_TC_INGRESS : BPF_TC_EGRESS;
        LIBBPF_OPTS(bpf_tc_opts, q);
        q.handle = at.handle;
        q.priority = at.priority;
        int ret = bpf_tc_query(&hook, &q);
        if (ret == -ENOENT || ret == -EINVAL || ret == -ENODEV) return;  // gone already
        CheckRet(ret, "bpf_tc_query", "look up " + where);
        if (q.prog_id != at.prog_id) return;  // replaced by someone else: not ours to remove
        LIBBPF_OPTS(bpf_tc_opts, d);
        d.handle = at.handle;
        d.priority = at.priority;
        CheckRet(bpf_tc_detach(&hook, &d), "bpf_tc_detach", "detach " + where);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

// tcFilter({ifname|ifindex, netns?, direction, handle, priority, remove?}): the program id of the
// cls_bpf filter at that handle and priority (0: none); with remove, deletes it too.
Napi::Value TcFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "tcFilter(options): options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  std::string netns = o.Has("netns") ? o.Get("netns").ToString().Utf8Value() : "";
  std::string ifname = o.Has("ifname") ? o.Get("ifname").ToString().Utf8Value() : "";
  unsigned ifindex = o.Has("ifindex") ? o.Get("ifindex").ToNumber().Uint32Value() : 0;
  std::string dir = o.Has("direction") ? o.Get("direction").ToString().Utf8Value() : "ingress";
  uint32_t handle = o.Get("handle").ToNumber().Uint32Value(), prio = o.Get("priority").ToNumber().Uint32Value();
  bool remove = o.Has("remove") && o.Get("remove").ToBoolean().Value();
  auto prog_id = std::make_shared<uint32_t>(0);
  return RunAsync(env, "berth.tcFilter",
      [netns, ifname, ifindex, dir, handle, prio, remove, prog_id] {
        NetnsScope ns(netns);
        unsigned idx = ResolveIfindex(ifname, ifindex);
        LIBBPF_OPTS(bpf_tc_hook, hook);
        hook.ifindex = idx;
        hook.attach_point = dir == "egress" ? BPF_TC_EGRESS : BPF_TC_INGRESS;
        LIBBPF_OPTS(bpf_tc_opts, q);
        q.handle = handle;
        q.priority = prio;
        int ret = bpf_tc_query(&hook, &q);
        if (ret == -ENOENT || ret == -EINVAL || ret == -ENODEV) return;
        CheckRet(ret, "bpf_tc_query", "look up the tc filter " + std::to_string(handle) + "/" + std::to_string(prio) + " on ifindex " + std::to_string(idx));
        *prog_id = q.prog_id;
        if (!remove) return;
        LIBBPF_OPTS(bpf_tc_opts, d);
        d.handle = handle;
        d.priority = prio;
        CheckRet(bpf_tc_detach(&hook, &d), "bpf_tc_detach", "remove the tc filter on ifindex " + std::to_string(idx));
      },
      [prog_id](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, *prog_id); });
}

// close(): lets go of the link descriptor. An unpinned tcx/xdp link detaches
// with its last descriptor; a pinned one stays.
Napi::Value BpfLink::Close(const Napi::CallbackInfo& info) {
  fd_.reset();
  return info.Env().Undefined();
}

}  // namespace berth
