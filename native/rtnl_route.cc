// Routes, IPv4 and IPv6: add, replace, delete and list, in any table.
#include <errno.h>

#include "errors.h"
#include "rtnl.h"

namespace berth::rtnl {
namespace {

struct RouteArgs {
  std::string netns, dst_text, dev, scope;
  int family = 0;  // AF_INET | AF_INET6
  Cidr dst;        // prefix 0 for "default"
  bool has_via = false, has_src = false;
  IpAddr via, src;
  uint32_t table = RT_TABLE_MAIN;
  int64_t metric = -1;
};

const char* Version(int family) { return family == AF_INET ? "IPv4" : "IPv6"; }

RouteArgs ParseRouteArgs(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  Napi::Object o = OptionsArg(info, fn);
  RouteArgs r;
  r.netns = NetnsOpt(o, "netns");
  r.dst_text = RequiredString(o, "dst");
  int want = FamilyOpt(o, "family");
  if (Has(o, "via")) {
    r.has_via = true;
    r.via = ParseIp(env, RequiredString(o, "via"), "route gateway");
  }
  if (Has(o, "src")) {
    r.has_src = true;
    r.src = ParseIp(env, RequiredString(o, "src"), "route source");
  }
  if (r.dst_text == "default") {
    r.family = r.has_via ? r.via.family : want == 4 ? AF_INET : want == 6 ? AF_INET6 : 0;
    if (!r.family)
      ThrowType(env, std::string(fn) + ": route 'default' needs 'via' or 'family' (4 or 6) to say which family it is for");
    r.dst.addr.family = r.family;
  } else {
    r.dst = ParseCidr(env, r.dst_text, "route destination", true);
    r.family = r.dst.addr.family;
  }
  if (want && want != (r.family == AF_INET ? 4 : 6))
    ThrowType(env, std::string(fn) + ": route '" + r.dst_text + "' is " + Version(r.family) + " but 'family' is " + std::to_string(want));
  if (r.has_via && r.via.family != r.family)
    ThrowType(env, std::string(fn) + ": gateway '" + RequiredString(o, "via") + "' is " + Version(r.via.family) + " but route '" +
                       r.dst_text + "' is " + Version(r.family));
  if (r.has_src && r.src.family != r.family)
    ThrowType(env, std::string(fn) + ": source '" + RequiredString(o, "src") + "' is " + Version(r.src.family) + " but route '" +
                       r.dst_text + "' is " + Version(r.family));
  r.dev = IfnameOpt(o, "dev", true);
  r.table = RangeOpt(o, "table", RT_TABLE_MAIN, 1, 0xffffffffLL);
  r.metric = RangeOpt(o, "metric", -1, 0, 0xffffffffLL);
  r.scope = ChoiceOpt(o, "scope", {"global", "link", "host"}, "");
  return r;
}

std::string Describe(const char* verb, const RouteArgs& r) {
  std::string s = std::string(verb) + " route " + r.dst_text;
  if (r.dst_text == "default") s += std::string(" (") + Version(r.family) + ")";
  if (r.has_via) s += " via " + FormatIp(r.via.family, r.via.bytes);
  if (!r.dev.empty()) s += " dev '" + r.dev + "'";
  if (r.has_src) s += " src " + FormatIp(r.src.family, r.src.bytes);
  if (r.table != RT_TABLE_MAIN) s += " table " + std::to_string(r.table);
  if (r.metric >= 0) s += " metric " + std::to_string(r.metric);
  return s + InNs(r.netns);
}

uint8_t ScopeValue(const std::string& name) {
  return name == "link" ? RT_SCOPE_LINK : name == "host" ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
}

// Builds and sends one RTM_NEWROUTE/RTM_DELROUTE; returns the tolerated errno or 0.
int SendRoute(const RouteArgs& r, uint16_t type, uint16_t flags, const char* verb, std::initializer_list<int> tolerated) {
  std::string what = Describe(verb, r);
  EnterNetns ns(r.netns, what);
  unsigned oif = r.dev.empty() ? 0 : Ifindex(r.dev, what);
  RtnlSocket sk;
  rtmsg rt = {};
  rt.rtm_family = r.family;
  rt.rtm_dst_len = r.dst.prefix;
  rt.rtm_table = r.table < 256 ? r.table : RT_TABLE_UNSPEC;
  if (type == RTM_NEWROUTE) {
    rt.rtm_protocol = RTPROT_STATIC;
    rt.rtm_type = RTN_UNICAST;
    // As iproute2: a v4 route with no gateway is on-link; v6 is always universe.
    if (!r.scope.empty()) rt.rtm_scope = ScopeValue(r.scope);
    else if (r.family == AF_INET && !r.has_via) rt.rtm_scope = RT_SCOPE_LINK;
    else rt.rtm_scope = RT_SCOPE_UNIVERSE;
  } else {
    // Deleting matches any protocol and type, and any scope unless given.
    rt.rtm_scope = r.scope.empty() ? static_cast<uint8_t>(RT_SCOPE_NOWHERE) : ScopeValue(r.scope);
  }
  NlMsg req(type, flags, &rt, sizeof(rt));
  req.PutU32(RTA_TABLE, r.table);
  if (r.dst.prefix) req.Put(RTA_DST, r.dst.addr.bytes, r.dst.addr.len());
  if (r.has_via) req.Put(RTA_GATEWAY, r.via.bytes, r.via.len());
  if (oif) req.PutU32(RTA_OIF, oif);
  if (r.has_src) req.Put(RTA_PREFSRC, r.src.bytes, r.src.len());
  if (r.metric >= 0) req.PutU32(RTA_PRIORITY, r.metric);
  return sk.Request(req, what, tolerated);
}

Napi::Value RouteAdd(const Napi::CallbackInfo& info) {
  RouteArgs r = ParseRouteArgs(info, "routeAdd");
  return RunAsync(info.Env(), "berth.netlink.routeAdd",
      [r] { SendRoute(r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, "add", {}); }, Undefined);
}

Napi::Value RouteReplace(const Napi::CallbackInfo& info) {
  RouteArgs r = ParseRouteArgs(info, "routeReplace");
  return RunAsync(info.Env(), "berth.netlink.routeReplace",
      [r] { SendRoute(r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, "replace", {}); }, Undefined);
}

// routeDel(...) -> false when no such route existed.
Napi::Value RouteDel(const Napi::CallbackInfo& info) {
  RouteArgs r = ParseRouteArgs(info, "routeDel");
  auto existed = std::make_shared<bool>(false);
  return RunAsync(info.Env(), "berth.netlink.routeDel",
      [r, existed] { *existed = SendRoute(r, RTM_DELROUTE, 0, "delete", {ESRCH}) == 0; },
      [existed](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, *existed); });
}

struct RouteRow {
  int family = 4;
  std::string dst, via, dev, src, protocol, scope, type;
  uint32_t table = 0, metric = 0;
  bool has_metric = false;
};

Napi::Value RouteList(const Napi::CallbackInfo& info) {
  Napi::Object o = OptionsArg(info, "routeList");
  std::string netns = NetnsOpt(o, "netns");
  int family = FamilyOpt(o, "family");
  uint32_t table = RangeOpt(o, "table", RT_TABLE_MAIN, 0, 0xffffffffLL);
  auto rows = std::make_shared<std::vector<RouteRow>>();
  return RunAsync(info.Env(), "berth.netlink.routeList",
      [netns, family, table, rows] {
        std::string what = "list " + std::string(family ? family == 4 ? "IPv4 " : "IPv6 " : "") + "routes" +
                           (table ? " in table " + std::to_string(table) : "") + InNs(netns);
        EnterNetns ns(netns, what);
        RtnlSocket sk;
        std::map<unsigned, std::string> names = LinkNames(sk, what);
        rtmsg rt = {};
        rt.rtm_family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
        NlMsg req(RTM_GETROUTE, 0, &rt, sizeof(rt));
        sk.Dump(req, what, [&](const nlmsghdr* h) {
          if (h->nlmsg_type != RTM_NEWROUTE) return;
          const auto* m = static_cast<const rtmsg*>(NLMSG_DATA(h));
          if (m->rtm_family != AF_INET && m->rtm_family != AF_INET6) return;
          NlAttrs a = NlAttrs::Of(h, sizeof(rtmsg), RTA_MAX);
          RouteRow r;
          r.table = a.U32(RTA_TABLE, m->rtm_table);
          if (table && r.table != table) return;
          r.family = m->rtm_family == AF_INET ? 4 : 6;
          size_t alen = m->rtm_family == AF_INET ? 4 : 16;
          std::vector<uint8_t> dst = a.Bytes(RTA_DST);
          r.dst = m->rtm_dst_len == 0 || dst.size() != alen
                      ? "default"
                      : FormatIp(m->rtm_family, dst.data()) + "/" + std::to_string(m->rtm_dst_len);
          std::vector<uint8_t> gw = a.Bytes(RTA_GATEWAY);
          if (gw.size() == alen) r.via = FormatIp(m->rtm_family, gw.data());
          std::vector<uint8_t> src = a.Bytes(RTA_PREFSRC);
          if (src.size() == alen) r.src = FormatIp(m->rtm_family, src.data());
          if (a.Has(RTA_OIF)) r.dev = names[a.U32(RTA_OIF)];
          r.protocol = ProtocolName(m->rtm_protocol);
          r.scope = ScopeName(m->rtm_scope);
          r.type = RouteTypeName(m->rtm_type);
          r.has_metric = a.Has(RTA_PRIORITY);
          r.metric = a.U32(RTA_PRIORITY);
          rows->push_back(r);
        });
      },
      [rows](Napi::Env env) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, rows->size());
        for (size_t i = 0; i < rows->size(); i++) {
          const RouteRow& r = (*rows)[i];
          Napi::Object o = Napi::Object::New(env);
          o.Set("family", r.family);
          o.Set("dst", r.dst);
          if (!r.via.empty()) o.Set("via", r.via);
          if (!r.dev.empty()) o.Set("dev", r.dev);
          if (!r.src.empty()) o.Set("src", r.src);
          o.Set("table", r.table);
          o.Set("protocol", r.protocol);
          o.Set("scope", r.scope);
          o.Set("type", r.type);
          if (r.has_metric) o.Set("metric", r.metric);
          out.Set(i, o);
        }
        return out;
      });
}

}  // namespace

void InitRoutes(Napi::Env env, Napi::Object nl) {
  nl.Set("routeAdd", Napi::Function::New(env, RouteAdd));
  nl.Set("routeReplace", Napi::Function::New(env, RouteReplace));
  nl.Set("routeDel", Napi::Function::New(env, RouteDel));
  nl.Set("routeList", Napi::Function::New(env, RouteList));
}

}  // namespace berth::rtnl
