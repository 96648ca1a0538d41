# Writes bitnet.1 from the built binary's own help texts, so the man page says what --help says.
# -DBITNET=path of the built bitnet, -DOUT=the page to write, -DVERSION=the project's version.
function(help_of out_var)
  execute_process(COMMAND ${BITNET} ${ARGN} --help OUTPUT_VARIABLE text RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "man page: `bitnet ${ARGN} --help` exited ${rc}")
  endif()
  string(REPLACE "${BITNET}" "bitnet" text "${text}")
  # troff: a backslash is \e; a line starting with . or ' would be a request.
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

help_of(main)
string(REGEX MATCH "Subcommands:\n(.*)\n\n" subs "${main}")
string(REGEX MATCHALL "\n  [a-z][a-z-]+" names "\n${CMAKE_MATCH_1}")
set(page ".TH BITNET 1 \"\" \"bitnet ${VERSION}\" \"User Commands\"
.SH NAME
bitnet \\- run and check BitNet b1.58 (ternary) language models on the CPU
.SH SYNOPSIS
.B bitnet
[OPTIONS] COMMAND [ARGS]...
.SH DESCRIPTION
.nf
${main}.fi
.SH COMMANDS
")
foreach(n IN LISTS names)
  string(STRIP "${n}" n)
  if(n STREQUAL "help")
    continue()
  endif()
  help_of(text ${n})
  string(APPEND page ".SS ${n}\n.nf\n${text}.fi\n")
endforeach()
string(APPEND page ".SH SEE ALSO
The README and docs/ of the source tree.
")
file(WRITE "${OUT}.tmp" "${page}")
file(RENAME "${OUT}.tmp" "${OUT}")
