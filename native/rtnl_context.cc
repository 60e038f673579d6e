// Worker-side context for a netlink call: the namespace it runs in, netns
// descriptors handed to the kernel, and interface names resolved there.
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include "errors.h"
#include "rtnl.h"

namespace berth::rtnl {

std::string InNs(const std::string& netns) {
  return netns.empty() ? "" : " in netns '" + netns + "'";
}

EnterNetns::EnterNetns(const std::string& path, const std::string& what) try : scope_(path) {
} catch (SysError& e) {
  e.what = what + ": cannot " + e.what;
}

NetnsFd::NetnsFd(const std::string& path, const std::string& what) {
  fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) ThrowSys(errno, "open", what + ": cannot open network namespace '" + path + "'");
}

NetnsFd::~NetnsFd() {
  if (fd_ >= 0) close(fd_);
}

unsigned Ifindex(const std::string& name, const std::string& what) {
  unsigned idx = if_nametoindex(name.c_str());
  if (!idx) ThrowSys(errno, "if_nametoindex", what + ": no interface '" + name + "'");
  return idx;
}

std::map<unsigned, std::string> LinkNames(RtnlSocket& sk, const std::string& what) {
  ifinfomsg ifi = {};
  NlMsg req(RTM_GETLINK, 0, &ifi, sizeof(ifi));
  req.PutU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::map<unsigned, std::string> names;
  sk.Dump(req, what, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK) return;
    const auto* m = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
    names[m->ifi_index] = NlAttrs::Of(h, sizeof(ifinfomsg), IFLA_IFNAME).Str(IFLA_IFNAME);
  });
  return names;
}

}  // namespace berth::rtnl
