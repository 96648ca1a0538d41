// Generation loop and the text hold-back rules.
#include "generate.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <limits>

#include <fmt/format.h>

#include "core/base/log.hpp"

namespace bitnet::infer {

size_t incomplete_utf8_tail(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  for (size_t back = 1; back <= std::min<size_t>(3, s.size()); ++back) {
    auto c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

std::string_view stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::n: return "n";
    case StopReason::eos: return "eos";
    case StopReason::stop: return "stop";
    case StopReason::ctx: return "ctx";
    case StopReason::interrupt: return "interrupt";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Length of the longest suffix of s that is a proper prefix of some stop string.
size_t stop_prefix_tail(std::string_view s, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& stop : stops)
    for (size_t len = std::min(s.size(), stop.size() - 1); len > hold; --len)
      if (s.substr(s.size() - len) == std::string_view(stop).substr(0, len)) {
        hold = len;
        break;
      }
  return hold;
}

}  // namespace

ShiftResult make_room(Session& session, size_t n_new, const GenerateOptions& opt) {
  const uint64_t n_past = session.n_past(), n_ctx = session.n_ctx();
  if (!opt.context_shift || n_past + n_new <= n_ctx) return {};
  const uint32_t kept = std::min(opt.n_keep, session.n_past());
  const uint64_t rest = n_past - kept, need = n_past + n_new - n_ctx;
  const uint64_t drop = std::max(rest / 2, need);
  if (drop > rest) return {};
  session.shift_context(kept, static_cast<uint32_t>(drop));
  return {kept, static_cast<uint32_t>(drop)};
}

GenerateResult generate(Session& session, std::span<const TokenId> prompt, std::span<const TokenId> eog,
                        const GenerateOptions& opt, const GenerateEvents& ev, const std::atomic<bool>* interrupt) {
  GenerateResult r;
  r.n_prompt = prompt.size();
  Sampler sampler(opt.sampling);
  for (TokenId t : prompt) sampler.accept(t);

  auto shift = [&](size_t n_new) {
    const ShiftResult s = make_room(session, n_new, opt);
    if (s.dropped == 0) return;
    ++r.n_shifts;
    if (ev.on_shift) ev.on_shift(s.kept, s.dropped);
  };

  // Before each eval: which logits the sampler will look at (Session::set_top_logits).
  auto ask = [&] { session.set_top_logits(opt.exact_logits ? 0 : sampler.needs_top(), sampler.penalized()); };
  auto count = [&] {
    r.exact_output_rows += static_cast<uint64_t>(session.exact_output_rows());
    ++r.n_evals;
  };

  static log::Logger& lg = log::get("generate");
  const auto t0 = Clock::now();
  shift(prompt.size());
  ask();
  {
    log::Phase prefill(lg, fmt::format("prefill of {} tokens", prompt.size()));
    session.eval(prompt);
  }
  count();
  r.prefill_seconds = seconds_since(t0);

  std::string pending;  // generated text not shown yet
  // Token events wait with their text: a token whose piece starts in text that is then shown is
  // reported, one that lies wholly inside a stop string never is. start: its offset in pending.
  struct HeldToken {
    TokenId id;
    std::string piece;
    size_t start;
  };
  std::deque<HeldToken> held;
  auto report_tokens = [&](size_t shown) {
    while (!held.empty() && held.front().start < shown) {
      if (ev.on_token) ev.on_token(held.front().id, held.front().piece);
      held.pop_front();
    }
    for (HeldToken& h : held) h.start -= std::min(h.start, shown);
  };
  auto show = [&](size_t n) {
    if (n == 0) return;
    std::string_view chunk(pending.data(), n);
    report_tokens(n);
    if (ev.on_text) ev.on_text(chunk);
    r.text += chunk;
    pending.erase(0, n);
  };

  for (int32_t i = 0; opt.n_predict < 0 || i < opt.n_predict; ++i) {
    if (interrupt && interrupt->load()) {
      r.reason = StopReason::interrupt;
      break;
    }
    TokenId id = sampler.sample(session.logits());
    if (i == 0) r.first_token_seconds = seconds_since(t0);
    if (!opt.ignore_eos && std::find(eog.begin(), eog.end(), id) != eog.end()) {
      r.reason = StopReason::eos;
      break;
    }
    sampler.accept(id);
    r.tokens.push_back(id);
    std::string piece = ev.piece(id);
    held.push_back({id, piece, pending.size()});
    pending += piece;
    size_t cut = std::string::npos;  // the earliest stop string wins
    for (const auto& stop : opt.stop)
      if (!stop.empty()) cut = std::min(cut, pending.find(stop));
    if (cut != std::string::npos) {
      pending.resize(cut);
      r.reason = StopReason::stop;
      break;
    }
    size_t hold = std::max(incomplete_utf8_tail(pending), stop_prefix_tail(pending, opt.stop));
    show(pending.size() - hold);
    if (opt.n_predict >= 0 && i + 1 >= opt.n_predict) break;  // no need to feed the last token
    if (session.n_past() >= session.n_ctx()) shift(1);
    if (session.n_past() >= session.n_ctx()) {
      r.reason = StopReason::ctx;
      break;
    }
    const TokenId next[1] = {id};
    ask();
    const auto t1 = Clock::now();
    {
      // Only a warning, past BITNET_SLOW_MS: a debug line per token would drown the rest.
      log::Phase step(lg, fmt::format("decode step at position {}", session.n_past()), 0, /*quiet=*/true);
      session.eval(next);
    }
    r.decode_seconds += seconds_since(t1);
    ++r.n_decode_evals;
    count();
  }
  session.set_top_logits(0);  // whoever uses the session next gets every logit unless they ask
  show(pending.size());
  // Tokens with empty pieces still waiting, unless a stop string ended the text before them.
  if (r.reason != StopReason::stop) report_tokens(std::numeric_limits<size_t>::max());
  return r;
}

}  // namespace bitnet::infer
