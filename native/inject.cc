// Sending one crafted packet, for `berth explain` on the iptables datapath:
// the kernel's own netfilter trace follows it through the real rules.
//  - with ifname: an Ethernet frame written to that interface with an
//    AF_PACKET socket (from inside a sandbox: as if the sandbox sent it);
//  - without: the IP packet of the frame (the 14 bytes of Ethernet header
//    skipped) sent with a raw socket, as the host's own traffic is sent, so
//    it passes the OUTPUT hooks.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "async.h"
#include "errors.h"
#include "netns.h"

namespace berth {
namespace {

void SendFrame(const std::string& ifname, const std::vector<uint8_t>& frame) {
  if (frame.size() < ETH_HLEN)
    ThrowSys(EINVAL, "sendto", "send a frame on '" + ifname + "': " + std::to_string(frame.size()) + " bytes is shorter than an Ethernet header");
  unsigned idx = ResolveIfindex(ifname, 0);
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowSys(errno, "socket", "open a packet socket on '" + ifname + "'");
  struct sockaddr_ll sll = {};
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = (int)idx;
  sll.sll_halen = ETH_ALEN;
  memcpy(&sll.sll_protocol, frame.data() + 12, 2);  // the frame's EtherType, already in network order
  memcpy(sll.sll_addr, frame.data(), ETH_ALEN);
  ssize_t n = sendto(fd, frame.data(), frame.size(), 0, (struct sockaddr*)&sll, sizeof(sll));
  int err = errno;
  close(fd);
  if (n < 0) ThrowSys(err, "sendto", "send a frame on '" + ifname + "'");
}

void SendIp(const std::vector<uint8_t>& frame) {
  if (frame.size() < 14 + 1) ThrowSys(EINVAL, "sendto", "send a raw IP packet: a frame of " + std::to_string(frame.size()) + " bytes holds none");
  const uint8_t* ip = frame.data() + 14;
  size_t len = frame.size() - 14;
  int version = ip[0] >> 4;
  bool v4 = version == 4;
  if (version != 4 && version != 6) ThrowSys(EINVAL, "sendto", "send a raw IP packet: IP version " + std::to_string(version) + " is neither 4 nor 6");
  if (len < (v4 ? 20u : 40u))
    ThrowSys(EINVAL, "sendto", "send a raw IP packet: " + std::to_string(len) + " bytes is shorter than an IPv" + std::to_string(version) + " header");
  int fd = socket(v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) ThrowSys(errno, "socket", "open a raw IP socket");
  ssize_t n;
  if (v4) {
    struct sockaddr_in a = {};
    a.sin_family = AF_INET;
    memcpy(&a.sin_addr, ip + 16, 4);
    n = sendto(fd, ip, len, 0, (struct sockaddr*)&a, sizeof(a));
  } else {
    // IPPROTO_RAW on an IPv6 socket means the header is included (IPV6_HDRINCL).
    struct sockaddr_in6 a = {};
    a.sin6_family = AF_INET6;
    memcpy(&a.sin6_addr, ip + 24, 16);
    n = sendto(fd, ip, len, 0, (struct sockaddr*)&a, sizeof(a));
  }
  int err = errno;
  close(fd);
  if (n < 0) {
    char dst[INET6_ADDRSTRLEN] = "";
    inet_ntop(v4 ? AF_INET : AF_INET6, ip + (v4 ? 16 : 24), dst, sizeof(dst));
    ThrowSys(err, "sendto", std::string("send a raw IP packet to ") + dst);
  }
}

// packetInject({netns?, ifname?, frame}) -> Promise<void>
Napi::Value PacketInject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "packetInject({netns?, ifname?, frame}): an options object is required");
  Napi::Object o = info[0].As<Napi::Object>();
  std::string netns = StringOpt(o, "netns");
  std::string ifname = StringOpt(o, "ifname");
  std::vector<uint8_t> frame = BufferArg(o.Get("frame"), "packetInject: frame");
  return RunAsync(env, "berth.packetInject",
      [netns, ifname, frame] {
        NetnsScope ns(netns);
        if (ifname.empty()) SendIp(frame);
        else SendFrame(ifname, frame);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

}  // namespace

void InitInject(Napi::Env env, Napi::Object exports) {
  exports.Set("packetInject", Napi::Function::New(env, PacketInject));
}

}  // namespace berth
