#include "netlink.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"
#include "rtnl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace berth {
namespace {

// A dump datagram is at most 32 KiB (the kernel caps its dump skbs there);
// twice that leaves room and MSG_TRUNC still catches anything larger.
constexpr size_t kRecvBuf = 64 * 1024;
constexpr int kDumpAttempts = 5;

}  // namespace

// --- NlMsg ----------------------------------------------------------------------

NlMsg::NlMsg(uint16_t type, uint16_t flags, const void* hdr, size_t hdr_len) {
  buf_.resize(NLMSG_SPACE(hdr_len));
  auto* h = this->hdr();
  h->nlmsg_len = NLMSG_LENGTH(hdr_len);
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST | flags;
  if (hdr_len) memcpy(NLMSG_DATA(h), hdr, hdr_len);
  buf_.resize(NLMSG_ALIGN(h->nlmsg_len));
}

void NlMsg::Grow(size_t len) {
  size_t at = NLMSG_ALIGN(hdr()->nlmsg_len);
  buf_.resize(at + NLA_ALIGN(len), 0);
  hdr()->nlmsg_len = at + NLA_ALIGN(len);
}

void NlMsg::Put(uint16_t type, const void* data, size_t len) {
  size_t at = NLMSG_ALIGN(hdr()->nlmsg_len);
  Grow(NLA_HDRLEN + len);
  auto* a = reinterpret_cast<nlattr*>(buf_.data() + at);
  a->nla_type = type;
  a->nla_len = NLA_HDRLEN + len;
  if (len) memcpy(buf_.data() + at + NLA_HDRLEN, data, len);
}

void NlMsg::PutRaw(const void* data, size_t len) {
  size_t at = NLMSG_ALIGN(hdr()->nlmsg_len);
  Grow(len);
  memcpy(buf_.data() + at, data, len);
}

size_t NlMsg::BeginNest(uint16_t type, bool flag) {
  size_t at = NLMSG_ALIGN(hdr()->nlmsg_len);
  Put(flag ? type | NLA_F_NESTED : type, nullptr, 0);
  return at;
}

void NlMsg::EndNest(size_t offset) {
  auto* a = reinterpret_cast<nlattr*>(buf_.data() + offset);
  a->nla_len = hdr()->nlmsg_len - offset;
}

// --- NlAttrs --------------------------------------------------------------------

NlAttrs::NlAttrs(const void* data, size_t len, uint16_t max) : tb_(max + 1, nullptr) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (len >= NLA_HDRLEN) {
    const auto* a = reinterpret_cast<const nlattr*>(p);
    if (a->nla_len < NLA_HDRLEN || a->nla_len > len) break;
    uint16_t type = a->nla_type & NLA_TYPE_MASK;
    if (type <= max) tb_[type] = a;
    size_t step = NLA_ALIGN(a->nla_len);
    if (step >= len) break;
    p += step;
    len -= step;
  }
}

NlAttrs NlAttrs::Of(const nlmsghdr* h, size_t hdr_len, uint16_t max) {
  size_t off = NLMSG_ALIGN(hdr_len);
  if (h->nlmsg_len < NLMSG_LENGTH(off)) return NlAttrs(nullptr, 0, max);
  return NlAttrs(static_cast<const uint8_t*>(NLMSG_DATA(h)) + off, h->nlmsg_len - NLMSG_LENGTH(off), max);
}

NlAttrs NlAttrs::Nested(const nlattr* a, uint16_t max) {
  if (!a) return NlAttrs(nullptr, 0, max);
  return NlAttrs(reinterpret_cast<const uint8_t*>(a) + NLA_HDRLEN, a->nla_len - NLA_HDRLEN, max);
}

static size_t PayloadLen(const nlattr* a) { return a->nla_len - NLA_HDRLEN; }
static const uint8_t* Payload(const nlattr* a) { return reinterpret_cast<const uint8_t*>(a) + NLA_HDRLEN; }

uint32_t NlAttrs::U32(uint16_t type, uint32_t dflt) const {
  const nlattr* a = (*this)[type];
  if (!a || PayloadLen(a) < 4) return dflt;
  uint32_t v;
  memcpy(&v, Payload(a), 4);
  return v;
}

uint8_t NlAttrs::U8(uint16_t type, uint8_t dflt) const {
  const nlattr* a = (*this)[type];
  return a && PayloadLen(a) >= 1 ? Payload(a)[0] : dflt;
}

std::string NlAttrs::Str(uint16_t type) const {
  const nlattr* a = (*this)[type];
  if (!a) return "";
  const char* s = reinterpret_cast<const char*>(Payload(a));
  return std::string(s, strnlen(s, PayloadLen(a)));
}

std::vector<uint8_t> NlAttrs::Bytes(uint16_t type) const {
  const nlattr* a = (*this)[type];
  if (!a) return {};
  return std::vector<uint8_t>(Payload(a), Payload(a) + PayloadLen(a));
}

// --- RtnlSocket -----------------------------------------------------------------

RtnlSocket::RtnlSocket() : buf_(kRecvBuf) {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd_ < 0) ThrowSys(errno, "socket", "open a NETLINK_ROUTE socket");
  int one = 1;
  // Extended acks carry the kernel's reason ("mtu greater than device
  // maximum"); capped acks leave our request out of them; strict checking
  // makes the kernel refuse malformed dump requests instead of guessing.
  setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  setsockopt(fd_, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
}

RtnlSocket::~RtnlSocket() {
  if (fd_ >= 0) close(fd_);
}

void RtnlSocket::Send(NlMsg& msg, const std::string& what) {
  nlmsghdr* h = msg.hdr();
  h->nlmsg_seq = ++seq_;
  sockaddr_nl kernel = {};
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(fd_, h, h->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
  } while (n < 0 && errno == EINTR);
  if (n < 0) ThrowSys(errno, "sendto", what);
}

size_t RtnlSocket::Recv(const std::string& what) {
  for (;;) {
    sockaddr_nl from = {};
    iovec iov = {buf_.data(), buf_.size()};
    msghdr m = {};
    m.msg_name = &from;
    m.msg_namelen = sizeof(from);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    ssize_t n = recvmsg(fd_, &m, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ThrowSys(errno, "recvmsg", what);
    if (m.msg_flags & MSG_TRUNC) ThrowSys(EMSGSIZE, "recvmsg", what + " (netlink reply larger than " + std::to_string(buf_.size()) + " bytes)");
    if (from.nl_pid != 0) continue;  // only the kernel talks to us
    return n;
  }
}

int RtnlSocket::DecodeError(const nlmsghdr* h, std::string* ext) {
  if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return EBADMSG;
  const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
  if (ext && (h->nlmsg_flags & NLM_F_ACK_TLVS)) {
    size_t off = sizeof(nlmsgerr);
    if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
    size_t total = h->nlmsg_len - NLMSG_HDRLEN;
    if (off < total) {
      NlAttrs tlv(static_cast<const uint8_t*>(NLMSG_DATA(h)) + off, total - off, NLMSGERR_ATTR_MSG);
      *ext = tlv.Str(NLMSGERR_ATTR_MSG);
    }
  }
  return -e->error;
}

static std::string WithKernelReason(const std::string& what, const std::string& ext) {
  return ext.empty() ? what : what + " [kernel: " + ext + "]";
}

int RtnlSocket::Request(NlMsg& msg, const std::string& what, std::initializer_list<int> tolerated) {
  msg.hdr()->nlmsg_flags |= NLM_F_ACK;
  Send(msg, what);
  uint32_t seq = seq_;
  for (;;) {
    size_t len = Recv(what);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf_.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq || h->nlmsg_type != NLMSG_ERROR) continue;
      std::string ext;
      int err = DecodeError(h, &ext);
      if (err == 0) return 0;
      for (int t : tolerated)
        if (err == t) return err;
      ThrowSys(err, "netlink", WithKernelReason(what, ext));
    }
  }
}

void RtnlSocket::Dump(NlMsg& msg, const std::string& what, const std::function<void(const nlmsghdr*)>& each) {
  msg.hdr()->nlmsg_flags |= NLM_F_DUMP;
  for (int attempt = 1;; attempt++) {
    Send(msg, what);
    uint32_t seq = seq_;
    std::vector<std::vector<uint8_t>> parts;
    bool interrupted = false, done = false;
    while (!done) {
      size_t len = Recv(what);
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf_.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_seq != seq) continue;
        if (h->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
        if (h->nlmsg_type == NLMSG_ERROR) {
          std::string ext;
          int err = DecodeError(h, &ext);
          if (err) ThrowSys(err, "netlink", WithKernelReason(what, ext));
          continue;
        }
        if (h->nlmsg_type == NLMSG_DONE) {
          // DONE carries the dump's own status (an int, then extack TLVs).
          if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
            int status;
            memcpy(&status, NLMSG_DATA(h), sizeof(status));
            if (status < 0) ThrowSys(-status, "netlink", what);
          }
          done = true;
          break;
        }
        const auto* p = reinterpret_cast<const uint8_t*>(h);
        parts.emplace_back(p, p + h->nlmsg_len);
      }
    }
    if (interrupted && attempt < kDumpAttempts) continue;
    if (interrupted) ThrowSys(EAGAIN, "netlink", what + " (the kernel's dump kept changing underneath; tried " + std::to_string(kDumpAttempts) + " times)");
    for (const auto& p : parts) each(reinterpret_cast<const nlmsghdr*>(p.data()));
    return;
  }
}

// --- exports.netlink ------------------------------------------------------------

void InitNetlink(Napi::Env env, Napi::Object exports) {
  Napi::Object nl = Napi::Object::New(env);
  rtnl::InitNetns(env, nl);
  rtnl::InitLinks(env, nl);
  rtnl::InitAddrs(env, nl);
  rtnl::InitRoutes(env, nl);
  rtnl::InitNeigh(env, nl);
  rtnl::InitSysctl(env, nl);
  rtnl::InitSandboxSide(env, nl);
  exports.Set("netlink", nl);
}

}  // namespace berth
