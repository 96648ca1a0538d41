// The crossval report as text, JSON and JUnit XML. Everything shown comes from the report struct;
// nothing here decides pass or fail.
#include "app/crossval_print.hpp"

#include <fmt/format.h>

#include "core/base/json_writer.hpp"

namespace bitnet::app {
namespace {

using diag::CrossvalReport;
using diag::Mismatch;
using diag::PromptReport;

template <typename... Args>
void line(std::string& o, fmt::format_string<Args...> f, Args&&... args) {
  o += fmt::format(f, std::forward<Args>(args)...);
  o += '\n';
}

// A piece or text shown quoted with control characters escaped (JSON rules: readable, one line).
std::string shown(std::string_view s) { return json_escape(s); }

// The tail of a long text, for "text before" lines.
std::string tail(const std::string& s, size_t max_bytes = 160) {
  if (s.size() <= max_bytes) return shown(s);
  size_t start = s.size() - max_bytes;
  while (start < s.size() && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) ++start;  // not mid-character
  return "..." + shown(s.substr(start));
}

std::string ids(const std::vector<TokenId>& v, size_t around, size_t max = 24) {
  // Long lists are shown around the first difference.
  size_t from = around > max / 2 ? around - max / 2 : 0;
  size_t to = std::min(v.size(), from + max);
  std::string s = from > 0 ? "[..., " : "[";
  for (size_t i = from; i < to; ++i) s += fmt::format("{}{}", i > from ? ", " : "", v[i]);
  return s + (to < v.size() ? ", ...]" : "]");
}

std::string thresholds_text(const diag::Thresholds& t) {
  std::string diff = t.rel_logit_diff > 0 ? fmt::format("{:g} + {:g} x |top-1|", t.max_logit_diff, t.rel_logit_diff)
                                          : fmt::format("{:g}", t.max_logit_diff);
  return fmt::format("max |logit diff| {}, KL <= {:g}, top-1 >= {:g}, near-tie margin < {:g} ({} defaults)", diff, t.max_kl,
                     t.min_top1, t.tie, t.kind);
}

std::string mismatch_text(const Mismatch& m) {
  return fmt::format("step {}: reference {} {} vs ours {} {} (reference top-2 margin {:.4g}{})", m.step, m.ref_id,
                     shown(m.ref_piece), m.our_id, shown(m.our_piece), m.ref_margin,
                     m.near_tie ? ", a near-tie: not a failure" : "");
}

void prompt_table(std::string& o, const PromptReport& p, size_t index, bool with_steps) {
  line(o, "prompt {}  {}  {}", index + 1, p.prompt.empty() ? "(ids from the reference)" : shown(p.prompt),
       p.pass() ? "PASS" : "FAIL");
  if (!p.tokens.checked && !(p.tokens.from_ids && p.tokens.first_diff)) {
    line(o, "  tokens   not checked (the reference gave ids only): {} ids{}", p.tokens.ref.size(),
         p.tokens.from_ids ? ", and our tokenizer reads their text back to them" : "");
  } else if (!p.tokens.checked) {
    const size_t d = *p.tokens.first_diff;
    line(o, "  tokens   not checked (the reference gave ids only), but its prompt ids DIFFER at index {} from what our", d);
    line(o, "           tokenizer makes of their text: recorded with another model (or another --pre)?");
    line(o, "           ours      {}", ids(p.tokens.ours, d));
    line(o, "           reference {}", ids(p.tokens.ref, d));
  } else if (p.tokens.ok()) {
    line(o, "  tokens   {} ids, identical", p.tokens.ours.size());
  } else {
    const size_t d = *p.tokens.first_diff;
    line(o, "  tokens   DIFFER at index {}", d);
    line(o, "           ours      {}", ids(p.tokens.ours, d));
    line(o, "           reference {}", ids(p.tokens.ref, d));
  }
  line(o, "  greedy   {}/{} ids agree (teacher-forced: ours is fed the reference's tokens)", p.n_match, p.n_steps);
  if (!p.mismatches.empty()) {
    const Mismatch& m = p.mismatches.front();
    line(o, "           first mismatch at {}", mismatch_text(m));
    line(o, "           text before: {}", tail(m.text_before));
    for (size_t i = 1; i < p.mismatches.size() && i < 6; ++i) line(o, "           then {}", mismatch_text(p.mismatches[i]));
    if (p.mismatches.size() > 6) line(o, "           ... {} more", p.mismatches.size() - 6);
  }
  const size_t n_top1 = static_cast<size_t>(p.top1_rate * static_cast<double>(p.n_steps) + 0.5);
  line(o, "  logits   top-1 {}/{}, top-k overlap {:.3f}, KL mean {:.3g} max {:.3g} (step {}), max |diff| {:.4g} (step {})",
       n_top1, p.n_steps, p.mean_overlap, p.mean_kl, p.max_kl, p.max_kl_step, p.max_abs, p.max_abs_step);
  if (with_steps) {
    line(o, "  {:>5} {:>7} {:>7} {:>9} {:>5} {:>8} {:>10} {:>10} {:>8}", "step", "ref", "ours", "margin", "top1", "overlap",
         "KL", "max|diff|", "limit");
    for (const auto& s : p.steps)
      line(o, "  {:>5} {:>7} {:>7} {:>9.4f} {:>5} {:>8.3f} {:>10.3g} {:>10.4g} {:>8.4g}", s.step, s.ref_id, s.our_id,
           s.ref_margin, s.top1 ? "yes" : "NO", s.overlap, s.kl, s.max_abs, s.limit);
  }
  for (const std::string& f : p.failures) line(o, "  FAIL     {}", f);
}

// --layers: every compared tap, then the one line that says where the runs part.
void layers_table(std::string& o, const diag::LayersReport& l) {
  o += fmt::format("\nlayers     step {} (position {}), tolerance {:.1e} on each tap's relative L2 error\n", l.step,
                   l.position, l.tolerance);
  o += "| tap | width | max abs diff | rel L2 | cosine | |\n| --- | ---: | ---: | ---: | ---: | --- |\n";
  for (const auto& t : l.taps)
    o += fmt::format("| {} | {} | {:.3e} | {:.3e} | {:.6f} | {} |\n", diag::tap_label(t.name, t.layer), t.width,
                     t.max_abs, t.rel_l2, t.cosine, t.over ? "over" : "");
  if (!l.only_ours.empty()) {
    o += "not given by the reference:";
    for (const auto& n : l.only_ours) o += " " + n + ",";
    o.back() = '\n';
  }
  o += l.verdict + "\n";
}

}  // namespace

std::string crossval_table(const CrossvalReport& r, bool with_steps) {
  std::string o;
  if (r.kv_type == "f16")
    line(o, "model      {} ({} weights)", r.model, r.quantized ? "quantized" : "float");
  else
    line(o, "model      {} ({} KV cache: {} thresholds)", r.model, r.kv_type, r.quantized ? "quantized" : "float");
  line(o, "reference  {}{}", r.reference, r.reference_engine.empty() ? "" : fmt::format("  [{}]", r.reference_engine));
  line(o, "ours       {}, prompt batch {}", r.our_engine, r.batch);
  line(o, "thresholds {}", thresholds_text(r.thresholds));
  if (!r.metadata_checked) {
    line(o, "metadata   not checked (the reference states no vocabulary facts)");
  } else {
    std::string fields;
    for (const auto& f : r.metadata)
      fields += f.ok() ? fmt::format("{} {}, ", f.name, f.ours) : fmt::format("{} ours {} reference {} DIFFERENT, ", f.name, f.ours, f.ref);
    if (fields.size() >= 2) fields.resize(fields.size() - 2);
    line(o, "metadata   {}  {}", fields, r.metadata_ok() ? "agree" : "DISAGREE");
  }
  o += '\n';
  for (size_t i = 0; i < r.prompts.size(); ++i) {
    prompt_table(o, r.prompts[i], i, with_steps);
    o += '\n';
  }
  size_t failed = 0;
  for (const auto& p : r.prompts) failed += p.pass() ? 0 : 1;
  if (r.pass()) {
    line(o, "result     PASS: {} ({:.1f} s)", r.prompts.size() == 1 ? "the prompt agrees" : fmt::format("all {} prompts agree", r.prompts.size()), r.seconds);
  } else {
    std::string why = failed ? fmt::format("{} of {} prompts disagree", failed, r.prompts.size()) : "";
    if (!r.metadata_ok()) why += (why.empty() ? "" : "; ") + std::string("the vocabulary metadata differs");
    line(o, "result     FAIL: {} ({:.1f} s)", why, r.seconds);
  }
  if (r.layers) layers_table(o, *r.layers);
  return o;
}

namespace {

void json_mismatch(JsonWriter& j, const Mismatch& m) {
  j.begin_object();
  j.key("step").value(static_cast<uint64_t>(m.step));
  j.key("reference").begin_object().key("id").value(static_cast<int64_t>(m.ref_id)).key("piece").value(m.ref_piece).end_object();
  j.key("ours").begin_object().key("id").value(static_cast<int64_t>(m.our_id)).key("piece").value(m.our_piece).end_object();
  j.key("text_before").value(m.text_before);
  j.key("reference_margin").value(m.ref_margin);
  j.key("near_tie").value(m.near_tie);
  j.end_object();
}

void json_ids(JsonWriter& j, const std::vector<TokenId>& v) {
  j.begin_array();
  for (TokenId id : v) j.value(static_cast<int64_t>(id));
  j.end_array();
}

void json_prompt(JsonWriter& j, const PromptReport& p) {
  j.begin_object();
  j.key("prompt").value(p.prompt);
  j.key("pass").value(p.pass());
  j.key("failures").begin_array();
  for (const auto& f : p.failures) j.value(f);
  j.end_array();
  j.key("tokens").begin_object().key("checked").value(p.tokens.checked).key("from_ids").value(p.tokens.from_ids);
  j.key("ours");
  json_ids(j, p.tokens.ours);
  j.key("reference");
  json_ids(j, p.tokens.ref);
  j.key("first_difference");
  p.tokens.first_diff ? j.value(static_cast<uint64_t>(*p.tokens.first_diff)) : j.null();
  j.end_object();
  j.key("greedy").begin_object();
  j.key("steps").value(static_cast<uint64_t>(p.n_steps)).key("matching").value(static_cast<uint64_t>(p.n_match));
  j.key("accuracy").value(p.n_steps ? static_cast<double>(p.n_match) / static_cast<double>(p.n_steps) : 1.0);
  j.key("first_mismatch");
  if (p.mismatches.empty()) j.null();
  else json_mismatch(j, p.mismatches.front());
  j.key("mismatches").begin_array();
  for (const auto& m : p.mismatches) json_mismatch(j, m);
  j.end_array().end_object();
  j.key("logits").begin_object();
  j.key("top1_agreement").value(p.top1_rate).key("mean_topk_overlap").value(p.mean_overlap);
  j.key("kl_mean").value(p.mean_kl).key("kl_max").value(p.max_kl).key("kl_max_step").value(static_cast<uint64_t>(p.max_kl_step));
  j.key("max_abs_diff").value(p.max_abs).key("max_abs_diff_step").value(static_cast<uint64_t>(p.max_abs_step));
  j.end_object();
  j.key("steps").begin_array();
  for (const auto& s : p.steps) {
    j.begin_object().key("step").value(static_cast<uint64_t>(s.step)).key("reference_id").value(static_cast<int64_t>(s.ref_id));
    j.key("our_id").value(static_cast<int64_t>(s.our_id)).key("reference_margin").value(s.ref_margin).key("top1").value(s.top1);
    j.key("topk_overlap").value(s.overlap).key("kl").value(s.kl).key("max_abs_diff").value(s.max_abs).key("limit").value(s.limit);
    j.end_object();
  }
  j.end_array();
  j.key("seconds").begin_object().key("reference").value(p.seconds_ref).key("ours").value(p.seconds_ours).end_object();
  j.key("reference_stderr").value(p.ref_stderr);
  j.end_object();
}

}  // namespace

std::string crossval_json(const CrossvalReport& r) {
  JsonWriter j(true);
  j.begin_object();
  j.key("model").value(r.model);
  j.key("reference").value(r.reference);
  j.key("reference_engine").value(r.reference_engine);
  j.key("engine").value(r.our_engine);
  j.key("prompt_batch").value(r.batch);
  j.key("kv_type").value(r.kv_type);
  j.key("pass").value(r.pass());
  const auto& t = r.thresholds;
  j.key("thresholds").begin_object().key("kind").value(t.kind).key("max_logit_diff").value(t.max_logit_diff);
  j.key("rel_logit_diff").value(t.rel_logit_diff).key("max_kl").value(t.max_kl).key("min_top1").value(t.min_top1);
  j.key("tie").value(t.tie).end_object();
  j.key("metadata").begin_object().key("checked").value(r.metadata_checked).key("ok").value(r.metadata_ok());
  j.key("fields").begin_array();
  for (const auto& f : r.metadata)
    j.begin_object().key("name").value(f.name).key("ours").value(f.ours).key("reference").value(f.ref).key("ok").value(f.ok()).end_object();
  j.end_array().end_object();
  if (r.layers) {
    const diag::LayersReport& l = *r.layers;
    j.key("layers").begin_object().key("step").value(static_cast<uint64_t>(l.step));
    j.key("position").value(static_cast<uint64_t>(l.position)).key("tolerance").value(l.tolerance);
    j.key("verdict").value(l.verdict).key("first_divergence");
    if (l.first_over) {
      const auto& f = l.taps[*l.first_over];
      j.begin_object().key("name").value(f.name).key("layer").value(static_cast<int64_t>(f.layer)).end_object();
    } else {
      j.null();
    }
    j.key("not_in_reference").begin_array();
    for (const auto& n : l.only_ours) j.value(n);
    j.end_array().key("taps").begin_array();
    for (const auto& tap : l.taps) {
      j.begin_object().key("name").value(tap.name).key("layer").value(static_cast<int64_t>(tap.layer));
      j.key("width").value(tap.width).key("max_abs_diff").value(tap.max_abs).key("rel_l2").value(tap.rel_l2);
      j.key("cosine").value(tap.cosine).key("over").value(tap.over).end_object();
    }
    j.end_array().end_object();
  }
  j.key("prompts").begin_array();
  for (const auto& p : r.prompts) json_prompt(j, p);
  j.end_array();
  j.key("seconds").value(r.seconds);
  j.end_object();
  return j.str() + "\n";
}

namespace {

std::string xml(std::string_view s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      default:
        if (c < 0x20 && c != '\n' && c != '\t') {
          o += ' ';  // XML 1.0 has no way to write these
        } else if (c >= 0x80) {
          const size_t n = utf8_sequence_length(s, i);
          o += n ? std::string(s.substr(i, n)) : std::string("\xEF\xBF\xBD");
          i += n ? n - 1 : 0;
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o;
}

}  // namespace

std::string crossval_junit(const CrossvalReport& r) {
  size_t failures = r.metadata_ok() ? 0 : 1;
  for (const auto& p : r.prompts) failures += p.pass() ? 0 : 1;
  const size_t tests = r.prompts.size() + (r.metadata_checked ? 1 : 0);
  std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  const std::string suite = xml("crossval " + r.model + " vs " + r.reference);
  o += fmt::format("<testsuites name=\"bitnet crossval\" tests=\"{}\" failures=\"{}\" time=\"{:.3f}\">\n", tests, failures, r.seconds);
  o += fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"{:.3f}\">\n", suite, tests, failures,
                   r.seconds);
  if (r.metadata_checked) {
    o += "    <testcase classname=\"crossval\" name=\"metadata\" time=\"0\">\n";
    if (!r.metadata_ok()) {
      std::string body;
      for (const auto& f : r.metadata)
        if (!f.ok()) body += fmt::format("{}: ours {}, reference {}\n", f.name, f.ours, f.ref);
      o += fmt::format("      <failure message=\"vocabulary metadata differs\">{}</failure>\n", xml(body));
    }
    o += "    </testcase>\n";
  }
  for (size_t i = 0; i < r.prompts.size(); ++i) {
    const PromptReport& p = r.prompts[i];
    o += fmt::format("    <testcase classname=\"crossval\" name=\"{}\" time=\"{:.3f}\">\n",
                     xml(p.prompt.empty() ? fmt::format("prompt {}", i + 1) : fmt::format("prompt {}: {}", i + 1, p.prompt)), p.seconds_ref + p.seconds_ours);
    std::string text;
    prompt_table(text, p, i, false);
    if (!p.pass()) o += fmt::format("      <failure message=\"{}\">{}</failure>\n", xml(p.failures.front()), xml(text));
    else o += fmt::format("      <system-out>{}</system-out>\n", xml(text));
    o += "    </testcase>\n";
  }
  o += "  </testsuite>\n</testsuites>\n";
  return o;
}

}  // namespace bitnet::app
