# The yaml-cpp package for the arm64 cross-build (tests/arm64/toolchain.cmake points
# yaml-cpp_DIR here). Debian 12's libyaml-cpp-dev is not "Multi-Arch: same", so it cannot be
# installed for arm64 beside the native one. Its headers do not depend on the architecture,
# so they come from the native -dev package (in /usr/include, which the cross compiler
# searches), and the library from libyaml-cpp0.7:arm64.
set(_meridian_yaml_cpp /usr/lib/aarch64-linux-gnu/libyaml-cpp.so.0.7)
if(NOT EXISTS ${_meridian_yaml_cpp} OR NOT EXISTS /usr/include/yaml-cpp/yaml.h)
  set(yaml-cpp_FOUND FALSE)
  return()
endif()
if(NOT TARGET yaml-cpp)
  add_library(yaml-cpp SHARED IMPORTED)
  set_target_properties(yaml-cpp PROPERTIES IMPORTED_LOCATION ${_meridian_yaml_cpp})
endif()
set(yaml-cpp_FOUND TRUE)
