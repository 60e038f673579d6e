// Kernel values as the text iproute2 shows for them, so what berth reports
// reads the same as `ip -j` does.
#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <stdio.h>

#include "rtnl.h"

namespace berth::rtnl {

std::string FormatIp(int family, const void* bytes) {
  char text[INET6_ADDRSTRLEN] = "";
  inet_ntop(family, bytes, text, sizeof(text));
  return text;
}

std::string FormatMac(const std::vector<uint8_t>& bytes) {
  std::string out;
  char hex[4];
  for (size_t i = 0; i < bytes.size(); i++) {
    snprintf(hex, sizeof(hex), i ? ":%02x" : "%02x", bytes[i]);
    out += hex;
  }
  return out;
}

std::string ScopeName(uint8_t scope) {
  switch (scope) {
    case RT_SCOPE_UNIVERSE: return "global";
    case RT_SCOPE_SITE: return "site";
    case RT_SCOPE_LINK: return "link";
    case RT_SCOPE_HOST: return "host";
    case RT_SCOPE_NOWHERE: return "nowhere";
    default: return std::to_string(scope);
  }
}

std::string ProtocolName(uint8_t proto) {
  switch (proto) {
    case RTPROT_UNSPEC: return "unspec";
    case RTPROT_REDIRECT: return "redirect";
    case RTPROT_KERNEL: return "kernel";
    case RTPROT_BOOT: return "boot";
    case RTPROT_STATIC: return "static";
    case RTPROT_RA: return "ra";
    case RTPROT_DHCP: return "dhcp";
    default: return std::to_string(proto);
  }
}

std::string RouteTypeName(uint8_t type) {
  switch (type) {
    case RTN_UNICAST: return "unicast";
    case RTN_LOCAL: return "local";
    case RTN_BROADCAST: return "broadcast";
    case RTN_ANYCAST: return "anycast";
    case RTN_MULTICAST: return "multicast";
    case RTN_BLACKHOLE: return "blackhole";
    case RTN_UNREACHABLE: return "unreachable";
    case RTN_PROHIBIT: return "prohibit";
    case RTN_THROW: return "throw";
    default: return std::to_string(type);
  }
}

}  // namespace berth::rtnl
