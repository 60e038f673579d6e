// Interface addresses, IPv4 and IPv6: add (IPv4 with its broadcast, like
// `ip addr add ... brd +`), delete and list.
#include <errno.h>
#include <linux/if_addr.h>

#include "errors.h"
#include "rtnl.h"

namespace berth::rtnl {

NlMsg AddrMessage(uint16_t type, uint16_t flags, const Cidr& cidr, bool nodad, unsigned ifindex) {
  const IpAddr& ip = cidr.addr;
  ifaddrmsg ifa = {};
  ifa.ifa_family = ip.family;
  ifa.ifa_prefixlen = cidr.prefix;
  ifa.ifa_index = ifindex;
  if (type == RTM_NEWADDR) {
    ifa.ifa_flags = nodad ? IFA_F_NODAD : 0;
    // iproute2 gives 127.0.0.0/8 host scope; everything else is global.
    ifa.ifa_scope = ip.family == AF_INET && ip.bytes[0] == 127 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
  }
  NlMsg req(type, flags, &ifa, sizeof(ifa));
  req.Put(IFA_LOCAL, ip.bytes, ip.len());
  req.Put(IFA_ADDRESS, ip.bytes, ip.len());
  // The all-ones host part, except on /31 and /32 where there is none.
  if (type == RTM_NEWADDR && ip.family == AF_INET && cidr.prefix <= 30) {
    uint8_t brd[4];
    for (int i = 0; i < 4; i++) {
      int bits = cidr.prefix - i * 8;  // prefix bits within this byte
      uint8_t host = bits >= 8 ? 0 : bits <= 0 ? 0xff : static_cast<uint8_t>(0xff >> bits);
      brd[i] = ip.bytes[i] | host;
    }
    req.Put(IFA_BROADCAST, brd, 4);
  }
  return req;
}

namespace {

struct AddrArgs {
  std::string netns, dev;
  Cidr cidr;
  bool nodad = false;
};

AddrArgs ParseAddrArgs(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Object o = OptionsArg(info, fn);
  AddrArgs a;
  a.netns = NetnsOpt(o, "netns");
  a.dev = IfnameOpt(o, "dev");
  a.cidr = ParseCidr(info.Env(), RequiredString(o, "cidr"), "address", false);
  a.nodad = BoolOpt(o, "nodad", false);
  return a;
}

NlMsg AddrMsg(uint16_t type, uint16_t flags, const AddrArgs& a, unsigned ifindex) {
  return AddrMessage(type, flags, a.cidr, a.nodad, ifindex);
}

Napi::Value AddrAdd(const Napi::CallbackInfo& info) {
  AddrArgs a = ParseAddrArgs(info, "addrAdd");
  return RunAsync(info.Env(), "berth.netlink.addrAdd",
      [a] {
        std::string what = "add address " + a.cidr.text + " to '" + a.dev + "'" + InNs(a.netns);
        EnterNetns ns(a.netns, what);
        unsigned idx = Ifindex(a.dev, what);
        RtnlSocket sk;
        NlMsg req = AddrMsg(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, a, idx);
        sk.Request(req, what);
      },
      Undefined);
}

// addrDel(...) -> false when the interface did not have the address.
Napi::Value AddrDel(const Napi::CallbackInfo& info) {
  AddrArgs a = ParseAddrArgs(info, "addrDel");
  auto existed = std::make_shared<bool>(false);
  return RunAsync(info.Env(), "berth.netlink.addrDel",
      [a, existed] {
        std::string what = "delete address " + a.cidr.text + " from '" + a.dev + "'" + InNs(a.netns);
        EnterNetns ns(a.netns, what);
        unsigned idx = Ifindex(a.dev, what);
        RtnlSocket sk;
        NlMsg req = AddrMsg(RTM_DELADDR, 0, a, idx);
        *existed = sk.Request(req, what, {EADDRNOTAVAIL}) == 0;
      },
      [existed](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, *existed); });
}

struct AddrRow {
  unsigned ifindex = 0;
  std::string dev, cidr, scope;
  int family = 4;
};

Napi::Value AddrList(const Napi::CallbackInfo& info) {
  Napi::Object o = OptionsArg(info, "addrList");
  std::string netns = NetnsOpt(o, "netns");
  std::string dev = IfnameOpt(o, "dev", true);
  int family = FamilyOpt(o, "family");
  auto rows = std::make_shared<std::vector<AddrRow>>();
  return RunAsync(info.Env(), "berth.netlink.addrList",
      [netns, dev, family, rows] {
        std::string what = "list addresses" + (dev.empty() ? "" : " of '" + dev + "'") + InNs(netns);
        EnterNetns ns(netns, what);
        unsigned want = dev.empty() ? 0 : Ifindex(dev, what);
        RtnlSocket sk;
        std::map<unsigned, std::string> names;
        if (!want) names = LinkNames(sk, what);
        ifaddrmsg ifa = {};
        ifa.ifa_family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
        NlMsg req(RTM_GETADDR, 0, &ifa, sizeof(ifa));
        sk.Dump(req, what, [&](const nlmsghdr* h) {
          if (h->nlmsg_type != RTM_NEWADDR) return;
          const auto* m = static_cast<const ifaddrmsg*>(NLMSG_DATA(h));
          if (want && m->ifa_index != want) return;
          NlAttrs at = NlAttrs::Of(h, sizeof(ifaddrmsg), IFA_MAX);
          std::vector<uint8_t> ip = at.Bytes(at.Has(IFA_LOCAL) ? IFA_LOCAL : IFA_ADDRESS);
          if (ip.size() != (m->ifa_family == AF_INET ? 4u : 16u)) return;
          AddrRow r;
          r.ifindex = m->ifa_index;
          r.dev = want ? dev : names[m->ifa_index];
          r.cidr = FormatIp(m->ifa_family, ip.data()) + "/" + std::to_string(m->ifa_prefixlen);
          r.family = m->ifa_family == AF_INET ? 4 : 6;
          r.scope = ScopeName(m->ifa_scope);
          rows->push_back(r);
        });
      },
      [rows](Napi::Env env) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, rows->size());
        for (size_t i = 0; i < rows->size(); i++) {
          const AddrRow& r = (*rows)[i];
          Napi::Object a = Napi::Object::New(env);
          a.Set("dev", r.dev);
          a.Set("ifindex", r.ifindex);
          a.Set("cidr", r.cidr);
          a.Set("family", r.family);
          a.Set("scope", r.scope);
          out.Set(i, a);
        }
        return out;
      });
}

}  // namespace

void InitAddrs(Napi::Env env, Napi::Object nl) {
  nl.Set("addrAdd", Napi::Function::New(env, AddrAdd));
  nl.Set("addrDel", Napi::Function::New(env, AddrDel));
  nl.Set("addrList", Napi::Function::New(env, AddrList));
}

}  // namespace berth::rtnl
