# Host build with the system GCC (Debian 12: GCC 12).
set(CMAKE_C_COMPILER gcc)
set(CMAKE_CXX_COMPILER g++)
