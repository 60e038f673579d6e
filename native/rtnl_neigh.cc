// Neighbour (ARP / NDP) entries: set, delete and list.
#include <errno.h>
#include <linux/neighbour.h>

#include "errors.h"
#include "rtnl.h"

namespace berth::rtnl {
namespace {

struct NeighArgs {
  std::string netns, dev, ip_text;
  IpAddr ip;
  std::vector<uint8_t> mac;
  bool permanent = true;
};

NeighArgs ParseNeighArgs(const Napi::CallbackInfo& info, const char* fn, bool with_mac) {
  Napi::Object o = OptionsArg(info, fn);
  NeighArgs n;
  n.netns = NetnsOpt(o, "netns");
  n.dev = IfnameOpt(o, "dev");
  n.ip_text = RequiredString(o, "ip");
  n.ip = ParseIp(info.Env(), n.ip_text, "neighbour address");
  if (with_mac) {
    if (!Has(o, "mac")) ThrowType(info.Env(), std::string(fn) + ": option 'mac' is required");
    n.mac = MacOpt(o, "mac");
    n.permanent = BoolOpt(o, "permanent", true);
  }
  return n;
}

NlMsg NeighMsg(uint16_t type, uint16_t flags, const NeighArgs& n, unsigned ifindex) {
  ndmsg nd = {};
  nd.ndm_family = n.ip.family;
  nd.ndm_ifindex = ifindex;
  if (type == RTM_NEWNEIGH) nd.ndm_state = n.permanent ? NUD_PERMANENT : NUD_REACHABLE;
  NlMsg req(type, flags, &nd, sizeof(nd));
  req.Put(NDA_DST, n.ip.bytes, n.ip.len());
  if (!n.mac.empty()) req.Put(NDA_LLADDR, n.mac.data(), n.mac.size());
  return req;
}

// neighReplace({netns?, dev, ip, mac, permanent = true}).
Napi::Value NeighReplace(const Napi::CallbackInfo& info) {
  NeighArgs n = ParseNeighArgs(info, "neighReplace", true);
  return RunAsync(info.Env(), "berth.netlink.neighReplace",
      [n] {
        std::string what = "set neighbour " + n.ip_text + " lladdr " + FormatMac(n.mac) + " on '" + n.dev + "'" +
                           (n.permanent ? " (permanent)" : "") + InNs(n.netns);
        EnterNetns ns(n.netns, what);
        unsigned idx = Ifindex(n.dev, what);
        RtnlSocket sk;
        NlMsg req = NeighMsg(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, n, idx);
        sk.Request(req, what);
      },
      Undefined);
}

// neighDel({netns?, dev, ip}) -> false when there was no entry.
Napi::Value NeighDel(const Napi::CallbackInfo& info) {
  NeighArgs n = ParseNeighArgs(info, "neighDel", false);
  auto existed = std::make_shared<bool>(false);
  return RunAsync(info.Env(), "berth.netlink.neighDel",
      [n, existed] {
        std::string what = "delete neighbour " + n.ip_text + " on '" + n.dev + "'" + InNs(n.netns);
        EnterNetns ns(n.netns, what);
        unsigned idx = Ifindex(n.dev, what);
        RtnlSocket sk;
        NlMsg req = NeighMsg(RTM_DELNEIGH, 0, n, idx);
        *existed = sk.Request(req, what, {ENOENT}) == 0;
      },
      [existed](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, *existed); });
}

std::string StateName(uint16_t state) {
  static const std::pair<uint16_t, const char*> kNames[] = {
      {NUD_PERMANENT, "permanent"}, {NUD_NOARP, "noarp"}, {NUD_REACHABLE, "reachable"}, {NUD_STALE, "stale"},
      {NUD_DELAY, "delay"},         {NUD_PROBE, "probe"}, {NUD_FAILED, "failed"},       {NUD_INCOMPLETE, "incomplete"}};
  for (const auto& [bit, name] : kNames)
    if (state & bit) return name;
  return "none";
}

struct NeighRow {
  unsigned ifindex = 0;
  std::string dev, ip, mac, state;
  int family = 4;
  bool router = false;
};

Napi::Value NeighList(const Napi::CallbackInfo& info) {
  Napi::Object o = OptionsArg(info, "neighList");
  std::string netns = NetnsOpt(o, "netns");
  std::string dev = IfnameOpt(o, "dev", true);
  int family = FamilyOpt(o, "family");
  auto rows = std::make_shared<std::vector<NeighRow>>();
  return RunAsync(info.Env(), "berth.netlink.neighList",
      [netns, dev, family, rows] {
        std::string what = "list neighbours" + (dev.empty() ? "" : " of '" + dev + "'") + InNs(netns);
        EnterNetns ns(netns, what);
        unsigned want = dev.empty() ? 0 : Ifindex(dev, what);
        RtnlSocket sk;
        std::map<unsigned, std::string> names;
        if (!want) names = LinkNames(sk, what);
        ndmsg nd = {};
        nd.ndm_family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
        NlMsg req(RTM_GETNEIGH, 0, &nd, sizeof(nd));
        sk.Dump(req, what, [&](const nlmsghdr* h) {
          if (h->nlmsg_type != RTM_NEWNEIGH) return;
          const auto* m = static_cast<const ndmsg*>(NLMSG_DATA(h));
          if (m->ndm_family != AF_INET && m->ndm_family != AF_INET6) return;
          if (want && static_cast<unsigned>(m->ndm_ifindex) != want) return;
          NlAttrs a = NlAttrs::Of(h, sizeof(ndmsg), NDA_MAX);
          std::vector<uint8_t> ip = a.Bytes(NDA_DST);
          if (ip.size() != (m->ndm_family == AF_INET ? 4u : 16u)) return;
          NeighRow r;
          r.ifindex = m->ndm_ifindex;
          r.dev = want ? dev : names[r.ifindex];
          r.ip = FormatIp(m->ndm_family, ip.data());
          r.mac = FormatMac(a.Bytes(NDA_LLADDR));
          r.state = StateName(m->ndm_state);
          r.family = m->ndm_family == AF_INET ? 4 : 6;
          r.router = m->ndm_flags & NTF_ROUTER;
          rows->push_back(r);
        });
      },
      [rows](Napi::Env env) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, rows->size());
        for (size_t i = 0; i < rows->size(); i++) {
          const NeighRow& r = (*rows)[i];
          Napi::Object n = Napi::Object::New(env);
          n.Set("dev", r.dev);
          n.Set("ifindex", r.ifindex);
          n.Set("ip", r.ip);
          if (!r.mac.empty()) n.Set("mac", r.mac);
          n.Set("state", r.state);
          n.Set("family", r.family);
          if (r.router) n.Set("router", true);
          out.Set(i, n);
        }
        return out;
      });
}

}  // namespace

void InitNeigh(Napi::Env env, Napi::Object nl) {
  nl.Set("neighReplace", Napi::Function::New(env, NeighReplace));
  nl.Set("neighDel", Napi::Function::New(env, NeighDel));
  nl.Set("neighList", Napi::Function::New(env, NeighList));
}

}  // namespace berth::rtnl
