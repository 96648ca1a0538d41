// Golden format: parsing with simdjson (errors name the source and the element), writing with
// JsonWriter.
#include "diag/crossval/golden.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>

#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"

namespace bitnet::diag {
namespace {

using simdjson::dom::element;

[[noreturn]] void bad(std::string_view source, const std::string& what) {
  throw make_error(ErrorCode::invalid_input, "{}: not the golden format: {}", source, what);
}

TokenId token_id(element e, std::string_view source, const std::string& where) {
  int64_t v = 0;
  if (e.get_int64().get(v) || v < 0 || v > std::numeric_limits<TokenId>::max())
    bad(source, where + " is not a token id (a non-negative integer)");
  return static_cast<TokenId>(v);
}

std::optional<int64_t> optional_id(element obj, const char* key) {
  element e;
  int64_t v = 0;
  if (obj[key].get(e) || e.get_int64().get(v)) return std::nullopt;  // absent or null
  if (v < 0) return std::nullopt;  // llama.cpp's "no such token" (-1)
  return v;
}

GoldenStep parse_step(element s, std::string_view source, size_t k) {
  const std::string where = "steps[" + std::to_string(k) + "]";
  GoldenStep step;
  element id;
  if (s["id"].get(id)) bad(source, where + " has no \"id\"");
  step.id = token_id(id, source, where + ".id");
  std::string_view piece;
  if (!s["piece"].get_string().get(piece)) step.piece = piece;
  simdjson::dom::array top;
  if (s["top"].get_array().get(top)) bad(source, where + " has no \"top\" array");
  for (element pair : top) {
    simdjson::dom::array a;
    if (pair.get_array().get(a) || a.size() != 2) bad(source, where + ".top holds something other than [id, logit] pairs");
    TopEntry t;
    element id_e, logit_e;
    double logit = 0;
    if (a.at(0).get(id_e) || a.at(1).get(logit_e)) bad(source, where + ".top has a short pair");
    t.id = token_id(id_e, source, where + ".top id");
    if (logit_e.get_double().get(logit) || !std::isfinite(logit)) bad(source, where + ".top has a logit that is not a finite number");
    t.logit = static_cast<float>(logit);
    step.top.push_back(t);
  }
  if (step.top.empty()) bad(source, where + ".top is empty");
  return step;
}

GoldenLayers parse_layers(element l, std::string_view source, size_t n_steps) {
  GoldenLayers out;
  uint64_t step = 0;
  if (l["step"].get_uint64().get(step) || step >= n_steps)
    bad(source, "\"layers\" has no \"step\" among its " + std::to_string(n_steps) + " steps");
  out.step = static_cast<size_t>(step);
  simdjson::dom::array taps;
  if (l["taps"].get_array().get(taps)) bad(source, "\"layers\" has no \"taps\" array");
  for (element t : taps) {
    CapturedTap c;
    std::string_view name;
    int64_t layer = 0;
    simdjson::dom::array values;
    if (t["name"].get_string().get(name) || name.empty() || t["layer"].get_int64().get(layer) ||
        t["values"].get_array().get(values))
      bad(source, "\"layers\" holds a tap without a name, layer and values");
    c.name = name;
    c.layer = static_cast<int32_t>(layer);
    for (element v : values) {
      double x = 0;
      if (v.get_double().get(x)) bad(source, "tap " + c.name + " holds a value that is not a number");
      c.values.push_back(static_cast<float>(x));
    }
    out.taps.push_back(std::move(c));
  }
  return out;
}

}  // namespace

Golden parse_golden(std::string_view json, std::string_view source) {
  simdjson::dom::parser parser;
  element doc;
  if (auto err = parser.parse(simdjson::padded_string(json)).get(doc)) {
    const size_t start = std::min(json.size(), json.find_first_not_of(" \t\r\n"));
    std::string head(json.substr(start, 80));
    for (char& c : head)
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    bad(source, std::string(simdjson::error_message(err)) + (head.empty() ? " (the output is empty)" : "; it starts with: " + head));
  }
  if (!doc.is_object()) bad(source, "the top level is not an object");
  Golden g;
  std::string_view sv;
  if (!doc["engine"].get_string().get(sv)) g.engine = sv;
  if (!doc["prompt"].get_string().get(sv)) g.prompt = std::string(sv);
  element vocab;
  if (!doc["vocab"].get(vocab) && vocab.is_object()) {
    VocabFacts v;
    v.n_tokens = optional_id(vocab, "n_tokens");
    v.bos = optional_id(vocab, "bos");
    v.eos = optional_id(vocab, "eos");
    v.eot = optional_id(vocab, "eot");
    bool b = false;
    if (!vocab["add_bos"].get_bool().get(b)) v.add_bos = b;
    g.vocab = v;
  }
  simdjson::dom::array ids;
  if (doc["prompt_ids"].get_array().get(ids)) bad(source, "no \"prompt_ids\" array");
  for (element e : ids) g.prompt_ids.push_back(token_id(e, source, "prompt_ids"));
  if (g.prompt_ids.empty()) bad(source, "\"prompt_ids\" is empty");
  simdjson::dom::array steps;
  if (doc["steps"].get_array().get(steps)) bad(source, "no \"steps\" array");
  size_t k = 0;
  for (element s : steps) g.steps.push_back(parse_step(s, source, k++));
  element layers;
  if (!doc["layers"].get(layers)) g.layers = parse_layers(layers, source, g.steps.size());
  return g;
}

Golden read_golden_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw make_error(ErrorCode::fixture, "{}: cannot read the golden file", path.string());
  const std::string text(std::istreambuf_iterator<char>(in), {});
  return parse_golden(text, path.string());
}

std::string write_golden(const Golden& g) {
  JsonWriter j(false);
  j.begin_object();
  if (!g.engine.empty()) j.key("engine").value(g.engine);
  if (g.prompt) j.key("prompt").value(*g.prompt);
  if (g.vocab) {
    auto opt = [&](const char* k, const std::optional<int64_t>& v) {
      j.key(k);
      v ? j.value(*v) : j.null();
    };
    j.key("vocab").begin_object();
    opt("n_tokens", g.vocab->n_tokens);
    opt("bos", g.vocab->bos);
    opt("eos", g.vocab->eos);
    opt("eot", g.vocab->eot);
    if (g.vocab->add_bos) j.key("add_bos").value(*g.vocab->add_bos);
    j.end_object();
  }
  j.key("prompt_ids").begin_array();
  for (TokenId id : g.prompt_ids) j.value(static_cast<int64_t>(id));
  j.end_array();
  j.key("steps").begin_array();
  for (const GoldenStep& s : g.steps) {
    j.begin_object().key("id").value(static_cast<int64_t>(s.id)).key("piece").value(s.piece).key("top").begin_array();
    for (const TopEntry& t : s.top) j.begin_array().value(static_cast<int64_t>(t.id)).value(static_cast<double>(t.logit)).end_array();
    j.end_array().end_object();
  }
  j.end_array();
  if (g.layers) {
    j.key("layers").begin_object().key("step").value(static_cast<uint64_t>(g.layers->step)).key("taps").begin_array();
    for (const CapturedTap& t : g.layers->taps) {
      j.begin_object().key("name").value(t.name).key("layer").value(static_cast<int64_t>(t.layer)).key("values").begin_array();
      for (float v : t.values) j.value(static_cast<double>(v));
      j.end_array().end_object();
    }
    j.end_array().end_object();
  }
  j.end_object();
  return j.str() + "\n";
}

}  // namespace bitnet::diag
