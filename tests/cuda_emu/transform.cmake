# Writes OUT, the emulator's C++ of the CUDA source IN (cmake -DIN=... -DOUT=... -P): each launch
# `kernel<<<grid, block[, smem]>>>(args)` becomes `emu_launch(emu_config(grid, block[, smem]),
# kernel, args)` and each `extern __shared__ float name[];` a pointer to the block's dynamic shared
# memory; the rest compiles as C++ against cuda_runtime.h of this folder. A launch it cannot
# rewrite is an error, never a silently untested kernel.
file(READ "${IN}" src)
string(REGEX REPLACE "([A-Za-z_][A-Za-z_0-9]*)<<<([^>]*)>>>\\(" "emu_launch(emu_config(\\2), \\1, "
                     src "${src}")
string(REGEX REPLACE "extern __shared__ float ([A-Za-z_][A-Za-z_0-9]*)\\[\\];"
                     "float *\\1 = emu_dynamic_smem;" src "${src}")
string(FIND "${src}" "<<<" left)
if(NOT left EQUAL -1)
  message(FATAL_ERROR "${IN}: a kernel launch the emulator's transform does not rewrite")
endif()
string(REGEX MATCH "extern __shared__" extern_left "${src}")
if(extern_left)
  message(FATAL_ERROR "${IN}: an extern __shared__ array that is not float (transform.cmake)")
endif()
file(WRITE "${OUT}.tmp" "// generated from ${IN} by tests/cuda_emu/transform.cmake\n#line 1 \"${IN}\"\n${src}")
file(RENAME "${OUT}.tmp" "${OUT}")
