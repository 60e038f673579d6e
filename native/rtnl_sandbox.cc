// The sandbox end of an endpoint in one call: inside the sandbox's namespace,
// its sysctls, addresses, link up and default routes, on one worker that
// enters the namespace once. As separate calls these were some twenty
// thread-pool round trips and namespace switches on every attach.
#include <errno.h>
#include <linux/if.h>

#include "errors.h"
#include "rtnl.h"

namespace berth::rtnl {
namespace {

struct SandboxSide {
  std::string netns, ifname;
  std::vector<std::pair<std::string, std::string>> sysctls;
  std::vector<std::pair<Cidr, bool>> addrs;  // address, nodad
  std::vector<IpAddr> gateways;              // a default route via each, on @ifname
};

Napi::Array ListOpt(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return Napi::Array::New(o.Env());
  if (!v.IsArray()) ThrowType(o.Env(), std::string("sandboxSide: option '") + key + "' must be an array");
  return v.As<Napi::Array>();
}

Napi::Object ItemAt(const Napi::Array& a, uint32_t i, const char* key) {
  Napi::Value v = a.Get(i);
  if (!v.IsObject()) ThrowType(a.Env(), std::string("sandboxSide: ") + key + "[" + std::to_string(i) + "] must be an object");
  return v.As<Napi::Object>();
}

// sandboxSide({netns, ifname, sysctls: [{key, value}], addrs: [{cidr, nodad?}], gateways: [ip]})
// A sysctl the kernel lacks (no IPv6) is skipped; an address already there is kept.
Napi::Value SandboxSideCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = OptionsArg(info, "sandboxSide");
  SandboxSide s;
  s.netns = NetnsOpt(o, "netns");
  if (s.netns.empty()) ThrowType(env, "sandboxSide: option 'netns' (the sandbox's namespace file) is required");
  s.ifname = IfnameOpt(o, "ifname");
  Napi::Array sys = ListOpt(o, "sysctls");
  for (uint32_t i = 0; i < sys.Length(); i++) {
    Napi::Object e = ItemAt(sys, i, "sysctls");
    Napi::Value v = e.Get("value");
    if (!v.IsString()) ThrowType(env, "sandboxSide: sysctls[" + std::to_string(i) + "].value must be a string");
    s.sysctls.emplace_back(CheckSysctlKey(env, RequiredString(e, "key"), "sandboxSide"), v.As<Napi::String>().Utf8Value());
  }
  Napi::Array addrs = ListOpt(o, "addrs");
  for (uint32_t i = 0; i < addrs.Length(); i++) {
    Napi::Object e = ItemAt(addrs, i, "addrs");
    s.addrs.emplace_back(ParseCidr(env, RequiredString(e, "cidr"), "address", false), BoolOpt(e, "nodad", false));
  }
  Napi::Array gws = ListOpt(o, "gateways");
  for (uint32_t i = 0; i < gws.Length(); i++) {
    Napi::Value v = gws.Get(i);
    if (!v.IsString()) ThrowType(env, "sandboxSide: gateways[" + std::to_string(i) + "] must be an address string");
    s.gateways.push_back(ParseIp(env, v.As<Napi::String>().Utf8Value(), "route gateway"));
  }
  return RunAsync(env, "berth.netlink.sandboxSide",
      [s] {
        std::string in = InNs(s.netns);
        EnterNetns ns(s.netns, "configure '" + s.ifname + "'" + in);
        for (const auto& [key, value] : s.sysctls) WriteSysctlHere(key, value, "set sysctl " + key + " = '" + value + "'" + in, true);
        unsigned idx = Ifindex(s.ifname, "configure '" + s.ifname + "'" + in);
        RtnlSocket sk;
        for (const auto& [cidr, nodad] : s.addrs) {
          NlMsg req = AddrMessage(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, cidr, nodad, idx);
          sk.Request(req, "add address " + cidr.text + " to '" + s.ifname + "'" + in, {EEXIST});
        }
        ifinfomsg ifi = {};
        ifi.ifi_index = idx;
        ifi.ifi_change = IFF_UP;
        ifi.ifi_flags = IFF_UP;
        NlMsg up(RTM_NEWLINK, 0, &ifi, sizeof(ifi));
        sk.Request(up, "set '" + s.ifname + "' up" + in);
        for (const IpAddr& gw : s.gateways) {
          // As routeReplace({dst: 'default', via, dev}): a static unicast route in the main table.
          rtmsg rt = {};
          rt.rtm_family = gw.family;
          rt.rtm_table = RT_TABLE_MAIN;
          rt.rtm_protocol = RTPROT_STATIC;
          rt.rtm_type = RTN_UNICAST;
          rt.rtm_scope = RT_SCOPE_UNIVERSE;
          NlMsg req(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rt, sizeof(rt));
          req.PutU32(RTA_TABLE, RT_TABLE_MAIN);
          req.Put(RTA_GATEWAY, gw.bytes, gw.len());
          req.PutU32(RTA_OIF, idx);
          sk.Request(req, "replace route default via " + FormatIp(gw.family, gw.bytes) + " dev '" + s.ifname + "'" + in);
        }
      },
      Undefined);
}

}  // namespace

void InitSandboxSide(Napi::Env env, Napi::Object nl) {
  nl.Set("sandboxSide", Napi::Function::New(env, SandboxSideCall));
}

}  // namespace berth::rtnl
