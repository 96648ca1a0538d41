// The one token id type: the tokenizer makes them; the session, sampler, generate loop, crossval
// and the golden files take them. Signed 32-bit like llama.cpp's llama_token, so ids cross into
// the reference engines unchanged; vocabularies stay far below 2^31 tokens.
#pragma once

#include <cstdint>

namespace bitnet {

using TokenId = int32_t;

}  // namespace bitnet
