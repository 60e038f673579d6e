// rtnetlink without a library: a message builder, an attribute reader and a
// NETLINK_ROUTE socket that sends one request and waits for its ack, or reads
// a whole dump. Everything here runs on a worker thread and reports failures
// as SysError. A socket belongs to the network namespace the thread was in
// when it was opened, so open it after entering the namespace.
#pragma once
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <napi.h>
#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <string>
#include <vector>

namespace berth {

// One request message: a fixed family header followed by attributes.
class NlMsg {
 public:
  // @hdr (@hdr_len bytes) is the family header: ifinfomsg, ifaddrmsg, rtmsg...
  NlMsg(uint16_t type, uint16_t flags, const void* hdr, size_t hdr_len);

  void Put(uint16_t type, const void* data, size_t len);
  void PutU8(uint16_t type, uint8_t v) { Put(type, &v, 1); }
  void PutU16(uint16_t type, uint16_t v) { Put(type, &v, 2); }
  void PutU32(uint16_t type, uint32_t v) { Put(type, &v, 4); }
  void PutStr(uint16_t type, const std::string& s) { Put(type, s.c_str(), s.size() + 1); }
  // Appends bytes that are not an attribute (the ifinfomsg inside VETH_INFO_PEER).
  void PutRaw(const void* data, size_t len);
  // Opens a nested attribute; EndNest(offset) closes it. @flag: mark it
  // NLA_F_NESTED (not for VETH_INFO_PEER, which starts with an ifinfomsg).
  size_t BeginNest(uint16_t type, bool flag = true);
  void EndNest(size_t offset);

  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  uint16_t type() const { return reinterpret_cast<const nlmsghdr*>(buf_.data())->nlmsg_type; }

 private:
  void Grow(size_t len);
  std::vector<uint8_t> buf_;
};

// The attributes of one message or nest, indexed by type (nullptr: absent).
class NlAttrs {
 public:
  NlAttrs(const void* data, size_t len, uint16_t max);
  // The attributes following the family header of @h.
  static NlAttrs Of(const nlmsghdr* h, size_t hdr_len, uint16_t max);
  // The attributes nested inside @a (empty when @a is null).
  static NlAttrs Nested(const nlattr* a, uint16_t max);

  const nlattr* operator[](uint16_t type) const { return type < tb_.size() ? tb_[type] : nullptr; }
  bool Has(uint16_t type) const { return (*this)[type] != nullptr; }
  uint32_t U32(uint16_t type, uint32_t dflt = 0) const;
  uint8_t U8(uint16_t type, uint8_t dflt = 0) const;
  std::string Str(uint16_t type) const;
  // Payload bytes of @type (empty when absent).
  std::vector<uint8_t> Bytes(uint16_t type) const;

 private:
  std::vector<const nlattr*> tb_;
};

// A NETLINK_ROUTE socket in the calling thread's network namespace, with
// extended acks and strict dump checking on.
class RtnlSocket {
 public:
  RtnlSocket();
  ~RtnlSocket();
  RtnlSocket(const RtnlSocket&) = delete;
  RtnlSocket& operator=(const RtnlSocket&) = delete;

  // Sends @msg with NLM_F_ACK and waits for the kernel's answer. Returns 0,
  // or the errno when it is one of @tolerated; any other error throws
  // SysError("netlink", what + the kernel's extended ack message).
  int Request(NlMsg& msg, const std::string& what, std::initializer_list<int> tolerated = {});

  // Sends @msg as a dump request and calls @each for every reply message
  // until NLMSG_DONE, across as many reads as the kernel needs. A dump the
  // kernel marks inconsistent (NLM_F_DUMP_INTR) is read again from the start.
  void Dump(NlMsg& msg, const std::string& what, const std::function<void(const nlmsghdr*)>& each);

 private:
  void Send(NlMsg& msg, const std::string& what);
  // Reads one datagram into buf_; returns its length.
  size_t Recv(const std::string& what);
  // Turns an NLMSG_ERROR into 0 (ack) or a positive errno, and its
  // extended ack message (if any) into @ext.
  static int DecodeError(const nlmsghdr* h, std::string* ext);

  int fd_ = -1;
  uint32_t seq_ = 0;
  std::vector<uint8_t> buf_;
};

// Installs exports.netlink: namespaces, links, addresses, routes,
// neighbours and sysctls (native/rtnl_*.cc).
void InitNetlink(Napi::Env env, Napi::Object exports);

}  // namespace berth
