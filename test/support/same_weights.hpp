// Test helper: two GGUF files hold byte-identical ternary weight tensors (all 28 of a tiny model).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "core/gguf/reader.hpp"
#include "core/model/convert.hpp"

namespace bitnet::test {

inline void expect_same_weights(const std::filesystem::path& a, const std::filesystem::path& b) {
  auto fa = gguf::GgufFile::open(a), fb = gguf::GgufFile::open(b);
  int n = 0;
  for (const auto& t : fa.tensors()) {
    if (!model::is_ternary_weight_name(t.name)) continue;
    const auto* u = fb.find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    ASSERT_EQ(t.type, u->type) << t.name;
    auto da = fa.tensor_data(t), db = fb.tensor_data(*u);
    EXPECT_TRUE(std::equal(da.begin(), da.end(), db.begin(), db.end())) << t.name;
    ++n;
  }
  EXPECT_EQ(n, 28);
}

}  // namespace bitnet::test
