// Argument parsing for the netlink functions, on the JS thread: every bad
// value is a TypeError that quotes it, before any work is queued.
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>

#include "errors.h"
#include "rtnl.h"

namespace berth::rtnl {

Napi::Object OptionsArg(const Napi::CallbackInfo& info, const char* fn) {
  if (!info[0].IsObject()) ThrowType(info.Env(), std::string(fn) + "(options): options must be an object");
  return info[0].As<Napi::Object>();
}

bool Has(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return !v.IsUndefined();
}

std::string RequiredString(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) ThrowType(o.Env(), std::string("option '") + key + "' must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.empty() || s.find('\0') != std::string::npos)
    ThrowType(o.Env(), std::string("option '") + key + "' must be a non-empty string");
  return s;
}

std::string NetnsOpt(const Napi::Object& o, const char* key) {
  if (!Has(o, key)) return "";
  Napi::Value v = o.Get(key);
  if (!v.IsString()) ThrowType(o.Env(), std::string("option '") + key + "' must be the path of a netns file (a string)");
  std::string path = v.As<Napi::String>().Utf8Value();
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos)
    ThrowType(o.Env(), std::string("option '") + key + "' must be an absolute path such as /var/run/netns/NAME, not '" + path + "'");
  return path;
}

std::string IfnameOpt(const Napi::Object& o, const char* key, bool optional) {
  if (optional && !Has(o, key)) return "";
  Napi::Value v = o.Get(key);
  if (!v.IsString()) ThrowType(o.Env(), std::string("option '") + key + "' must be an interface name (a string)");
  std::string name = v.As<Napi::String>().Utf8Value();
  // The kernel's dev_valid_name(): 1-15 bytes, not "." or "..", no '/', ':' or space.
  bool ok = !name.empty() && name.size() <= 15 && name != "." && name != "..";
  for (char c : name)
    if (c == '/' || c == ':' || c == '\0' || isspace(static_cast<unsigned char>(c))) ok = false;
  if (!ok)
    ThrowType(o.Env(), std::string("option '") + key + "': '" + name +
                           "' is not a valid interface name (1-15 characters, no '/', ':' or whitespace)");
  return name;
}

bool BoolOpt(const Napi::Object& o, const char* key, bool dflt) {
  if (!Has(o, key)) return dflt;
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) ThrowType(o.Env(), std::string("option '") + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

int64_t RangeOpt(const Napi::Object& o, const char* key, int64_t dflt, int64_t min, int64_t max) {
  if (!Has(o, key)) return dflt;
  Napi::Value v = o.Get(key);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || d != floor(d)) {
    std::string got = v.IsNumber() ? v.ToString().Utf8Value() : "a " + std::string(v.IsString() ? "string" : "non-number");
    ThrowType(o.Env(), std::string("option '") + key + "' must be an integer from " + std::to_string(min) + " to " +
                           std::to_string(max) + ", not " + got);
  }
  return static_cast<int64_t>(d);
}

std::vector<uint8_t> MacOpt(const Napi::Object& o, const char* key) {
  if (!Has(o, key)) return {};
  Napi::Value v = o.Get(key);
  std::string text = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  std::vector<uint8_t> mac;
  bool ok = text.size() == 17;
  for (size_t i = 0; ok && i < 17; i += 3) {
    if (!isxdigit(static_cast<unsigned char>(text[i])) || !isxdigit(static_cast<unsigned char>(text[i + 1])) ||
        (i + 2 < 17 && text[i + 2] != ':')) {
      ok = false;
      break;
    }
    mac.push_back(static_cast<uint8_t>(std::stoul(text.substr(i, 2), nullptr, 16)));
  }
  if (!ok)
    ThrowType(o.Env(), std::string("option '") + key + "': '" + (v.IsString() ? text : v.ToString().Utf8Value()) +
                           "' is not a MAC address like 02:42:ac:11:00:02");
  return mac;
}

int FamilyOpt(const Napi::Object& o, const char* key) {
  if (!Has(o, key)) return 0;
  Napi::Value v = o.Get(key);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0;
  if (d != 4 && d != 6) ThrowType(o.Env(), std::string("option '") + key + "' must be 4 or 6, not " + v.ToString().Utf8Value());
  return static_cast<int>(d);
}

std::string ChoiceOpt(const Napi::Object& o, const char* key, const std::vector<std::string>& choices, const std::string& dflt) {
  if (!Has(o, key)) return dflt;
  Napi::Value v = o.Get(key);
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  std::string list;
  for (const auto& c : choices) {
    if (c == s && v.IsString()) return s;
    list += (list.empty() ? "" : ", ") + c;
  }
  ThrowType(o.Env(), std::string("option '") + key + "' must be one of " + list + ", not '" + v.ToString().Utf8Value() + "'");
}

IpAddr ParseIp(Napi::Env env, const std::string& text, const std::string& what) {
  IpAddr a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes) == 1) {
    a.family = AF_INET;
  } else if (inet_pton(AF_INET6, text.c_str(), a.bytes) == 1) {
    a.family = AF_INET6;
  } else {
    ThrowType(env, what + " '" + text + "' is not an IPv4 or IPv6 address");
  }
  return a;
}

Cidr ParseCidr(Napi::Env env, const std::string& text, const std::string& what, bool exact) {
  Cidr c;
  c.text = text;
  size_t slash = text.find('/');
  std::string bits = slash == std::string::npos ? "" : text.substr(slash + 1);
  bool ok = !bits.empty() && bits.size() <= 3;
  for (char ch : bits) ok = ok && isdigit(static_cast<unsigned char>(ch));
  std::string host = text.substr(0, slash);
  if (ok && inet_pton(AF_INET, host.c_str(), c.addr.bytes) == 1) {
    c.addr.family = AF_INET;
  } else if (ok && inet_pton(AF_INET6, host.c_str(), c.addr.bytes) == 1) {
    c.addr.family = AF_INET6;
  } else {
    ok = false;
  }
  if (ok) {
    c.prefix = std::stoi(bits);
    ok = c.prefix <= static_cast<int>(c.addr.len() * 8);
  }
  if (!ok) ThrowType(env, what + " '" + text + "' is not a CIDR like 10.0.0.1/24 or fd00::1/64");
  if (exact) {
    for (int bit = c.prefix; bit < static_cast<int>(c.addr.len() * 8); bit++) {
      if (c.addr.bytes[bit / 8] & (0x80 >> (bit % 8))) {
        IpAddr net = c.addr;
        for (int b = c.prefix; b < static_cast<int>(net.len() * 8); b++) net.bytes[b / 8] &= ~(0x80 >> (b % 8));
        ThrowType(env, what + " '" + text + "' has host bits set: did you mean " + FormatIp(net.family, net.bytes) + "/" +
                           std::to_string(c.prefix) + "?");
      }
    }
  }
  return c;
}

}  // namespace berth::rtnl
