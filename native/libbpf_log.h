// libbpf's log, captured per operation so it can be returned to JavaScript
// (and routed to the application's logger) instead of going to stderr.
#pragma once
#include <string>
#include <vector>

namespace berth {

struct LogLine {
  int level;  // 0 warn, 1 info, 2 debug (libbpf_print_level)
  std::string text;
};

// While alive on a thread, libbpf messages printed on that thread land here.
class LibbpfLogCapture {
 public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;

  std::vector<LogLine> lines;
  std::string Joined() const;

 private:
  LibbpfLogCapture* prev_;
};

// Installs the print callback; called once when the addon loads.
void InstallLibbpfLogger();

// The verifier's log of the last failed program load in @joined, trimmed to
// its last @max_lines lines (where the reason is); empty when there is none.
std::string ExtractVerifierLog(const std::string& joined, size_t max_lines = 40);

// The verifier's own words for why it refused: the lines after the last
// instruction it printed, without the closing statistics line.
std::string VerifierReason(const std::string& log);

}  // namespace berth
