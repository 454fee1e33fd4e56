# The prometheus-cpp package for the arm64 cross-build (tests/arm64/toolchain.cmake points
# prometheus-cpp_DIR here). Debian 12's prometheus-cpp-dev depends on the civetweb program,
# which is not "Multi-Arch: same": installing the arm64 -dev package would remove the native
# one. meridian links only the core library; its headers do not depend on the architecture,
# so they come from the native -dev package (in /usr/include, which the cross compiler
# searches), and the library from libprometheus-cpp-core1.0:arm64.
set(_meridian_prometheus_core /usr/lib/aarch64-linux-gnu/libprometheus-cpp-core.so.1.0)
if(NOT EXISTS ${_meridian_prometheus_core} OR NOT EXISTS /usr/include/prometheus/registry.h)
  set(prometheus-cpp_FOUND FALSE)
  return()
endif()
if(NOT TARGET prometheus-cpp::core)
  add_library(prometheus-cpp::core SHARED IMPORTED)
  set_target_properties(prometheus-cpp::core PROPERTIES
                        IMPORTED_LOCATION ${_meridian_prometheus_core})
endif()
set(prometheus-cpp_FOUND TRUE)
