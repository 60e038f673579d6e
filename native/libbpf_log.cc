#include "libbpf_log.h"

#include <bpf/libbpf.h>
#include <stdarg.h>
#include <ctype.h>
#include <stdio.h>

#include <sstream>

namespace berth {
namespace {

thread_local LibbpfLogCapture* t_capture = nullptr;

int Print(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (!t_capture) return 0;  // outside an operation: nobody to tell
  char buf[4096];
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(buf, sizeof(buf), fmt, copy);
  va_end(copy);
  std::string text;
  if (n >= static_cast<int>(sizeof(buf))) {
    text.resize(n + 1);
    vsnprintf(text.data(), n + 1, fmt, ap);
    text.resize(n);
  } else if (n > 0) {
    text.assign(buf, n);
  }
  t_capture->lines.push_back({static_cast<int>(level), std::move(text)});
  return n;
}

}  // namespace

LibbpfLogCapture::LibbpfLogCapture() : prev_(t_capture) { t_capture = this; }
LibbpfLogCapture::~LibbpfLogCapture() {
  t_capture = prev_;
  // A nested capture keeps its own copy and passes the lines outwards too.
  if (prev_) prev_->lines.insert(prev_->lines.end(), lines.begin(), lines.end());
}

std::string LibbpfLogCapture::Joined() const {
  std::string out;
  for (const auto& l : lines) out += l.text;
  return out;
}

void InstallLibbpfLogger() { libbpf_set_print(Print); }

std::string ExtractVerifierLog(const std::string& joined, size_t max_lines) {
  static const std::string kBegin = "-- BEGIN PROG LOAD LOG --\n";
  static const std::string kEnd = "-- END PROG LOAD LOG --";
  size_t b = joined.rfind(kBegin);
  if (b == std::string::npos) return "";
  b += kBegin.size();
  size_t e = joined.find(kEnd, b);
  std::string log = joined.substr(b, e == std::string::npos ? std::string::npos : e - b);
  std::vector<std::string> all;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) all.push_back(line);
  size_t from = all.size() > max_lines ? all.size() - max_lines : 0;
  std::string out;
  for (size_t i = from; i < all.size(); i++) out += all[i] + "\n";
  return out;
}

std::string VerifierReason(const std::string& log) {
  std::vector<std::string> all;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) all.push_back(line);
  auto is_insn = [](const std::string& l) {
    size_t i = 0;
    while (i < l.size() && isdigit(static_cast<unsigned char>(l[i]))) i++;
    return i > 0 && l.compare(i, 3, ": (") == 0;
  };
  size_t start = 0;
  for (size_t i = 0; i < all.size(); i++)
    if (is_insn(all[i])) start = i + 1;
  std::string out;
  for (size_t i = start; i < all.size(); i++) {
    if (all[i].rfind("processed ", 0) == 0 || all[i].empty()) continue;
    out += (out.empty() ? "" : " / ") + all[i];
  }
  return out.empty() && !all.empty() ? all.back() : out;
}

}  // namespace berth
