// Links: create bridges, veth pairs, macvlans and vxlans; change, delete and
// list them. A link can be created straight into another namespace
// (IFLA_NET_NS_FD), so a container's end never appears in the caller's.
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/veth.h>
#include <net/if.h>
// After net/if.h: IF_OPER_* only, its libc-compat guards skip the rest.
#include <linux/if.h>

#include "errors.h"
#include "rtnl.h"

namespace berth::rtnl {
namespace {

constexpr int64_t kMaxMtu = 1 << 24;  // the kernel checks each device's own limits

// What every link creation takes.
struct NewLink {
  std::string netns, name;
  int64_t mtu = 0;
  std::vector<uint8_t> mac;
};

NewLink NewLinkArgs(const Napi::Object& o) {
  NewLink l;
  l.netns = NetnsOpt(o, "netns");
  l.name = IfnameOpt(o, "name");
  l.mtu = RangeOpt(o, "mtu", 0, 68, kMaxMtu);
  l.mac = MacOpt(o, "mac");
  return l;
}

// RTM_NEWLINK that fails if @l.name exists, with name, mtu and address set; @up: created up.
NlMsg CreateMsg(const NewLink& l, bool up = false) {
  ifinfomsg ifi = {};
  if (up) {
    ifi.ifi_flags = IFF_UP;
    ifi.ifi_change = IFF_UP;
  }
  NlMsg req(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof(ifi));
  req.PutStr(IFLA_IFNAME, l.name);
  if (l.mtu) req.PutU32(IFLA_MTU, l.mtu);
  if (!l.mac.empty()) req.Put(IFLA_ADDRESS, l.mac.data(), l.mac.size());
  return req;
}

Napi::Value LinkAddBridge(const Napi::CallbackInfo& info) {
  NewLink l = NewLinkArgs(OptionsArg(info, "linkAddBridge"));
  return RunAsync(info.Env(), "berth.netlink.linkAddBridge",
      [l] {
        std::string what = "add bridge '" + l.name + "'" + InNs(l.netns);
        EnterNetns ns(l.netns, what);
        RtnlSocket sk;
        NlMsg req = CreateMsg(l);
        size_t li = req.BeginNest(IFLA_LINKINFO);
        req.PutStr(IFLA_INFO_KIND, "bridge");
        req.EndNest(li);
        sk.Request(req, what);
      },
      Undefined);
}

Napi::Value LinkAddVeth(const Napi::CallbackInfo& info) {
  Napi::Object o = OptionsArg(info, "linkAddVeth");
  NewLink l = NewLinkArgs(o);
  std::string peer = IfnameOpt(o, "peerName");
  std::string peer_netns = NetnsOpt(o, "peerNetns");
  std::vector<uint8_t> peer_mac = MacOpt(o, "peerMac");
  // The caller's end can go on a bridge and up in the same message (`ip link add ... master BR up`).
  std::string master = IfnameOpt(o, "master", true);
  bool up = BoolOpt(o, "up", false);
  return RunAsync(info.Env(), "berth.netlink.linkAddVeth",
      [l, peer, peer_netns, peer_mac, master, up] {
        std::string what = "add veth '" + l.name + "' with peer '" + peer + "'" +
                           (peer_netns.empty() ? "" : " (in netns '" + peer_netns + "')") +
                           (master.empty() ? "" : " on '" + master + "'") + InNs(l.netns);
        EnterNetns ns(l.netns, what);
        std::unique_ptr<NetnsFd> peer_fd;
        if (!peer_netns.empty()) peer_fd = std::make_unique<NetnsFd>(peer_netns, what);
        unsigned master_idx = master.empty() ? 0 : Ifindex(master, what);
        RtnlSocket sk;
        NlMsg req = CreateMsg(l, up);
        if (master_idx) req.PutU32(IFLA_MASTER, master_idx);
        size_t li = req.BeginNest(IFLA_LINKINFO);
        req.PutStr(IFLA_INFO_KIND, "veth");
        size_t data = req.BeginNest(IFLA_INFO_DATA);
        // The peer is described like a link of its own: an ifinfomsg, then attributes.
        size_t p = req.BeginNest(VETH_INFO_PEER, false);
        ifinfomsg peer_ifi = {};
        req.PutRaw(&peer_ifi, sizeof(peer_ifi));
        req.PutStr(IFLA_IFNAME, peer);
        if (l.mtu) req.PutU32(IFLA_MTU, l.mtu);  // a pair with two MTUs is a bug
        if (!peer_mac.empty()) req.Put(IFLA_ADDRESS, peer_mac.data(), peer_mac.size());
        if (peer_fd) req.PutU32(IFLA_NET_NS_FD, peer_fd->get());
        req.EndNest(p);
        req.EndNest(data);
        req.EndNest(li);
        sk.Request(req, what);
      },
      Undefined);
}

Napi::Value LinkAddMacvlan(const Napi::CallbackInfo& info) {
  Napi::Object o = OptionsArg(info, "linkAddMacvlan");
  NewLink l = NewLinkArgs(o);
  std::string parent = IfnameOpt(o, "parent");
  std::string mode = ChoiceOpt(o, "mode", {"bridge", "private", "vepa", "passthru"}, "bridge");
  std::string peer_netns = NetnsOpt(o, "peerNetns");
  uint32_t mode_bits = mode == "private" ? MACVLAN_MODE_PRIVATE
                       : mode == "vepa"  ? MACVLAN_MODE_VEPA
                       : mode == "passthru" ? MACVLAN_MODE_PASSTHRU
                                            : MACVLAN_MODE_BRIDGE;
  return RunAsync(info.Env(), "berth.netlink.linkAddMacvlan",
      [l, parent, mode, mode_bits, peer_netns] {
        std::string what = "add macvlan '" + l.name + "' (" + mode + ") on '" + parent + "'" + InNs(l.netns) +
                           (peer_netns.empty() ? "" : " into netns '" + peer_netns + "'");
        EnterNetns ns(l.netns, what);
        unsigned parent_idx = Ifindex(parent, what);
        std::unique_ptr<NetnsFd> target;
        if (!peer_netns.empty()) target = std::make_unique<NetnsFd>(peer_netns, what);
        RtnlSocket sk;
        NlMsg req = CreateMsg(l);
        req.PutU32(IFLA_LINK, parent_idx);
        if (target) req.PutU32(IFLA_NET_NS_FD, target->get());
        size_t li = req.BeginNest(IFLA_LINKINFO);
        req.PutStr(IFLA_INFO_KIND, "macvlan");
        size_t data = req.BeginNest(IFLA_INFO_DATA);
        req.PutU32(IFLA_MACVLAN_MODE, mode_bits);
        req.EndNest(data);
        req.EndNest(li);
        sk.Request(req, what);
      },
      Undefined);
}

Napi::Value LinkAddVxlan(const Napi::CallbackInfo& info) {
  Napi::Object o = OptionsArg(info, "linkAddVxlan");
  NewLink l = NewLinkArgs(o);
  if (!Has(o, "vni")) ThrowType(info.Env(), "linkAddVxlan: option 'vni' is required");
  uint32_t vni = RangeOpt(o, "vni", 0, 0, (1 << 24) - 1);
  // 4789 is IANA's port; the kernel's own default (8472) predates it.
  uint16_t port = RangeOpt(o, "port", 4789, 1, 65535);
  bool has_local = Has(o, "local");
  IpAddr local = has_local ? ParseIp(info.Env(), RequiredString(o, "local"), "vxlan local address") : IpAddr{};
  std::string dev = IfnameOpt(o, "dev", true);
  int learning = Has(o, "learning") ? BoolOpt(o, "learning", true) : -1;
  // external (collect metadata): one device for every VNI, a BPF program sets the tunnel key per packet.
  bool external = Has(o, "external") && BoolOpt(o, "external", false);
  return RunAsync(info.Env(), "berth.netlink.linkAddVxlan",
      [l, vni, port, has_local, local, dev, learning, external] {
        std::string what = "add vxlan '" + l.name + "' (vni " + std::to_string(vni) + ", port " + std::to_string(port) +
                           (dev.empty() ? "" : ", dev '" + dev + "'") + (external ? ", external" : "") + ")" + InNs(l.netns);
        EnterNetns ns(l.netns, what);
        unsigned dev_idx = dev.empty() ? 0 : Ifindex(dev, what);
        RtnlSocket sk;
        NlMsg req = CreateMsg(l);
        size_t li = req.BeginNest(IFLA_LINKINFO);
        req.PutStr(IFLA_INFO_KIND, "vxlan");
        size_t data = req.BeginNest(IFLA_INFO_DATA);
        req.PutU32(IFLA_VXLAN_ID, vni);
        req.PutU16(IFLA_VXLAN_PORT, htons(port));
        if (has_local) req.Put(local.family == AF_INET ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, local.bytes, local.len());
        if (dev_idx) req.PutU32(IFLA_VXLAN_LINK, dev_idx);
        if (learning >= 0) req.PutU8(IFLA_VXLAN_LEARNING, learning);
        if (external) req.PutU8(IFLA_VXLAN_COLLECT_METADATA, 1);
        req.EndNest(data);
        req.EndNest(li);
        sk.Request(req, what);
      },
      Undefined);
}

struct LinkChange {
  std::string netns, name;
  int up = -1;         // -1: leave as is
  int64_t mtu = 0;
  bool set_master = false;
  std::string master;  // "" with set_master: nomaster
  std::string new_name, target_netns;
  std::vector<uint8_t> mac;
};

std::string Describe(const LinkChange& c) {
  std::string parts;
  auto add = [&](const std::string& s) { parts += (parts.empty() ? "" : ", ") + s; };
  if (c.up >= 0) add(c.up ? "up" : "down");
  if (c.mtu) add("mtu " + std::to_string(c.mtu));
  if (c.set_master) add(c.master.empty() ? "nomaster" : "master '" + c.master + "'");
  if (!c.new_name.empty()) add("name '" + c.new_name + "'");
  if (!c.mac.empty()) add("address " + FormatMac(c.mac));
  if (!c.target_netns.empty()) add("netns '" + c.target_netns + "'");
  return "set '" + c.name + "' " + (parts.empty() ? "(nothing)" : parts) + InNs(c.netns);
}

Napi::Value LinkSet(const Napi::CallbackInfo& info) {
  Napi::Object o = OptionsArg(info, "linkSet");
  LinkChange c;
  c.netns = NetnsOpt(o, "netns");
  c.name = IfnameOpt(o, "name");
  if (Has(o, "up")) c.up = BoolOpt(o, "up", false);
  c.mtu = RangeOpt(o, "mtu", 0, 68, kMaxMtu);
  if (Has(o, "master")) {
    c.set_master = true;
    if (!o.Get("master").IsNull()) c.master = IfnameOpt(o, "master");
  }
  c.new_name = IfnameOpt(o, "newName", true);
  c.mac = MacOpt(o, "mac");
  c.target_netns = NetnsOpt(o, "targetNetns");
  return RunAsync(info.Env(), "berth.netlink.linkSet",
      [c] {
        std::string what = Describe(c);
        EnterNetns ns(c.netns, what);
        unsigned idx = Ifindex(c.name, what);
        unsigned master_idx = c.master.empty() ? 0 : Ifindex(c.master, what);
        std::unique_ptr<NetnsFd> target;
        if (!c.target_netns.empty()) target = std::make_unique<NetnsFd>(c.target_netns, what);
        RtnlSocket sk;
        ifinfomsg ifi = {};
        ifi.ifi_index = idx;
        if (c.up >= 0) {
          ifi.ifi_change = IFF_UP;
          ifi.ifi_flags = c.up ? IFF_UP : 0;
        }
        NlMsg req(RTM_NEWLINK, 0, &ifi, sizeof(ifi));
        if (c.mtu) req.PutU32(IFLA_MTU, c.mtu);
        if (c.set_master) req.PutU32(IFLA_MASTER, master_idx);
        if (!c.new_name.empty()) req.PutStr(IFLA_IFNAME, c.new_name);
        if (!c.mac.empty()) req.Put(IFLA_ADDRESS, c.mac.data(), c.mac.size());
        if (target) req.PutU32(IFLA_NET_NS_FD, target->get());
        sk.Request(req, what);
      },
      Undefined);
}

// linkDel({netns?, name}) -> false when there was no such link.
Napi::Value LinkDel(const Napi::CallbackInfo& info) {
  Napi::Object o = OptionsArg(info, "linkDel");
  std::string netns = NetnsOpt(o, "netns"), name = IfnameOpt(o, "name");
  auto existed = std::make_shared<bool>(false);
  return RunAsync(info.Env(), "berth.netlink.linkDel",
      [netns, name, existed] {
        std::string what = "delete link '" + name + "'" + InNs(netns);
        EnterNetns ns(netns, what);
        RtnlSocket sk;
        ifinfomsg ifi = {};
        NlMsg req(RTM_DELLINK, 0, &ifi, sizeof(ifi));
        req.PutStr(IFLA_IFNAME, name);
        *existed = sk.Request(req, what, {ENODEV}) == 0;
      },
      [existed](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, *existed); });
}

struct LinkRow {
  unsigned ifindex = 0, master = 0, mtu = 0;
  std::string name, kind, mac;
  bool up = false, oper_up = false;
  bool has_link = false, has_netnsid = false;
  unsigned link = 0;
  int netnsid = 0;
};

LinkRow ParseLink(const nlmsghdr* h) {
  const auto* m = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
  NlAttrs a = NlAttrs::Of(h, sizeof(ifinfomsg), IFLA_MAX);
  LinkRow r;
  r.ifindex = m->ifi_index;
  r.name = a.Str(IFLA_IFNAME);
  r.kind = NlAttrs::Nested(a[IFLA_LINKINFO], IFLA_INFO_MAX).Str(IFLA_INFO_KIND);
  r.master = a.U32(IFLA_MASTER);
  r.mtu = a.U32(IFLA_MTU);
  r.mac = FormatMac(a.Bytes(IFLA_ADDRESS));
  r.up = m->ifi_flags & IFF_UP;
  uint8_t oper = a.U8(IFLA_OPERSTATE, IF_OPER_UNKNOWN);
  // Devices that do not track carrier (lo) say UNKNOWN; RUNNING decides then.
  r.oper_up = oper == IF_OPER_UP || (oper == IF_OPER_UNKNOWN && (m->ifi_flags & IFF_RUNNING));
  r.has_link = a.Has(IFLA_LINK);
  r.link = a.U32(IFLA_LINK);
  r.has_netnsid = a.Has(IFLA_LINK_NETNSID);
  r.netnsid = static_cast<int>(a.U32(IFLA_LINK_NETNSID));
  return r;
}

Napi::Value LinkList(const Napi::CallbackInfo& info) {
  Napi::Object o = OptionsArg(info, "linkList");
  std::string netns = NetnsOpt(o, "netns");
  auto rows = std::make_shared<std::vector<LinkRow>>();
  return RunAsync(info.Env(), "berth.netlink.linkList",
      [netns, rows] {
        std::string what = "list links" + InNs(netns);
        EnterNetns ns(netns, what);
        RtnlSocket sk;
        ifinfomsg ifi = {};
        NlMsg req(RTM_GETLINK, 0, &ifi, sizeof(ifi));
        req.PutU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        sk.Dump(req, what, [&](const nlmsghdr* h) {
          if (h->nlmsg_type == RTM_NEWLINK) rows->push_back(ParseLink(h));
        });
      },
      [rows](Napi::Env env) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, rows->size());
        for (size_t i = 0; i < rows->size(); i++) {
          const LinkRow& r = (*rows)[i];
          Napi::Object l = Napi::Object::New(env);
          l.Set("ifindex", r.ifindex);
          l.Set("name", r.name);
          l.Set("kind", r.kind);
          l.Set("master", r.master);
          l.Set("up", r.up);
          l.Set("operUp", r.oper_up);
          l.Set("mtu", r.mtu);
          l.Set("mac", r.mac);
          if (r.has_link) l.Set("peerIfindex", r.link);
          if (r.has_netnsid) l.Set("peerNetnsId", r.netnsid);
          out.Set(i, l);
        }
        return out;
      });
}

}  // namespace

void InitLinks(Napi::Env env, Napi::Object nl) {
  nl.Set("linkAddBridge", Napi::Function::New(env, LinkAddBridge));
  nl.Set("linkAddVeth", Napi::Function::New(env, LinkAddVeth));
  nl.Set("linkAddMacvlan", Napi::Function::New(env, LinkAddMacvlan));
  nl.Set("linkAddVxlan", Napi::Function::New(env, LinkAddVxlan));
  nl.Set("linkSet", Napi::Function::New(env, LinkSet));
  nl.Set("linkDel", Napi::Function::New(env, LinkDel));
  nl.Set("linkList", Napi::Function::New(env, LinkList));
}

}  // namespace berth::rtnl
