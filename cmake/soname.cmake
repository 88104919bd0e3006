# lode_soname(VAR NAME HINTS...): the soname of library NAME (e.g. curl ->
# libcurl.so.4), for a library lode opens with dlopen at first use instead of
# linking it (docs/architecture.md#start-up). Fails the configure step when
# the library or its soname cannot be found.
function(lode_soname var name)
  find_library(_lode_lib_${name} NAMES ${name} HINTS ${ARGN} REQUIRED)
  find_program(LODE_OBJDUMP objdump REQUIRED)
  execute_process(COMMAND ${LODE_OBJDUMP} -p ${_lode_lib_${name}} OUTPUT_VARIABLE _dump
    RESULT_VARIABLE _rc)
  string(REGEX MATCH "SONAME +([^ \n]+)" _m "${_dump}")
  if(NOT _rc EQUAL 0 OR NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "cannot read the soname of ${_lode_lib_${name}} (objdump -p)")
  endif()
  set(${var} "${CMAKE_MATCH_1}" PARENT_SCOPE)
endfunction()
