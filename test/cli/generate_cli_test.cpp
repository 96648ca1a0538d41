// `bitnet generate` end to end: greedy ids against llama.cpp's golden run, text streaming, stop
// strings, thread-count independence, chat, errors, and Ctrl-C.
#include <gtest/gtest.h>

#include <signal.h>
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "support/fixtures.hpp"
#include "support/golden.hpp"
#include "support/run.hpp"
#include "support/scoped.hpp"

namespace bitnet::test {
namespace {

struct JsonRun {
  std::vector<int32_t> ids;
  std::string pieces;
  std::vector<int32_t> prompt_ids;
  std::string reason;
  uint64_t n_gen = 0;
  int64_t context_shifts = -1;  // -1: not in the summary
  std::vector<std::string> piece_list;
};

JsonRun parse_json_lines(const std::string& out) {
  JsonRun r;
  simdjson::dom::parser parser;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    simdjson::dom::element e;
    if (parser.parse(line).get(e) != simdjson::SUCCESS) {
      ADD_FAILURE() << "not JSON: " << line;
      continue;
    }
    if (e["done"].error() == simdjson::SUCCESS) {
      r.reason = std::string(std::string_view(e["reason"]));
      r.n_gen = uint64_t(e["n_gen"]);
      if (e["context_shifts"].error() == simdjson::SUCCESS) r.context_shifts = int64_t(e["context_shifts"]);
      for (int64_t id : e["prompt_ids"].get_array()) r.prompt_ids.push_back(static_cast<int32_t>(id));
    } else {
      r.ids.push_back(static_cast<int32_t>(int64_t(e["id"])));
      r.pieces += std::string_view(e["piece"]);
      r.piece_list.emplace_back(std::string_view(e["piece"]));
    }
  }
  return r;
}

TEST(GenerateCli, GreedyIdsEqualLlamaCppOnStories260K) {
  for (const char* name : {"p1", "p2"}) {
    Golden g = read_golden(fixture_file(std::string("golden/stories260K.llama.cpp.") + name + ".json"));
    const std::string prompt = std::string(name) == "p1" ? "Once upon a time" : "Lily wanted to";
    RunResult r = run_bitnet({"generate", "-m", "fixture:stories260K", "-p", prompt, "--temp", "0", "-n",
                              std::to_string(g.steps.size()), "--json", "--ignore-eos"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    JsonRun j = parse_json_lines(r.out);
    EXPECT_EQ(j.prompt_ids, g.prompt_ids);
    std::vector<int32_t> want;
    for (const auto& s : g.steps) want.push_back(s.id);
    EXPECT_EQ(j.ids, want) << name;
    EXPECT_EQ(j.reason, "n");
    EXPECT_EQ(j.n_gen, g.steps.size());
  }
}

TEST(GenerateCli, TextModeEchoesPromptThenStreamsTheSameTokens) {
  RunResult js = run_bitnet({"generate", "-p", "Once upon a time", "--temp", "0", "-n", "40", "--json"});
  RunResult tx = run_bitnet({"generate", "-p", "Once upon a time", "--temp", "0", "-n", "40"});
  ASSERT_EQ(tx.exit_code, 0) << tx.err;
  JsonRun j = parse_json_lines(js.out);
  EXPECT_EQ(tx.out, "Once upon a time" + j.pieces + "\n");
  EXPECT_NE(tx.err.find("decode: 40 tokens"), std::string::npos) << tx.err;
  RunResult quiet = run_bitnet({"generate", "-p", "Once upon a time", "--temp", "0", "-n", "40", "--no-echo"});
  EXPECT_EQ(quiet.out, j.pieces + "\n");
}

// Issue #20, point 3: decode speed over the evals that were timed. -n 1 used to report thousands
// of tok/s: one token over the time of no eval at all.
TEST(GenerateCli, DecodeSpeedCountsTheTimedEvals) {
  simdjson::dom::parser parser;
  auto summary = [&](const std::string& out) {
    const std::string last = out.substr(out.rfind('{'));
    simdjson::dom::element e;
    EXPECT_EQ(parser.parse(last).get(e), simdjson::SUCCESS) << last;
    return std::pair<int64_t, double>{e["n_decode_evals"].is_int64() ? int64_t(e["n_decode_evals"]) : -1,
                                      double(e["decode_tps"])};
  };
  RunResult one = run_bitnet({"generate", "-p", "Once upon a time", "--temp", "0", "-n", "1", "--ignore-eos", "--json"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(summary(one.out), (std::pair<int64_t, double>{0, 0.0}));
  RunResult five = run_bitnet({"generate", "-p", "Once upon a time", "--temp", "0", "-n", "5", "--ignore-eos", "--json"});
  ASSERT_EQ(five.exit_code, 0) << five.err;
  const auto [evals, tps] = summary(five.out);
  EXPECT_EQ(evals, 4);
  EXPECT_GT(tps, 0.0);
  RunResult text = run_bitnet({"generate", "-p", "Once upon a time", "--temp", "0", "-n", "1", "--ignore-eos"});
  EXPECT_NE(text.err.find("decode: 1 tokens, 0 evals in 0.000 s (0.0 tok/s)"), std::string::npos) << text.err;
}

// Issue #20, point 8: out-of-range sampling and size flags are usage errors naming the range
// (--repeat-penalty 0 used to print BOS forever; negative --top-k, --repeat-last-n and -n below -1
// were taken). The edges of each range still run.
TEST(GenerateCli, SamplingFlagsOutOfRangeAreUsageErrors) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--repeat-penalty", "0"}, "error: --repeat-penalty: Value 0 not in range above 0 to 100"},
      {{"--repeat-penalty", "-1"}, "error: --repeat-penalty: Value -1 not in range above 0 to 100"},
      {{"--top-k", "-1"}, "error: --top-k: Value -1 not in range 0 to 2147483647"},
      {{"--repeat-last-n", "-5"}, "error: --repeat-last-n: Value -5 not in range 0 to 2147483647"},
      {{"-n", "-2"}, "error: --n-predict: Value -2 not in range -1 to 2147483647"},
  };
  for (const auto& [flags, message] : bad) {
    std::vector<std::string> args = {"generate", "-p", "Once upon a time"};
    args.insert(args.end(), flags.begin(), flags.end());
    RunResult r = run_bitnet(args);
    EXPECT_EQ(r.exit_code, 2) << flags[0] << " " << flags[1] << "\n" << r.err;
    EXPECT_EQ(r.err.substr(0, r.err.find('\n')), message);
    EXPECT_EQ(r.out, "");
  }
  RunResult edges = run_bitnet({"generate", "-p", "Once upon a time", "-n", "3", "--repeat-penalty", "0.5", "--top-k",
                                "0", "--repeat-last-n", "0"});
  EXPECT_EQ(edges.exit_code, 0) << edges.err;
}

// Issue #20, point 10: contradictory flags are usage errors, not a silent winner (-f used to
// replace -p; --system without --chat, -v with -q and --ids with --pieces were ignored).
TEST(GenerateCli, ContradictoryFlagsAreUsageErrors) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"generate", "-p", "Once", "-f", BITNET_TEST_SOURCE_DIR "/CMakeLists.txt", "-n", "1"}, "error: --prompt excludes --file"},
      {{"generate", "-p", "Once", "--system", "Be brief.", "-n", "1"}, "error: --system requires --chat"},
      {{"-v", "-q", "generate", "-p", "Once", "-n", "1"}, "error: --verbose excludes --quiet"},
      {{"tokenize", "--ids", "--pieces", "Once"}, "error: --ids excludes --pieces"},
      {{"generate", "-p", "Once", "-n", "1", "-ctk", "q8_0", "-ctv", "f16"},
       "error: -ctk q8_0 with -ctv f16: the K and V caches take one type here (f16, q8_0 or f32)"},
      {{"generate", "-p", "Once", "-n", "1", "--kv-type", "f32", "-ctk", "q8_0"},
       "error: --kv-type f32 with -ctk q8_0: the K and V caches take one type here (f16, q8_0 or f32)"},
  };
  for (const auto& [args, message] : cases) {
    RunResult r = run_bitnet(args);
    EXPECT_EQ(r.exit_code, 2) << args[1] << "\n" << r.err;
    EXPECT_EQ(r.err.substr(0, r.err.find('\n')), message);
    EXPECT_EQ(r.out, "");
  }
}

// Issue #20, point 18 (part): -q leaves stderr to errors (the timings line went there anyway),
// and the --json summary carries the seed, so a sampled run can be repeated.
TEST(GenerateCli, QuietIsSilentAndJsonCarriesTheSeed) {
  RunResult q = run_bitnet({"-q", "generate", "-p", "Once upon a time", "-n", "4", "--seed", "42", "--json"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_EQ(q.err, "");
  EXPECT_NE(q.out.find("\"seed\":42,"), std::string::npos) << q.out;
  RunResult again = run_bitnet({"generate", "-p", "Once upon a time", "-n", "4", "--seed", "42", "--json"});
  EXPECT_NE(again.err.find("prefill: "), std::string::npos) << again.err;  // without -q the timings stay
  EXPECT_EQ(parse_json_lines(again.out).ids, parse_json_lines(q.out).ids);
}

// Issue #20, point 12 (part): more threads than CPUs, or a context past the model's training
// length, run (llama.cpp allows both) with one warning each; -q silences them.
TEST(GenerateCli, ThreadsAndContextPastTheMachineOrModelWarn) {
  RunResult t = run_bitnet({"tokenize", "-t", "1024", "Once"});  // tokenize starts no threads
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.err.find("warning [engine] -t 1024: this machine runs "), std::string::npos) << t.err;
  RunResult c = run_bitnet({"generate", "-p", "Once", "-n", "1", "-c", "4096"});  // stories260K: 2048
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.err.find("warning [engine] -c 4096: the model was trained on 2048 tokens of context"), std::string::npos)
      << c.err;
  RunResult fits = run_bitnet({"generate", "-p", "Once", "-n", "1", "-c", "2048", "-t", "1"});
  EXPECT_EQ(fits.err.find("warning"), std::string::npos) << fits.err;
  RunResult quiet = run_bitnet({"-q", "tokenize", "-t", "1024", "Once"});
  EXPECT_EQ(quiet.err, "");
}

// Issue #20, point 9: a prompt from standard input is announced (a `while read` loop lost its
// input to it silently), `-f -` asks for it, an empty one is refused instead of generating from
// BOS alone, and --no-stdin skips it.
TEST(GenerateCli, StdinPromptIsAnnouncedAndMayNotBeEmpty) {
  const std::vector<std::string> args = {"generate", "-n", "4", "--temp", "0", "--json"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = args;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  RunResult given = run_bitnet(with({"-p", "Once upon a time"}));
  RunResult piped = run_bitnet(args, "Once upon a time");
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_NE(piped.err.find("reading the prompt from standard input"), std::string::npos) << piped.err;
  EXPECT_EQ(parse_json_lines(piped.out).prompt_ids, parse_json_lines(given.out).prompt_ids);
  RunResult dash = run_bitnet(with({"-f", "-"}), "Once upon a time");
  EXPECT_EQ(dash.exit_code, 0) << dash.err;
  EXPECT_EQ(parse_json_lines(dash.out).ids, parse_json_lines(given.out).ids);
  RunResult empty = run_bitnet(args, "");
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.err.find("error: the prompt from standard input is empty"), std::string::npos) << empty.err;
  EXPECT_EQ(empty.out, "");
  RunResult skip = run_bitnet(with({"--no-stdin"}), "ignored");
  ASSERT_EQ(skip.exit_code, 0) << skip.err;
  EXPECT_EQ(parse_json_lines(skip.out).prompt_ids, std::vector<int32_t>{1});  // BOS alone
  EXPECT_EQ(skip.err.find("reading the prompt"), std::string::npos);
  RunResult quiet = run_bitnet({"-q", "generate", "-n", "2"}, "Once");
  EXPECT_EQ(quiet.err, "");
}

// Issue #20, point 11: -p's escapes are characters by default (llama-cli's -e), --no-escape
// keeps them; the prompt then tokenizes as the same text read from a file.
TEST(GenerateCli, PromptEscapesAreCharactersByDefault) {
  TempDir dir;
  const std::string real = (dir / "real.txt").string(), literal = (dir / "literal.txt").string();
  std::ofstream(real) << "Once\tupon\na \"time\"";
  std::ofstream(literal) << "Once\\nupon";
  auto ids = [](const RunResult& r) { return parse_json_lines(r.out).prompt_ids; };
  const std::vector<std::string> common = {"generate", "-n", "1", "--temp", "0", "--json"};
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = common;
    a.insert(a.end(), extra.begin(), extra.end());
    RunResult r = run_bitnet(a);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r;
  };
  EXPECT_EQ(ids(run({"-p", "Once\\tupon\\na \\\"time\\\""})), ids(run({"-f", real})));
  EXPECT_EQ(ids(run({"-e", "-p", "Once\\tupon\\na \\\"time\\\""})), ids(run({"-f", real})));
  EXPECT_EQ(ids(run({"--no-escape", "-p", "Once\\nupon"})), ids(run({"-f", literal})));
  EXPECT_NE(ids(run({"-p", "Once\\nupon"})), ids(run({"-f", literal})));
}

TEST(GenerateCli, StopStringEndsGenerationAndIsNotPrinted) {
  RunResult full = run_bitnet({"generate", "-p", "Once upon a time", "--temp", "0", "-n", "64", "--no-echo"});
  ASSERT_EQ(full.exit_code, 0);
  // Stop at the first " the" the greedy story contains.
  const size_t at = full.out.find(" the");
  ASSERT_NE(at, std::string::npos) << full.out;
  RunResult stopped =
      run_bitnet({"generate", "-p", "Once upon a time", "--temp", "0", "-n", "64", "--no-echo", "--stop", " the"});
  ASSERT_EQ(stopped.exit_code, 0);
  EXPECT_EQ(stopped.out, full.out.substr(0, at) + "\n");
  EXPECT_NE(stopped.err.find("stop: stop"), std::string::npos) << stopped.err;
}

// Issue #20, point 18: the tokens of a stop string are not token events either, so --json's
// pieces add up to the text the text mode prints.
TEST(GenerateCli, StopStringTokensAreNotEvents) {
  RunResult text = run_bitnet({"generate", "-p", "Once upon a time", "--temp", "0", "-n", "64", "--no-echo", "--stop", " the"});
  RunResult json =
      run_bitnet({"generate", "-p", "Once upon a time", "--temp", "0", "-n", "64", "--json", "--stop", " the"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const JsonRun j = parse_json_lines(json.out);
  EXPECT_EQ(j.reason, "stop");
  EXPECT_EQ(j.pieces + "\n", text.out);
  EXPECT_EQ(j.pieces.find(" the"), std::string::npos) << j.pieces;
}

TEST(GenerateCli, OutputDoesNotDependOnThreadCount) {
  // Sampling (temperature 1, fixed seed) amplifies any numeric difference into other tokens.
  auto run = [](const char* threads) {
    return run_bitnet({"generate", "-m", "fixture:bitnet-tiny-i2_s", "-p", "once upon a time", "--temp", "1",
                       "--seed", "5", "-n", "48", "--ignore-eos", "--json", "-t", threads});
  };
  RunResult one = run("1"), two = run("2"), three = run("3");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(parse_json_lines(one.out).ids, parse_json_lines(two.out).ids);
  EXPECT_EQ(parse_json_lines(one.out).ids, parse_json_lines(three.out).ids);
  EXPECT_EQ(parse_json_lines(one.out).ids.size(), 48u);
}

TEST(GenerateCli, PromptFromStdinAndFile) {
  RunResult a = run_bitnet({"generate", "--temp", "0", "-n", "8", "--no-echo"}, "Once upon a time");
  RunResult b = run_bitnet({"generate", "--temp", "0", "-n", "8", "--no-echo", "-p", "Once upon a time"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
}

TEST(GenerateCli, ChatFirstTurnEqualsTheSameTranscriptGenerated) {
  // stories260K has no chat tokens: the plain transcript format, stopping at the next "User:".
  RunResult chat = run_bitnet({"generate", "--chat", "--temp", "0", "-n", "24"}, "Hello\nTell me more\n");
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  RunResult once = run_bitnet({"generate", "--temp", "0", "-n", "24", "--no-echo", "--stop", "\nUser:", "-p",
                               "User: Hello\nAssistant:"});
  ASSERT_EQ(once.exit_code, 0) << once.err;
  ASSERT_TRUE(chat.out.starts_with(once.out)) << "chat:\n" << chat.out << "\nonce:\n" << once.out;
  EXPECT_GT(chat.out.size(), once.out.size() + 1) << "a second reply follows";
  EXPECT_NE(chat.err.find("no chat tokens"), std::string::npos);
}

// Lines of `text` that contain `needle`, each with its newline.
std::string lines_with(const std::string& text, const std::string& needle) {
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) out += line + "\n";
  return out;
}

// Issue #20, point 17: a full context is shifted as llama-cli does (BOS and --keep tokens stay,
// the older half of the rest is dropped) and generation goes on; --no-context-shift keeps the old
// stop. Main stopped `-c 64 -n 100` after 60 tokens with reason "ctx".
TEST(GenerateCli, FullContextIsShiftedAndGenerationGoesOn) {
  const std::vector<std::string> base = {"generate", "-p", "Once upon a time", "--temp", "0", "-c", "64",
                                         "-n", "100", "--ignore-eos", "--json"};
  auto with = [&](const std::vector<std::string>& more) {
    std::vector<std::string> a = base;
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };
  // The default: 100 tokens in a 64-token context.
  const RunResult full_run = run_bitnet(base);
  ASSERT_EQ(full_run.exit_code, 0) << full_run.err;
  const JsonRun full = parse_json_lines(full_run.out);
  EXPECT_EQ(full.reason, "n");
  EXPECT_EQ(full.n_gen, 100u);
  ASSERT_EQ(full.piece_list.size(), 100u) << full_run.err;

  RunResult stopped = run_bitnet(with({"--no-context-shift"}));
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  const JsonRun js = parse_json_lines(stopped.out);
  const size_t n_prompt = js.prompt_ids.size();
  ASSERT_EQ(n_prompt, 5u);  // BOS + 4
  // Without a shift the prompt and every generated token but the last fill the 64 positions.
  EXPECT_EQ(js.reason, "ctx");
  EXPECT_EQ(js.ids.size(), 64 - n_prompt + 1);
  EXPECT_EQ(js.context_shifts, 0);
  EXPECT_EQ(lines_with(stopped.err, "context full"), "");

  const std::vector<std::pair<std::string, size_t>> keeps = {{"0", 1}, {"2", 3}, {"-1", n_prompt}};
  for (const auto& [keep, kept] : keeps) {
    RunResult r = run_bitnet(with({"--keep", keep}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const JsonRun j = parse_json_lines(r.out);
    EXPECT_EQ(j.reason, "n") << "--keep " << keep;
    EXPECT_EQ(j.n_gen, 100u);
    ASSERT_EQ(j.ids.size(), 100u);
    EXPECT_EQ(std::vector<int32_t>(j.ids.begin(), j.ids.begin() + static_cast<long>(js.ids.size())), js.ids)
        << "up to the first shift the runs are the same";
    // Each time the next token would be the 65th: keep `kept`, drop half of the rest.
    std::string notes;
    size_t n_past = n_prompt, shifts = 0;
    for (int fed = 1; fed < 100; ++fed, ++n_past) {  // the first 99 generated tokens are fed back
      if (n_past < 64) continue;
      const size_t drop = (n_past - kept) / 2;
      // Appended piece by piece: "literal" + std::string&& trips GCC 12's -Wrestrict.
      notes += "context full (64 tokens): kept the first ";
      notes += std::to_string(kept);
      notes += ", dropped the next ";
      notes += std::to_string(drop);
      notes += "\n";
      n_past -= drop;
      ++shifts;
    }
    EXPECT_GE(shifts, 2u);
    EXPECT_EQ(lines_with(r.err, "context full"), notes) << "--keep " << keep;
    EXPECT_EQ(j.context_shifts, static_cast<int64_t>(shifts));
  }

  // -n -1 goes past the full context too: stop at text the 100-token run printed only after its
  // first shift. The run is the same up to there.
  EXPECT_EQ(full.ids, parse_json_lines(run_bitnet(with({"--keep", "0"})).out).ids) << "--keep 0 is the default";
  std::string before;  // the text of the tokens generated before the first shift
  for (size_t i = 0; i < js.ids.size(); ++i) before += full.piece_list[i];
  std::string stop;
  for (size_t at = js.ids.size() + 10; at + 3 <= 100 && stop.empty(); ++at) {
    const std::string s3 = full.piece_list[at] + full.piece_list[at + 1] + full.piece_list[at + 2];
    if (s3.size() >= 6 && full.pieces.find(s3) >= before.size()) stop = s3;
  }
  ASSERT_FALSE(stop.empty()) << full.pieces;
  RunResult endless = run_bitnet({"generate", "-p", "Once upon a time", "--temp", "0", "-c", "64", "-n", "-1",
                                  "--ignore-eos", "--json", "--stop", stop});
  ASSERT_EQ(endless.exit_code, 0) << endless.err;
  const JsonRun je = parse_json_lines(endless.out);
  EXPECT_EQ(je.reason, "stop");
  EXPECT_GE(je.context_shifts, 1);
  EXPECT_GT(je.n_gen, js.ids.size());
  EXPECT_LE(je.n_gen, full.ids.size());
  ASSERT_LE(je.ids.size(), full.ids.size());  // the stop string's tokens are not reported
  EXPECT_EQ(je.ids, std::vector<int32_t>(full.ids.begin(), full.ids.begin() + static_cast<long>(je.ids.size())))
      << "stop: " << stop;

  // Text mode: the timings line counts the shifts; -q prints no notes.
  RunResult text = run_bitnet({"generate", "-p", "Once upon a time", "--temp", "0", "-c", "64", "-n", "100",
                               "--ignore-eos"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.err.find("stop: n; context shifts: 2"), std::string::npos) << text.err;
  EXPECT_EQ(text.out, "Once upon a time" + full.pieces + "\n");
  RunResult quiet = run_bitnet({"-q", "generate", "-p", "Once upon a time", "--temp", "0", "-c", "64", "-n", "100",
                                "--ignore-eos"});
  ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");
  EXPECT_EQ(quiet.out, text.out);
}

// --chat with a small context: later turns shift it (keeping BOS and the system message) and every
// turn is answered; --no-context-shift fails the first turn that does not fit with exit 3, as main
// did without the flag.
TEST(GenerateCli, ChatShiftsAFullContextKeepingTheSystemMessage) {
  const std::string turns = "Hello\nTell me more\nWhat happened next?\nAnd then?\n";
  const std::vector<std::string> args = {"-v", "generate", "--chat", "--temp", "0", "-n", "24", "-c", "64",
                                         "--system", "Be brief."};
  RunResult r = run_bitnet(args, turns);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // One timings line per answered turn.
  size_t answered = 0;
  for (size_t at = r.err.find("] prefill: "); at != std::string::npos; at = r.err.find("] prefill: ", at + 1))
    ++answered;
  EXPECT_EQ(answered, 4u) << r.err;
  // What is kept: BOS and the tokens of the system part ("Be brief.\n" in the plain transcript
  // format), as far as they start the first turn's tokens.
  auto ids = [](const std::string& text) {
    RunResult t = run_bitnet({"tokenize", text});
    EXPECT_EQ(t.exit_code, 0) << t.err;
    std::vector<int32_t> v;
    std::istringstream in(t.out.substr(1));  // "[1, 368, ...]"
    for (int32_t id; in >> id; in.ignore(1)) v.push_back(id);
    return v;
  };
  const std::vector<int32_t> sys_ids = ids("Be brief.\n"), turn_ids = ids("Be brief.\nUser: Hello\nAssistant:");
  size_t sys = 0;
  while (sys < sys_ids.size() && sys < turn_ids.size() && sys_ids[sys] == turn_ids[sys]) ++sys;
  ASSERT_GE(sys, 3u) << "BOS and the system message's tokens";
  const std::string notes = lines_with(r.err, "context full");
  EXPECT_GE(std::count(notes.begin(), notes.end(), '\n'), 2) << r.err;
  std::string kept_sys = "context full (64 tokens): kept the first ";
  kept_sys += std::to_string(sys);
  kept_sys += ", dropped the next ";
  EXPECT_EQ(lines_with(notes, kept_sys), notes);
  EXPECT_EQ(lines_with(notes, ", dropped the next 0"), "");

  std::vector<std::string> no_shift = args;
  no_shift.push_back("--no-context-shift");
  RunResult stopped = run_bitnet(no_shift, turns);
  EXPECT_EQ(stopped.exit_code, 3) << stopped.err;
  EXPECT_NE(stopped.err.find("error: context full: "), std::string::npos) << stopped.err;
  EXPECT_NE(stopped.err.find("exceed the context size 64"), std::string::npos) << stopped.err;
  ASSERT_FALSE(stopped.out.empty());
  EXPECT_TRUE(r.out.starts_with(stopped.out)) << "the replies before the full context are the same";
  EXPECT_GT(r.out.size(), stopped.out.size());
}

TEST(GenerateCli, ErrorsHaveTheirExitCodes) {
  RunResult bad_model = run_bitnet({"generate", "-m", fixture_file("vocab/ggml-vocab-llama-spm.gguf").string(), "-p", "x"});
  EXPECT_EQ(bad_model.exit_code, 3);
  EXPECT_NE(bad_model.err.find("token_embd.weight"), std::string::npos) << bad_model.err;
  EXPECT_TRUE(bad_model.out.empty());
  RunResult backend = run_bitnet({"generate", "-p", "x", "--backend", "quantum"});
  EXPECT_EQ(backend.exit_code, 2);
  EXPECT_NE(backend.err.find("unknown backend 'quantum'"), std::string::npos);
  RunResult ctx = run_bitnet({"generate", "-p", "Once upon a time there was a dog", "-c", "4"});
  EXPECT_EQ(ctx.exit_code, 3);
  EXPECT_NE(ctx.err.find("context size 4"), std::string::npos) << ctx.err;
  RunResult threads = run_bitnet({"generate", "-p", "x", "-t", "0"});
  EXPECT_EQ(threads.exit_code, 2);
  // stories260K's heads of 8 values are shorter than a Q8_0 block.
  RunResult q8 = run_bitnet({"generate", "-p", "x", "--kv-type", "q8_0"});
  EXPECT_EQ(q8.exit_code, 3);
  EXPECT_NE(q8.err.find("q8_0 KV cache needs a head size that is a multiple of 32"), std::string::npos) << q8.err;
  RunResult kv = run_bitnet({"generate", "-p", "x", "--kv-type", "q4_0"});
  EXPECT_EQ(kv.exit_code, 2);
  EXPECT_NE(kv.err.find("--kv-type"), std::string::npos) << kv.err;
}

TEST(GenerateCli, PromptFileThatCannotBeReadIsInvalidInput) {
  TempDir dir;
  RunResult r = run_bitnet({"generate", "-f", dir.path().string(), "-n", "1"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(r.err, "error: " + dir.path().string() + ": cannot read the prompt file: is a directory\n");
  const std::string missing = (dir / "missing.txt").string();
  r = run_bitnet({"generate", "-f", missing, "-n", "1"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(missing + ": cannot read the prompt file: No such file"), std::string::npos) << r.err;
  if (::geteuid() != 0) {  // root reads any file
    const std::string locked = (dir / "locked.txt").string();
    std::ofstream(locked) << "Once upon a time";
    std::filesystem::permissions(locked, std::filesystem::perms::none);
    r = run_bitnet({"generate", "-f", locked, "-n", "1"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find(locked + ": cannot read the prompt file: Permission denied"), std::string::npos) << r.err;
  }
}

TEST(GenerateCli, CtrlCStopsCleanlyWithExit130) {
  int out_pipe[2];
  ASSERT_EQ(pipe(out_pipe), 0);
  ::setenv("BITNET_FIXTURE_PATH", fixture_dirs().c_str(), 0);
  const std::string bin = bitnet_bin();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    close(out_pipe[0]);
    close(out_pipe[1]);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    execl(bin.c_str(), bin.c_str(), "generate", "-p", "Once upon a time", "-n", "-1", "--ignore-eos", "-c", "2048",
          "-t", "1", "--json", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out_pipe[1]);
  // Wait for the first token event, then interrupt.
  std::string out;
  char buf[4096];
  while (out.find("\"id\"") == std::string::npos) {
    ssize_t n = read(out_pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  kill(pid, SIGINT);
  for (ssize_t n; (n = read(out_pipe[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(out_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal";
  EXPECT_EQ(WEXITSTATUS(status), 130);
  JsonRun j = parse_json_lines(out);
  EXPECT_EQ(j.reason, "interrupt") << "the summary line is still written";
  EXPECT_EQ(j.n_gen, j.ids.size());
}

}  // namespace
}  // namespace bitnet::test
