# Shared compile settings and the include-root trick that enforces the layering.

add_library(bitnet_flags INTERFACE)
target_compile_options(bitnet_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
  $<$<BOOL:${BITNET_WERROR}>:-Werror>
  # No silent a*b+c -> fma contraction: backends compiled with -mfma must round exactly like the
  # reference, so the same expression gives the same float everywhere.
  -ffp-contract=off)
if(BITNET_SANITIZE)
  target_compile_options(bitnet_flags INTERFACE -fsanitize=${BITNET_SANITIZE}
    -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(bitnet_flags INTERFACE -fsanitize=${BITNET_SANITIZE})
endif()

# Every layer folder X is reachable only as "X/..." through a private include root
# build/layers/X that holds a single symlink X -> source/X. A target gets that root only
# by linking the layer's library, so core cannot name diag/ or app/ headers.
function(bitnet_layer_root target layer)
  set(root ${CMAKE_BINARY_DIR}/layers/${layer})
  file(MAKE_DIRECTORY ${root})
  if(NOT EXISTS ${root}/${layer})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/${layer} ${root}/${layer} SYMBOLIC)
  endif()
  get_target_property(kind ${target} TYPE)
  if(kind STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE ${root})
  else()
    target_include_directories(${target} PUBLIC ${root})
  endif()
endfunction()
