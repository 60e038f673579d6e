// Runs the current (worker) thread inside another network namespace for the
// lifetime of the scope. setns(CLONE_NEWNET) affects only the calling thread,
// so the rest of the process stays where it is.
#pragma once
#include <string>

namespace berth {

class NetnsScope {
 public:
  // @path: a netns file such as /var/run/netns/NAME; empty for "stay here".
  explicit NetnsScope(const std::string& path);
  ~NetnsScope();
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;

 private:
  int orig_ = -1;
};

// Resolves an interface name to its index in the current thread's namespace.
unsigned ResolveIfindex(const std::string& ifname, unsigned ifindex);

}  // namespace berth
