# SPDX-License-Identifier: MIT
# Writes OUT (a header defining CONTAINER_COMMIT) from the source tree's git commit, "+dirty" when the
# tree has changes, or "unknown" outside a git checkout (a source tarball). Run at every build by the
# `commit_header` target; the file is only rewritten when the text changes, so nothing rebuilds for it
# unless the commit did.
execute_process(COMMAND git -C "${SRC}" rev-parse --short=12 HEAD
  OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc ERROR_QUIET)
if(NOT rc EQUAL 0 OR commit STREQUAL "")
  set(commit "unknown")
else()
  execute_process(COMMAND git -C "${SRC}" diff --quiet HEAD -- RESULT_VARIABLE dirty ERROR_QUIET)
  if(NOT dirty EQUAL 0)
    set(commit "${commit}+dirty")
  endif()
endif()
set(text "#define CONTAINER_COMMIT \"${commit}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
