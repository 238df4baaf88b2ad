# Host build with the system Clang (Debian 12: clang 14), against libstdc++.
set(CMAKE_C_COMPILER clang)
set(CMAKE_CXX_COMPILER clang++)
