#include "config_test_support.hpp"

#include <unistd.h>

#include <atomic>
#include <fstream>

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
  std::string pattern = "{" + std::string(name) + "}";
  for (auto pos = text.find(pattern); pos != std::string::npos;
       pos = text.find(pattern, pos + value.size())) {
    text.replace(pos, pattern.size(), value);
  }
  return text;
}

}  // namespace meridian::config::test
