// Model conversion: metadata carried over (with the architecture renamed on request), ternary
// weights decoded, checked and re-encoded tensor by tensor while the output is streamed.
#include "core/model/convert.hpp"

#include <algorithm>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "core/gguf/writer.hpp"
#include "core/model/tensor_names.hpp"
#include "core/model/ternary.hpp"

namespace bitnet::model {
namespace {

using gguf::GgmlType;

// Architectures --arch converts between: the same tensors, differing only in the FFN activation.
constexpr std::string_view kBitnetArchs[] = {"bitnet", "bitnet-b1.58", "bitnet-25"};
constexpr std::string_view kHiddenAct = "hidden_activation";

bool is_bitnet_arch(std::string_view a) {
  return std::find(std::begin(kBitnetArchs), std::end(kBitnetArchs), a) != std::end(kBitnetArchs);
}

std::string shape_of(const gguf::TensorInfo& t) { return fmt::format("[{}]", fmt::join(t.dims(), ", ")); }

// What the metadata becomes: the target architecture and what to do about the FFN activation.
struct ArchPlan {
  std::string from, to;
  bool add_relu2_key = false;   // to == "bitnet" from a ReLU^2 architecture
  bool drop_act_key = false;    // to is a ReLU^2 architecture, which has no such key
};

ArchPlan plan_arch(const gguf::GgufFile& in, const std::string& requested) {
  ArchPlan p;
  auto arch = in.get_string("general.architecture");
  if (!arch) throw Error(ErrorCode::invalid_input, in.where() + "missing 'general.architecture'");
  p.from = std::string(*arch);
  p.to = requested.empty() ? p.from : requested;
  if (p.to == p.from) return p;
  if (!is_bitnet_arch(p.to))
    throw make_error(ErrorCode::usage, "--arch '{}' is not one of {}", p.to, fmt::join(kBitnetArchs, ", "));
  if (!is_bitnet_arch(p.from))
    throw Error(ErrorCode::invalid_input,
                in.where() + fmt::format("architecture '{}' cannot be renamed; --arch converts between {}",
                                         gguf::printable(p.from), fmt::join(kBitnetArchs, ", ")));
  // Stock `bitnet` readers (llama.cpp) run SiLU unless bitnet.hidden_activation says "relu2";
  // bitnet-b1.58 and bitnet-25 always run ReLU^2.
  const std::string act_key = p.from + "." + std::string(kHiddenAct);
  const std::string act = std::string(in.get_string(act_key).value_or(""));
  const bool from_relu2 = p.from != "bitnet" || act == "relu2";
  if (p.to == "bitnet") {
    p.add_relu2_key = from_relu2 && p.from != "bitnet";
  } else {
    if (!from_relu2)
      throw Error(ErrorCode::invalid_input,
                  in.where() + fmt::format("this '{}' model has a SiLU FFN, but '{}' always computes ReLU^2; "
                                           "renaming would change what the model computes", p.from, p.to));
    p.drop_act_key = true;
  }
  return p;
}

void copy_metadata(const gguf::GgufFile& in, const ArchPlan& arch, GgmlType type, gguf::GgufWriter& w) {
  const std::string from_prefix = arch.from + ".";
  bool wrote_file_type = false;
  for (const gguf::KeyValue& kv : in.kvs()) {
    std::string key(kv.key);
    if (key == "general.alignment") continue;  // the writer writes it from its own alignment
    if (key == "general.architecture") {
      w.set_string(key, arch.to);
      continue;
    }
    if (key == "general.file_type") {
      w.set_u32(key, file_type_of(type));
      wrote_file_type = true;
      continue;
    }
    if (key.starts_with(from_prefix)) {
      const std::string suffix = key.substr(from_prefix.size());
      if (suffix == kHiddenAct && arch.drop_act_key) continue;
      key = arch.to + "." + suffix;
    }
    w.set_value(key, kv.value);
  }
  if (arch.add_relu2_key) w.set_string(arch.to + "." + std::string(kHiddenAct), "relu2");
  if (!wrote_file_type) w.set_u32("general.file_type", file_type_of(type));
}

// Decodes one weight tensor and re-encodes it in the target type, or explains why it cannot be.
std::vector<std::byte> convert_weight(const gguf::GgufFile& in, const gguf::TensorInfo& t, const ConvertOptions& opt,
                                      ConvertStats& stats) {
  const std::string what = fmt::format("tensor '{}' ({} {})", t.name, gguf::type_name(t.type), shape_of(t));
  const int64_t n = t.n_elements();
  // Decoding errors (a type that cannot be dequantized, NaNs) get the tensor named.
  auto named = [&](auto&& fn) {
    try {
      return fn();
    } catch (Error& e) {
      throw e.wrap(what);
    }
  };
  auto requantized = [&] { return named([&] { return requantize_absmean(dequantize_tensor(t.type, in.tensor_data(t), n)); }); };

  auto read = named([&] { return read_ternary(t.type, in.tensor_data(t), n); });
  bool lossy = false;
  TernaryWeights w;
  if (auto* why = std::get_if<std::string>(&read)) {
    if (!opt.requantize)
      throw make_error(ErrorCode::invalid_input, "{} is not ternary: {}; --requantize quantizes it to ternary with "
                       "BitNet's absmean rule (lossy)", what, *why);
    w = requantized();
    lossy = true;
  } else {
    w = std::move(std::get<TernaryWeights>(read));
  }
  if (std::string why = representable(w, opt.type); !why.empty()) {
    if (!opt.requantize)
      throw make_error(ErrorCode::invalid_input, "{} cannot be written as {} exactly: {}; --requantize allows the "
                       "nearest {} (lossy)", what, gguf::type_name(opt.type), why, gguf::type_name(opt.type));
    if (w.group == n) round_scales_to_f16(w);  // one scale: keep the values, round the scale
    else w = requantized();
    lossy = true;
  }
  stats.converted++;
  stats.requantized += lossy ? 1 : 0;
  return encode_ternary(w, opt.type);
}

}  // namespace

bool is_ternary_weight_name(std::string_view name) {
  const std::optional<Tensor> t = parse_layer_tensor_name(name);
  return t && std::ranges::find(kTernaryMatrices, *t) != std::end(kTernaryMatrices);
}

ConvertStats convert_model(const gguf::GgufFile& in, const std::filesystem::path& out, const ConvertOptions& opt) {
  static log::Logger& lg = log::get("convert");
  if (!is_ternary_target(opt.type))
    throw make_error(ErrorCode::usage, "cannot convert ternary weights to {} (choose i2_s, tq2_0, tq1_0, f16 or f32)",
                     gguf::type_name(opt.type));
  const ArchPlan arch = plan_arch(in, opt.arch);
  if (arch.add_relu2_key)
    log::warn(lg, "wrote bitnet.hidden_activation = \"relu2\" for this {} model; llama.cpp builds that ignore the key "
              "run a SiLU FFN and will not compute the trained function", arch.from);

  // Shape rules first: they need no tensor data, so a doomed conversion fails at once.
  bool any = false;
  for (const gguf::TensorInfo& t : in.tensors()) {
    if (!is_ternary_weight_name(t.name)) continue;
    any = true;
    if (std::string why = ternary_shape_problem(opt.type, t.dims()); !why.empty())
      throw Error(ErrorCode::invalid_input, in.where() + fmt::format("tensor '{}' cannot be {}: {}", t.name,
                                                                     gguf::type_name(opt.type), why));
  }
  if (!any) log::warn(lg, "{}: no ternary weight tensors (blk.N.attn_q.weight, ...); copying the file as it is", in.path().string());

  gguf::GgufWriter w(in.alignment());
  copy_metadata(in, arch, opt.type, w);
  auto stats = std::make_shared<ConvertStats>();
  for (const gguf::TensorInfo& t : in.tensors()) {
    std::vector<int64_t> ne(t.dims().begin(), t.dims().end());
    if (!is_ternary_weight_name(t.name)) {
      w.add_tensor(t.name, t.type, std::move(ne), in.tensor_data(t));
      stats->copied++;
      continue;
    }
    w.add_tensor(t.name, opt.type, std::move(ne), [&in, &t, opt, stats](gguf::ByteSink& sink) {
      const std::vector<std::byte> bytes = convert_weight(in, t, opt, *stats);
      sink.write(bytes);
    });
  }
  w.write(out, opt.write);
  log::info(lg, "{}: {} weight tensors as {} ({} requantized), {} tensors copied", out.string(), stats->converted,
            gguf::type_name(opt.type), stats->requantized, stats->copied);
  return *stats;
}

}  // namespace bitnet::model
