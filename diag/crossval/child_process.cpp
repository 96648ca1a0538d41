// run_child: posix_spawn + poll + kill. The child gets its own process group so that a timeout
// also ends whatever it started (a script's `sleep`), which would otherwise keep our pipes open.
#include "diag/crossval/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/base/error.hpp"

extern char** environ;

namespace bitnet::diag {
namespace {

using Clock = std::chrono::steady_clock;

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// argv[0] as execve wants it: a path as given, else the first executable match in PATH.
std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (!std::filesystem::exists(name)) throw make_error(ErrorCode::fixture, "reference program '{}' does not exist", name);
    if (!is_executable_file(name)) throw make_error(ErrorCode::fixture, "reference program '{}' is not an executable file", name);
    return name;
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/bin:/bin";
  while (true) {
    size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (is_executable_file(candidate)) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  throw make_error(ErrorCode::fixture, "reference program '{}' was not found in PATH", name);
}

struct Fd {
  int fd = -1;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

void make_pipe(Fd& r, Fd& w) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw make_error(ErrorCode::failure, "pipe: {}", std::strerror(errno));
  r.fd = p[0];
  w.fd = p[1];
}

// Kills and reaps the child if we leave early (an exception), so no zombie or orphan is left.
struct ChildGuard {
  pid_t pid = -1;
  int status = 0;
  ~ChildGuard() {
    if (pid > 0) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
  }
};

// Writing to a child that already exited raises SIGPIPE, which would kill us. Blocking it in this
// thread turns that into a plain EPIPE; any pending instance is consumed before unblocking.
struct SigpipeBlock {
  sigset_t set{}, old{};
  SigpipeBlock() {
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);
  }
  ~SigpipeBlock() {
    timespec zero{};
    while (sigtimedwait(&set, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
};

// Each thread of `pid` as /proc shows it: what a hung process was doing, without a debugger.
std::string thread_states(pid_t pid) {
  std::string out;
  std::error_code ec;
  const std::filesystem::path task = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& e : std::filesystem::directory_iterator(task, ec)) {
    auto first_line = [&](const char* file) {
      std::string line;
      std::FILE* f = std::fopen((e.path() / file).c_str(), "r");
      if (f == nullptr) return line;
      char buf[256];
      if (std::fgets(buf, sizeof buf, f) != nullptr) line = buf;
      std::fclose(f);
      while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
      return line;
    };
    // stat: "tid (comm) S ...": the state is the first field after the name's closing parenthesis.
    const std::string stat = first_line("stat");
    const size_t close = stat.rfind(')');
    const char state = close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : '?';
    std::string wchan = first_line("wchan");
    if (wchan.empty() || wchan == "0") wchan = "running or not waiting";
    out += e.path().filename().string() + " (" + first_line("comm") + ") state " + state + ", waiting in " + wchan + "\n";
  }
  return out;
}

}  // namespace

std::vector<std::string> split_command(std::string_view command) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < command.size()) {
    while (i < command.size() && std::isspace(static_cast<unsigned char>(command[i]))) ++i;
    size_t j = i;
    while (j < command.size() && !std::isspace(static_cast<unsigned char>(command[j]))) ++j;
    if (j > i) out.emplace_back(command.substr(i, j - i));
    i = j;
  }
  return out;
}

ChildResult run_child(const std::vector<std::string>& argv, std::string_view input, const ChildOptions& opt) {
  if (argv.empty()) throw make_error(ErrorCode::usage, "empty reference command");
  const std::string program = resolve_program(argv[0]);
  Fd in_r, in_w, out_r, out_w, err_r, err_w;
  make_pipe(in_r, in_w);
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.fd, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  SigpipeBlock sigpipe;
  const auto start = Clock::now();
  const auto deadline = start + opt.timeout;
  ChildGuard child;
  const int rc = ::posix_spawn(&child.pid, program.c_str(), &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    child.pid = -1;
    throw make_error(ErrorCode::fixture, "cannot start reference program '{}': {}", program, std::strerror(rc));
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();

  ChildResult r;
  if (input.empty()) in_w.reset();
  else ::fcntl(in_w.fd, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  auto remaining_ms = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    // Wake often enough to notice a cancellation promptly.
    return left > 0 ? static_cast<int>(std::min<long long>(left, opt.cancel != nullptr ? 100 : 1000)) : 0;
  };
  auto append_err = [&](const char* buf, size_t n) {
    r.err.append(buf, n);
    if (r.err.size() > 2 * opt.max_err) r.err.erase(0, r.err.size() - opt.max_err);
  };
  auto cancelled = [&] { return opt.cancel != nullptr && opt.cancel->load(); };
  while ((out_r.fd >= 0 || err_r.fd >= 0) && !r.timed_out) {
    if (cancelled()) {
      r.cancelled = true;
      break;
    }
    pollfd fds[3] = {{out_r.fd, POLLIN, 0}, {err_r.fd, POLLIN, 0}, {in_w.fd, POLLOUT, 0}};
    const int wait = remaining_ms();
    if (wait == 0 && Clock::now() >= deadline) {
      r.timed_out = true;
      break;
    }
    int n = ::poll(fds, 3, wait);
    if (n < 0 && errno != EINTR) throw make_error(ErrorCode::failure, "poll: {}", std::strerror(errno));
    if (n <= 0) continue;
    char buf[65536];
    for (int k = 0; k < 2; ++k) {
      if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = ::read(fds[k].fd, buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        (k == 0 ? out_r : err_r).reset();
      } else if (k == 1) {
        append_err(buf, static_cast<size_t>(got));
      } else if (r.out.size() < opt.max_output) {
        r.out.append(buf, std::min(static_cast<size_t>(got), opt.max_output - r.out.size()));
      } else {
        r.output_truncated = true;
      }
    }
    if (in_w.fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t put = ::write(in_w.fd, input.data() + written, input.size() - written);
      if (put > 0) written += static_cast<size_t>(put);
      // EPIPE: the child closed its stdin without reading all of it; its output will tell.
      if ((put < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) in_w.reset();
    }
  }
  in_w.reset();
  // The outputs are closed; give the process what is left of the deadline to exit.
  while (!r.timed_out && !r.cancelled) {
    if (cancelled()) {
      r.cancelled = true;
      break;
    }
    pid_t done = ::waitpid(child.pid, &child.status, WNOHANG);
    if (done == child.pid) {
      child.pid = -1;
      break;
    }
    if (Clock::now() >= deadline) r.timed_out = true;
    else std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (r.timed_out) {
    r.threads_at_timeout = thread_states(child.pid);
    if (opt.quit_before_kill && err_r.fd >= 0) {
      // Its stack dump ends with a marker line; wait for that, or for quit_wait.
      ::kill(child.pid, SIGQUIT);
      const auto until = Clock::now() + opt.quit_wait;
      while (err_r.fd >= 0 && Clock::now() < until && r.err.find("--- end of thread dump ---") == std::string::npos) {
        pollfd fd{err_r.fd, POLLIN, 0};
        if (::poll(&fd, 1, 50) <= 0) continue;
        char buf[65536];
        const ssize_t got = ::read(err_r.fd, buf, sizeof buf);
        if (got <= 0) err_r.reset();
        else append_err(buf, static_cast<size_t>(got));
      }
    }
  }
  if (r.timed_out || r.cancelled) {
    ::kill(-child.pid, SIGKILL);
    ::kill(child.pid, SIGKILL);
    ::waitpid(child.pid, &child.status, 0);
    child.pid = -1;
  }
  if (WIFEXITED(child.status)) r.exit_code = WEXITSTATUS(child.status);
  if (WIFSIGNALED(child.status)) r.signal = WTERMSIG(child.status);
  if (r.err.size() > opt.max_err) r.err.erase(0, r.err.size() - opt.max_err);
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

}  // namespace bitnet::diag
