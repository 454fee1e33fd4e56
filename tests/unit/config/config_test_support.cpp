#include "config_test_support.hpp"

#include <atomic>
#include <fstream>
#include <unistd.h>

namespace meridian::config::test {

TempFile::TempFile(std::string_view contents, std::string_view suffix) {
  static std::atomic<int> counter{0};
  auto dir = std::filesystem::temp_directory_path();
  path_ = (dir / ("meridian-config-test-" + std::to_string(::getpid()) + "-" +
                  std::to_string(counter++) + std::string(suffix)))
              .string();
  std::ofstream out(path_, std::ios::binary);
  out << contents;
}

TempFile::~TempFile() {
  std::error_code ignored;
  std::filesystem::remove(path_, ignored);
}

std::string substitute(std::string text, std::string_view name, std::string_view value) {
  // Appends piecewise: `"{" + std::string(...)` and replace() trip GCC 12's -Wrestrict
  // false positive (PR 105651) at -O2.
  std::string pattern;
  pattern += '{';
  pattern += name;
  pattern += '}';
  std::string out;
  std::size_t from = 0;
  for (auto pos = text.find(pattern); pos != std::string::npos; pos = text.find(pattern, from)) {
    out.append(text, from, pos - from);
    out.append(value);
    from = pos + pattern.size();
  }
  out.append(text, from, std::string::npos);
  return out;
}

}  // namespace meridian::config::test
