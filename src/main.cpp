// mailgun-spool: the FastCGI (or plain CGI) responder that stores Mailgun route POSTs.
//
// Start-up decides the mode. A listening socket on standard input means FastCGI (spawn-fcgi,
// a systemd socket, mod_fcgid). Without one, a web server that sets REQUEST_METHOD means plain
// CGI, one request. Anything else was started by hand and only prints how to run it.
#include <fcgiapp.h>
#include <fcntl.h>
#include <gmime/gmime.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "file_io.h"
#include "log.h"
#include "request_error.h"
#include "request_handler.h"
#include "request_io.h"
#include "spool.h"
#include "spool_limits.h"
#include "token_store.h"

extern char** environ;

namespace mgspool {
namespace {

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// How often the token memory is pruned. Pruning visits every remembered token, so it runs
// at most this often, also in CGI mode where every request is a new process.
constexpr std::int64_t k_token_prune_interval_seconds = 60 * 60;

// A file in private/ whose modification time is the last prune, shared by all processes.
constexpr const char* k_last_prune_file = "last-prune";

// Prunes the token memory when the last prune by any process is older than the interval.
void prune_tokens_if_due(const Spool& spool, TokenStore& tokens) {
  std::int64_t now = now_seconds();
  struct stat status {};
  if (::fstatat(spool.private_fd(), k_last_prune_file, &status, AT_SYMLINK_NOFOLLOW) == 0 &&
      now - status.st_mtim.tv_sec < k_token_prune_interval_seconds) {
    return;
  }
  // Marked first, so that concurrent processes do not all prune at once.
  // Non-blocking, so a FIFO put in the marker's place cannot stall the request.
  int fd = ::openat(spool.private_fd(), k_last_prune_file,
                    O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::futimens(fd, nullptr);
    ::close(fd);
  }
  try {
    tokens.prune(now);
  } catch (const std::exception& error) {
    log_line(LogLevel::warning, std::string("pruning the token memory failed: ") + error.what());
  }
}

volatile std::sig_atomic_t g_stop_requested = 0;
volatile std::sig_atomic_t g_waiting_for_request = 0;

// SIGTERM lets the request in progress finish. While the process waits for the next
// request nothing is in progress, so it leaves at once. SA_RESTART keeps a body read from
// being cut short: libfcgi would otherwise treat the interrupted read as the end of input.
void handle_termination(int) {
  if (g_waiting_for_request) {
    _exit(0);
  }
  g_stop_requested = 1;
}

void install_signal_handlers() {
  struct sigaction action = {};
  action.sa_handler = handle_termination;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  // A web server that drops the connection must not kill the responder mid-commit.
  sigaction(SIGPIPE, &ignore, nullptr);
}


class CgiIo : public RequestIo {
 public:
  std::optional<std::string> param(const char* name) const override {
    const char* value = std::getenv(name);
    return value == nullptr ? std::nullopt : std::optional<std::string>(value);
  }

  std::size_t read_body(char* buffer, std::size_t size) override {
    try {
      return read_some(STDIN_FILENO, buffer, size, "standard input");
    } catch (const RequestError& error) {
      throw RequestError(Outcome::body_truncated, error.what());
    }
  }

  void write_response(std::string_view bytes) override {
    try {
      write_all(STDOUT_FILENO, bytes, "standard output");
    } catch (const RequestError& error) {
      log_line(LogLevel::warning, std::string("the response could not be sent: ") + error.what());
    }
  }
};

class FastCgiIo : public RequestIo {
 public:
  explicit FastCgiIo(FCGX_Request& request) : m_request(request) {}

  std::optional<std::string> param(const char* name) const override {
    const char* value = FCGX_GetParam(name, m_request.envp);
    return value == nullptr ? std::nullopt : std::optional<std::string>(value);
  }

  std::size_t read_body(char* buffer, std::size_t size) override {
    int count = FCGX_GetStr(buffer, static_cast<int>(size), m_request.in);
    if (count < 0 || (count < static_cast<int>(size) && FCGX_GetError(m_request.in) != 0)) {
      throw RequestError(Outcome::body_truncated, "reading the request body from the web server failed");
    }
    return static_cast<std::size_t>(count);
  }

  void write_response(std::string_view bytes) override {
    if (FCGX_PutStr(bytes.data(), static_cast<int>(bytes.size()), m_request.out) < 0) {
      log_line(LogLevel::warning, "the response could not be sent to the web server");
    }
  }

 private:
  FCGX_Request& m_request;
};

// The spool and token memory, opened once per process. An error here is logged and every
// request gets a 500, because a web server that respawned a failing responder would only loop.
struct SpoolState {
  std::unique_ptr<Spool> spool;
  std::unique_ptr<TokenStore> tokens;
  std::string error;
};

// Warns when the spool's group (inherited through its set-group-ID bit) is not one of this
// process's groups: message folders would then lose the group, and consumers could not read them.
void warn_if_outside_spool_group(const Spool& spool) {
  struct stat status {};
  if (::fstat(spool.fd(), &status) != 0 || (status.st_mode & S_ISGID) == 0 || status.st_gid == ::getegid()) {
    return;
  }
  std::vector<gid_t> groups(static_cast<std::size_t>(std::max(::getgroups(0, nullptr), 0)));
  int count = ::getgroups(static_cast<int>(groups.size()), groups.data());
  for (int i = 0; i < count; ++i) {
    if (groups[static_cast<std::size_t>(i)] == status.st_gid) {
      return;
    }
  }
  log_line(LogLevel::warning, "the responder's user is not in group " + std::to_string(status.st_gid) + " of " +
                                  spool.path() + ", so stored messages will not be readable by that group; add "
                                  "the user to the group (usermod -a -G GROUP USER) and restart the responder");
}

SpoolState open_spool(const Config& config) {
  SpoolState state;
  try {
    state.spool = std::make_unique<Spool>(config.spool_dir);
    warn_if_outside_spool_group(*state.spool);
    state.tokens =
        std::make_unique<TokenStore>(state.spool->private_fd(), token_retention_seconds(config.max_age_seconds));
    std::size_t removed = state.spool->remove_abandoned_staging();
    if (removed > 0) {
      log_line(LogLevel::warning, "removed " + std::to_string(removed) + " abandoned staging directories from " +
                                      config.spool_dir + "/tmp");
    }
    prune_tokens_if_due(*state.spool, *state.tokens);
  } catch (const std::exception& error) {
    state.error = std::string("cannot open the spool ") + config.spool_dir + ": " + error.what();
    state.spool.reset();
    state.tokens.reset();
    log_line(LogLevel::error, state.error);
  }
  return state;
}

const char* k_insecure_warning =
    "INSECURE MODE: signatures are not checked, anyone who can reach this URL can store mail; "
    "unset MAILGUN_SPOOL_INSECURE outside development";

void log_start(const Config& config, const char* mode) {
  log_line(LogLevel::info, std::string("starting (") + mode + ", version " + k_version + ") spool=" +
                               config.spool_dir + " max_request_bytes=" + std::to_string(config.max_request_bytes) +
                               " max_age_seconds=" + std::to_string(config.max_age_seconds));
  if (config.insecure) {
    log_line(LogLevel::warning, k_insecure_warning);
  } else if (!config.signing_key) {
    log_line(LogLevel::error, config.key_error.empty()
                                  ? "no signing key configured: every request will answer 500 until "
                                    "MAILGUN_SIGNING_KEY_FILE or MAILGUN_SIGNING_KEY is set"
                                  : config.key_error + "; every request will answer 500");
  }
}

const char* k_root_refusal =
    "refusing to run as root: a responder that parses untrusted mail must not hold root's rights; "
    "run it as its own user (spawn-fcgi -u, User= in systemd, suexec under Apache)";

std::vector<std::string> environment_strings() {
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    environment.emplace_back(*entry);
  }
  return environment;
}

int run_cgi() {
  CgiIo io;
  // Command-line arguments are ignored in CGI mode: some servers pass the query string there.
  ConfigResult loaded = load_config(environment_strings(), {});
  if (loaded.config) {
    std::string log_error;
    if (!log_open(loaded.config->log_target, log_error)) {
      log_line(LogLevel::error, log_error);
    }
  }

  if (::geteuid() == 0) {
    log_line(LogLevel::error, k_root_refusal);
    io.write_response(response_for(Outcome::local_failure));
    return 1;
  }
  if (!loaded.config) {
    log_line(LogLevel::error, "configuration error: " + loaded.error);
    io.write_response(response_for(Outcome::local_failure));
    return 1;
  }

  const Config& config = *loaded.config;
  if (config.insecure) {
    log_line(LogLevel::warning, k_insecure_warning);
  }
  SpoolState state = open_spool(config);
  RequestHandler handler(config, state.spool.get(), state.tokens.get(), state.error);
  handler.handle(io);
  return 0;
}

int run_fastcgi(Config config) {
  if (::geteuid() == 0) {
    log_line(LogLevel::error, k_root_refusal);
    return 1;
  }
  log_start(config, "FastCGI");
  SpoolState state = open_spool(config);

  FCGX_Request request;
  if (FCGX_InitRequest(&request, 0, 0) != 0) {
    log_line(LogLevel::error, "FCGX_InitRequest failed");
    return 1;
  }
  install_signal_handlers();

  for (;;) {
    // Set before the check, so that a SIGTERM arriving in between either is seen here or
    // ends the process at once.
    g_waiting_for_request = 1;
    if (g_stop_requested) {
      break;
    }
    // NOTE: while waiting, a SIGTERM ends the process at once, also when libfcgi has already
    // accepted a connection and is reading its parameters; that request gets no response,
    // so the web server answers 502 and Mailgun retries it.
    int accepted = FCGX_Accept_r(&request);
    g_waiting_for_request = 0;
    if (accepted < 0) {
      if (g_stop_requested) {
        break;
      }
      log_line(LogLevel::error, "FCGX_Accept_r failed with " + std::to_string(accepted) + "; exiting");
      return 1;
    }
    // A key file or spool that was broken at start is tried again for every request, so
    // fixing it takes effect while Mailgun retries, without a restart.
    refresh_signing_key(config);
    if (!state.spool) {
      state = open_spool(config);
    }
    FastCgiIo io(request);
    RequestHandler handler(config, state.spool.get(), state.tokens.get(), state.error);
    handler.handle(io);
    FCGX_Finish_r(&request);

    if (state.spool) {
      prune_tokens_if_due(*state.spool, *state.tokens);
    }
  }
  log_line(LogLevel::info, "stopping after SIGTERM");
  return 0;
}

int run(int argc, char** argv) {
  ::umask(007);  // the group shares new/ and cur/ with the consumers; others get nothing
  g_mime_init();
  if (FCGX_Init() != 0) {
    std::fprintf(stderr, "mailgun-spool: FCGX_Init failed\n");
    return 1;
  }

  bool fastcgi = !FCGX_IsCGI();
  if (!fastcgi && std::getenv("REQUEST_METHOD") != nullptr) {
    return run_cgi();
  }

  ConfigResult loaded = load_config(environment_strings(), std::vector<std::string>(argv + 1, argv + argc));
  if (loaded.show_help) {
    std::fputs(usage_text().c_str(), stdout);
    return 0;
  }
  if (loaded.show_version) {
    std::printf("mailgun-spool %s\n", k_version);
    return 0;
  }
  if (!fastcgi) {
    std::fputs("mailgun-spool: standard input is not a FastCGI socket and REQUEST_METHOD is unset, so this is\n"
               "neither a FastCGI nor a CGI start. Run it under a web server; see mailgun-spool(8).\n\n",
               stderr);
    std::fputs(usage_text().c_str(), stderr);
    return 2;
  }
  if (!loaded.config) {
    log_line(LogLevel::error, "configuration error: " + loaded.error);
    return 2;
  }
  std::string log_error;
  if (!log_open(loaded.config->log_target, log_error)) {
    log_line(LogLevel::error, log_error + "; logging to standard error instead");
  }
  return run_fastcgi(*loaded.config);
}

}  // namespace
}  // namespace mgspool

int main(int argc, char** argv) {
  return mgspool::run(argc, argv);
}
