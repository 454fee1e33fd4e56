# CMake toolchain file for cross-building meridian for 64-bit ARM Linux on a Debian 12 machine
# of another architecture, with Debian's cross compiler and the arm64 builds of the -dev
# packages installed beside the native ones (multiarch; tests/arm64/install-deps.sh).
#
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=tests/arm64/toolchain.cmake
#
# Programs built for the target (the unit tests when ctest lists or runs them) run under
# qemu's user-mode emulator, so no binfmt_misc registration is needed.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Libraries and CMake package files from /usr/lib/aarch64-linux-gnu, not the native ones.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

find_program(MERIDIAN_QEMU_AARCH64 qemu-aarch64-static REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${MERIDIAN_QEMU_AARCH64})

# pkg-config (libmaxminddb, libnghttp2, hiredis) reads the arm64 .pc files only.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)

# The -dev packages of yaml-cpp and prometheus-cpp cannot be installed for arm64 beside the
# native ones: native headers, arm64 libraries (see the files).
set(yaml-cpp_DIR ${CMAKE_CURRENT_LIST_DIR}/cmake/yaml-cpp)
set(prometheus-cpp_DIR ${CMAKE_CURRENT_LIST_DIR}/cmake/prometheus-cpp)
