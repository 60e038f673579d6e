#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "errors.h"

namespace berth {

NetnsScope::NetnsScope(const std::string& path) {
  if (path.empty()) return;
  orig_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig_ < 0) ThrowSys(errno, "open", "open /proc/thread-self/ns/net");
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int err = errno;
    close(orig_);
    orig_ = -1;
    ThrowSys(err, "open", "open network namespace '" + path + "'");
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    int err = errno;
    close(target);
    close(orig_);
    orig_ = -1;
    ThrowSys(err, "setns", "enter network namespace '" + path + "'");
  }
  close(target);
}

NetnsScope::~NetnsScope() {
  if (orig_ < 0) return;
  if (setns(orig_, CLONE_NEWNET) < 0) {
    // A pool thread left in a foreign namespace would silently misdirect every
    // later operation run on it; stopping is the only safe answer.
    perror("berth: cannot return worker thread to its network namespace");
    abort();
  }
  close(orig_);
}

unsigned ResolveIfindex(const std::string& ifname, unsigned ifindex) {
  if (ifname.empty()) return ifindex;
  unsigned idx = if_nametoindex(ifname.c_str());
  if (!idx) ThrowSys(errno, "if_nametoindex", "find interface '" + ifname + "'");
  return idx;
}

}  // namespace berth
