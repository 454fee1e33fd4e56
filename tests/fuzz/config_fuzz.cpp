// libFuzzer target: the configuration loader (YAML -> validated Config). Any text either loads
// or yields errors that each name the file; nothing throws or crashes.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "meridian/config/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const auto result = meridian::config::load_config_string(yaml, "fuzz.yaml");
  if (result.ok() != (result.config != nullptr)) std::abort();
  for (const auto& e : result.errors) {
    if (e.file != "fuzz.yaml" || e.message.empty()) std::abort();
    (void)e.to_string();
  }
  return 0;
}
