// Shared by the rtnl_*.cc operation files: argument parsing on the JS thread
// (TypeErrors naming the bad value), entering a namespace for one call with
// the operation named in the error, and the names kernels give to numbers.
#pragma once
#include <napi.h>
#include <stdint.h>
#include <sys/socket.h>

#include <map>
#include <string>
#include <vector>

#include "async.h"
#include "netlink.h"
#include "netns.h"

namespace berth::rtnl {

// --- arguments (JS thread; rtnl_args.cc) -----------------------------------------

struct IpAddr {
  int family = 0;  // AF_INET | AF_INET6
  uint8_t bytes[16] = {};
  size_t len() const { return family == AF_INET ? 4 : 16; }
  int version() const { return family == AF_INET ? 4 : 6; }
};

struct Cidr {
  IpAddr addr;
  int prefix = 0;
  std::string text;  // as the caller wrote it, for messages
};

// info[0] as the options object of @fn, or a TypeError.
Napi::Object OptionsArg(const Napi::CallbackInfo& info, const char* fn);
// An absolute path of a netns file, or "" when @key is absent.
std::string NetnsOpt(const Napi::Object& o, const char* key);
// A valid interface name (the kernel's rules); required unless @optional.
std::string IfnameOpt(const Napi::Object& o, const char* key, bool optional = false);
bool BoolOpt(const Napi::Object& o, const char* key, bool dflt);
bool Has(const Napi::Object& o, const char* key);
// An integer in [min, max]; @dflt when absent.
int64_t RangeOpt(const Napi::Object& o, const char* key, int64_t dflt, int64_t min, int64_t max);
// "aa:bb:cc:dd:ee:ff" as 6 bytes; empty when absent.
std::vector<uint8_t> MacOpt(const Napi::Object& o, const char* key);
// 4 or 6 (an IP version); 0 when absent.
int FamilyOpt(const Napi::Object& o, const char* key);
// One of @choices; @dflt when absent.
std::string ChoiceOpt(const Napi::Object& o, const char* key, const std::vector<std::string>& choices, const std::string& dflt);

IpAddr ParseIp(Napi::Env env, const std::string& text, const std::string& what);
// "10.0.0.1/24", "fd00::1/64". @exact: refuse host bits past the prefix.
Cidr ParseCidr(Napi::Env env, const std::string& text, const std::string& what, bool exact);
std::string RequiredString(const Napi::Object& o, const char* key);

// --- worker side (rtnl_context.cc) ------------------------------------------------

// " in netns 'PATH'" (or "" for the caller's namespace), for messages.
std::string InNs(const std::string& netns);

// NetnsScope whose errors say which operation needed the namespace.
class EnterNetns {
 public:
  EnterNetns(const std::string& path, const std::string& what);

 private:
  NetnsScope scope_;
};

// An O_RDONLY descriptor of a netns file, for IFLA_NET_NS_FD.
class NetnsFd {
 public:
  NetnsFd(const std::string& path, const std::string& what);
  ~NetnsFd();
  NetnsFd(const NetnsFd&) = delete;
  NetnsFd& operator=(const NetnsFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// The index of @name in the current namespace; ENODEV names @name in @what.
unsigned Ifindex(const std::string& name, const std::string& what);
// ifindex -> name for every link in the socket's namespace.
std::map<unsigned, std::string> LinkNames(RtnlSocket& sk, const std::string& what);

// --- worker-side pieces the combined calls share -----------------------------------

// RTM_NEWADDR / RTM_DELADDR for @cidr on @ifindex (IPv4 with its broadcast; rtnl_addr.cc).
NlMsg AddrMessage(uint16_t type, uint16_t flags, const Cidr& cidr, bool nodad, unsigned ifindex);
// A valid net.* sysctl key, or a TypeError naming it (JS thread; rtnl_sysctl.cc).
std::string CheckSysctlKey(Napi::Env env, const std::string& key, const char* fn);
// Writes net.* sysctl @key in the thread's namespace; ENOENT returned (not thrown) when @enoent_ok.
int WriteSysctlHere(const std::string& key, const std::string& value, const std::string& what, bool enoent_ok);

// --- kernel values as text (rtnl_format.cc) ----------------------------------------

std::string FormatIp(int family, const void* bytes);
std::string FormatMac(const std::vector<uint8_t>& bytes);
// iproute2's names: "global", "link", "host"...; numbers otherwise.
std::string ScopeName(uint8_t scope);
std::string ProtocolName(uint8_t proto);
std::string RouteTypeName(uint8_t type);

inline Napi::Value Undefined(Napi::Env env) { return env.Undefined(); }

// --- the operations, one file each ---------------------------------------------

void InitNetns(Napi::Env env, Napi::Object nl);   // rtnl_netns.cc
void InitLinks(Napi::Env env, Napi::Object nl);   // rtnl_link.cc
void InitAddrs(Napi::Env env, Napi::Object nl);   // rtnl_addr.cc
void InitRoutes(Napi::Env env, Napi::Object nl);  // rtnl_route.cc
void InitNeigh(Napi::Env env, Napi::Object nl);   // rtnl_neigh.cc
void InitSysctl(Napi::Env env, Napi::Object nl);  // rtnl_sysctl.cc
void InitSandboxSide(Napi::Env env, Napi::Object nl);  // rtnl_sandbox.cc

}  // namespace berth::rtnl
