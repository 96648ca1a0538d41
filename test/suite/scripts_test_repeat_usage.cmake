# Issue #25, point 8: scripts/test documents --repeat and JUnit in --help, and refuses a bad
# --repeat before it installs or builds anything. Usage: cmake -DSCRIPT=.../scripts/test -P
# The timeout only guards against a script that would start building instead of answering.
execute_process(COMMAND bash ${SCRIPT} --help OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 60)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "scripts/test --help: exit ${rc}: ${err}")
endif()
foreach(want "--repeat N" "junit.xml" "junit-run-K.xml" "TIMEOUT")
  string(FIND "${out}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "scripts/test --help does not mention '${want}':\n${out}")
  endif()
endforeach()

foreach(args "--repeat;0" "--repeat;abc" "--repeat=-3" "--repeat")
  execute_process(COMMAND bash ${SCRIPT} ${args} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 60)
  if(NOT rc EQUAL 2 OR NOT err MATCHES "^scripts/test: --repeat")
    message(FATAL_ERROR "scripts/test ${args}: expected exit 2 and a --repeat error, got exit ${rc}:\n${err}${out}")
  endif()
endforeach()
message(STATUS "scripts/test --help documents --repeat; bad counts are refused")
