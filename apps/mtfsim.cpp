// mtfsim: the testbed's command line. Thin: parses flags and calls the libraries.
//
//   mtfsim run SCENARIO.json [--out FILE.sqlite] [--seed N] [--threads N] [--quiet] [--resume] [--force]
//   mtfsim bench sim [--threads N] [--record] [--scenario FILE] [--users N] [--days N]
//                    [--agent NAME [--train-steps N]]
//   mtfsim bench train --agent NAME [--hidden H] [--critics M] [--batch B] [--threads N]
//   mtfsim report RUN.sqlite [--out FILE.md] [--html FILE.html] [--allow-partial]
//   mtfsim export RUN.sqlite --format hdf5|csv [--groups NAME,...] [--out FILE] [--next-observations]
//                 [--allow-partial]
//   mtfsim regress SCENARIO.json --baseline FILE.json [--update] [--threads N]
//   mtfsim evaluate SCENARIO.json --policy SPEC [--policy SPEC ...] [--users N] [--days D] [--gamma G]
//                   [--seed S] [--threads T] [--json FILE]
#include <signal.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "agents/agent.h"
#include "agents/nn/tensor.h"
#include "core/atomic_file.h"
#include "core/cluster.h"
#ifdef MTF_MPI
#include "core/mpi_cluster.h"
#endif
#include "core/json_reader.h"
#include "core/state_features.h"
#include "results/export.h"
#include "results/recorder.h"
#include "sim/scenario.h"
#include "experiments/agent_refs.h"
#include "experiments/experiment.h"
#include "experiments/offline_training.h"
#include "experiments/oracle.h"
#include "experiments/report.h"
#include "experiments/simulation.h"
#include "metrics/user_metrics.h"
#include "sim/policies.h"
#include "sim/simulator.h"
#include <fstream>
#if __has_include("agents/train_bench.h")
#include "agents/train_bench.h"
#define MTF_HAVE_TRAIN_BENCH 1
#endif

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

/// The processes this command runs on: the MPI world under mpirun (an
/// -DMTF_MPI=ON build), else this process alone.
const mtf::Cluster* g_cluster = &mtf::single_process();

/// This process's peak resident memory in MB (VmHWM of /proc/self/status; -1 where unknown).
long peak_resident_mb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6) / 1024;
  return -1;
}

/// Refuses a command that does not shard over MPI ranks when started by mpirun
/// with more than one rank: N copies would each write the same files.
void single_process_only(const std::string& cmd) {
  if (g_cluster->size() > 1)
    throw po::error(cmd + ": runs as one process; only `mtfsim run` (simulations and experiments), `mtfsim train` "
                    "(data-parallel) and `mtfsim bench sim` run over MPI ranks. Run it without mpirun");
}

constexpr const char* kUsage =
    "mtfsim: the open testbed for multi-task fusion in recommender systems\n"
    "\n"
    "Usage:\n"
    "  mtfsim run SCENARIO.json [--out FILE.sqlite] [--seed N] [--threads N] [--quiet]\n"
    "  mtfsim bench sim [--threads N] [--record] [--scenario FILE] [--users N] [--days N]\n"
    "                   [--agent NAME [--train-steps N]]\n"
    "  mtfsim bench train --agent NAME [--hidden H] [--critics M] [--batch B] [--threads N]\n"
    "  mtfsim report RUN.sqlite [--out FILE.md] [--html FILE.html]\n"
    "  mtfsim export RUN.sqlite --format hdf5|csv [--groups NAME,...] [--out FILE] [--next-observations]\n"
    "  mtfsim regress SCENARIO.json --baseline FILE.json [--update] [--threads N]\n"
    "  mtfsim evaluate SCENARIO.json --policy SPEC [--policy SPEC ...] [--users N] [--days D] [--gamma G]\n"
    "                  [--seed S] [--threads N] [--json FILE]\n"
    "  mtfsim train RUN.sqlite (--agent TYPE [--set key=value ...] | --from AGENT) --steps N\n"
    "               --out FILE.mtfa [--groups G1,G2] [--formulation F] [--discount-seconds T]\n"
    "               [--curve FILE.csv] [--seed S] [--threads N]\n"
    "  mtfsim act POLICY --states FILE.csv [--out FILE.csv] [--seed S]\n"
    "  mtfsim COMMAND --help      help for one command\n"
    "\n"
    "Commands:\n"
    "  run     simulate a scenario (or run its experiment protocol), write the run database\n"
    "  report  the paper-style tables of an experiment's run database (markdown), or its charts (HTML)\n"
    "  export  a run's transitions as an offline-RL dataset (HDF5 with D4RL's keys, or CSV)\n"
    "  regress run an experiment and fail when an agent's figures leave a recorded band\n"
    "  bench   measure simulator or training speed; the last line printed is JSON\n"
    "  evaluate  the oracle: policies' true values on the same simulated users, paired differences\n"
    "  train   train one agent on a run database's transitions, write its agent file and curve\n"
    "  act     the actions a policy file takes on given states (CSV)\n";

/// A progress bar on stderr: days, users, requests/s. Silent when asked or when
/// stderr is not a terminal.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled && isatty(STDERR_FILENO)) {}
  void update(const mtf::Progress& p) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100) && p.users_done != p.users) return;
    last_ = now;
    const double frac = p.users ? static_cast<double>(p.users_done) / p.users : 1.0;
    const int width = 30;
    const int fill = static_cast<int>(frac * width);
    std::string bar(fill, '#');
    bar.resize(width, '.');
    const double rate = p.wall_seconds > 0 ? p.requests / p.wall_seconds : 0.0;
    std::fprintf(stderr, "\r  day %d/%d [%s] users %lld/%lld  %.0f requests/s   ", p.day + 1, p.days,
                 bar.c_str(), static_cast<long long>(p.users_done), static_cast<long long>(p.users), rate);
    std::fflush(stderr);
    dirty_ = true;
  }
  ~ProgressBar() {
    if (dirty_) std::fprintf(stderr, "\n");
  }

 private:
  bool enabled_;
  bool dirty_ = false;
  std::chrono::steady_clock::time_point last_{};
};

fs::path default_out(const mtf::Scenario& s, const fs::path& scenario_path) {
  (void)s;
  return fs::path("results") / (scenario_path.stem().string() + ".sqlite");
}

/// Parses a command's flags plus one positional argument stored as `positional`.
po::variables_map parse_command(const std::vector<std::string>& args, const po::options_description& opts,
                                const char* positional, const char* what) {
  po::options_description hidden;
  hidden.add_options()(positional, po::value<std::string>(), what);
  po::options_description all;
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add(positional, 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
  po::notify(vm);
  return vm;
}

// --- Flags: every command reads its numeric flags as text and checks them here,
// so each bad value gets the one message form (exit code 2):
//   mtfsim: <command>: --<flag>: expected <what>, got <value>
// the form of the JSON reader's messages, with the same ranges where a flag
// overrides a scenario key (--seed, --users, --days).

[[noreturn]] void bad_flag(const std::string& cmd, const std::string& flag, const std::string& expected,
                           const std::string& got) {
  throw po::error(cmd + ": --" + flag + ": expected " + expected + ", got " + got);
}

/// A flag's text as a message shows it: numbers as written, anything else quoted.
std::string shown_flag(const std::string& text) {
  char* end = nullptr;
  if (!text.empty()) {
    (void)std::strtod(text.c_str(), &end);
    if (end && *end == '\0') return text;
  }
  return mtf::json_reader::in_quotes(text);
}

/// An integer flag in [lo, hi] (decimal, optional sign, nothing else).
std::int64_t int_flag(const po::variables_map& vm, const std::string& cmd, const std::string& flag,
                      std::int64_t lo, std::int64_t hi) {
  const std::string text = vm[flag].as<std::string>();
  const std::string what = mtf::json_reader::int_range(static_cast<double>(lo), static_cast<double>(hi)).describe();
  std::int64_t v = 0;
  const char* first = text.data() + (text.size() > 1 && text[0] == '+' ? 1 : 0);
  const auto [ptr, ec] = std::from_chars(first, text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range) bad_flag(cmd, flag, what, text);
  if (ec != std::errc{} || ptr != text.data() + text.size()) bad_flag(cmd, flag, what, shown_flag(text));
  if (v < lo || v > hi) bad_flag(cmd, flag, what, text);
  return v;
}

/// A number flag in [lo, hi] (what strtod reads, nothing after it; finite).
double number_flag(const po::variables_map& vm, const std::string& cmd, const std::string& flag, double lo,
                   double hi) {
  const std::string text = vm[flag].as<std::string>();
  const std::string what = mtf::json_reader::closed(lo, hi).describe();
  char* end = nullptr;
  const double v = text.empty() ? 0 : std::strtod(text.c_str(), &end);
  if (text.empty() || !end || *end != '\0' || !std::isfinite(v)) bad_flag(cmd, flag, what, shown_flag(text));
  if (!(v >= lo && v <= hi)) bad_flag(cmd, flag, what, text);
  return v;
}

/// --seed: any 64-bit unsigned integer, as "seed" in a scenario.
std::uint64_t seed_flag(const po::variables_map& vm, const std::string& cmd) {
  const std::string text = vm["seed"].as<std::string>();
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr != text.data() + text.size())
    bad_flag(cmd, "seed", "an integer in [0, 18446744073709551615]", shown_flag(text));
  return v;
}

/// --threads: 1 to 256 (results never depend on it).
int threads_flag(const po::variables_map& vm, const std::string& cmd) {
  return static_cast<int>(int_flag(vm, cmd, "threads", 1, 256));
}

// --- Files. Inputs: a directory or an empty file is named as such (the
// libraries check scenarios and run databases; the baseline is checked here).
// Outputs, for every command and flag alike: a path that is a directory is
// refused, and missing parent folders are created.

void check_input_file(const fs::path& path, const std::string& what) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw std::runtime_error(path.string() + ": is a directory, not " + what + " (check the path)");
  if (fs::is_regular_file(path, ec) && fs::file_size(path, ec) == 0 && !ec)
    throw std::runtime_error(path.string() + ": the file is empty, not " + what + " (check the path)");
}

fs::path output_file(const fs::path& path, const std::string& cmd, const std::string& flag) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    bad_flag(cmd, flag, "a file path (missing folders are created)", path.string() + ", a directory");
  if (path.has_parent_path()) {
    fs::create_directories(path.parent_path(), ec);
    if (ec)
      throw std::runtime_error(path.parent_path().string() + ": cannot create the output folder (" + ec.message() +
                               "): create it or choose another path");
  }
  return path;
}

/// Refuses an output path that names one of the command's inputs (the same
/// file, whatever the spelling): --out never replaces what the command reads.
void refuse_input_as_output(const fs::path& out, const fs::path& input, const std::string& cmd,
                            const std::string& flag, const std::string& what) {
  std::error_code ec;
  if (fs::exists(out, ec) && fs::exists(input, ec) && fs::equivalent(out, input, ec))
    bad_flag(cmd, flag, "a path other than the " + what + " it reads", out.string() + ", the " + what + " itself");
}

/// A test hook for the resume tests: with MTFSIM_TEST_KILL_ON=TEXT in the
/// environment, the process kills itself (SIGKILL, as `kill -9` would) as soon
/// as an experiment logs a line containing TEXT.
void kill_on_log_line(const std::string& line) {
  static const char* text = std::getenv("MTFSIM_TEST_KILL_ON");
  if (text && *text && line.find(text) != std::string::npos) ::kill(::getpid(), SIGKILL);
}

/// The flags --out-of-core DIR and --chunk-rows N (train, run): where the
/// column files go (under mpirun, DIR.rank<r> for rank r), empty without the
/// flag; chunk_rows gets --chunk-rows. `resume`: --chunk-rows applies without
/// --out-of-core too (a resumed run under mpirun sends its rows in chunks).
fs::path out_of_core_flag(const po::variables_map& vm, const std::string& cmd, std::size_t& chunk_rows,
                          bool resume = false) {
  if (!vm.count("out-of-core")) {
    if (!vm["chunk-rows"].defaulted() && !resume)
      throw po::error(cmd + ": --chunk-rows applies to --out-of-core" + (cmd == "run" ? " and --resume" : ""));
    if (!vm["chunk-rows"].defaulted()) chunk_rows = static_cast<std::size_t>(int_flag(vm, cmd, "chunk-rows", 1, 1000000000));
    return {};
  }
  fs::path dir = fs::path(vm["out-of-core"].as<std::string>()).lexically_normal();
  if (!dir.empty() && !dir.has_filename()) dir = dir.parent_path();  // "cols/" is "cols"
  if (dir.empty() || dir.filename() == "." || dir.filename() == "..")
    bad_flag(cmd, "out-of-core", "a new directory for the column files", shown_flag(vm["out-of-core"].as<std::string>()));
  // Under mpirun every rank writes its own files, beside DIR; that is the directory checked.
  if (g_cluster->size() > 1) dir += ".rank" + std::to_string(g_cluster->rank());
  std::error_code ec;
  if (fs::is_symlink(dir, ec) || (fs::exists(dir, ec) && !(fs::is_directory(dir, ec) && fs::is_empty(dir, ec))))
    bad_flag(cmd, "out-of-core", "a new (or empty) directory for the column files, removed afterwards",
             dir.string() + ", which exists and is not an empty directory");
  chunk_rows = static_cast<std::size_t>(int_flag(vm, cmd, "chunk-rows", 1, 1000000000));
  return dir;
}

/// Runs a scenario's experiment protocol, then prints its report.
void run_experiment_cmd(const mtf::Scenario& sc, const fs::path& path, const fs::path& out, int threads, bool quiet,
                        bool resume, bool force, double checkpoint_seconds, const fs::path& out_of_core,
                        std::size_t chunk_rows, bool data_parallel) {
  const mtf::experiments::ExperimentSpec spec = mtf::experiments::parse_experiment(sc, path.string());
  mtf::experiments::ExperimentOptions eo;
  eo.out_of_core = out_of_core;
  eo.chunk_rows = chunk_rows;
  eo.threads = threads;
  eo.resume = resume;
  eo.force = force;
  eo.checkpoint_seconds = checkpoint_seconds;
  eo.cluster = g_cluster;
  eo.data_parallel = data_parallel;
  const bool root = g_cluster->root();
  const auto t0 = std::chrono::steady_clock::now();
  eo.log = [t0, quiet, root](const std::string& line) {
    if (!quiet && root) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "[%7.1f s] %s\n", s, line.c_str());
    }
    kill_on_log_line(line);
  };
  if (!quiet && root) {
    std::cerr << "mtfsim: experiment " << sc.name << ": " << sc.population.size << " users exploring for " << sc.days
              << " days in " << sc.groups.size() << " groups, " << threads << " threads";
    if (g_cluster->size() > 1) std::cerr << " on each of " << g_cluster->size() << " MPI ranks";
    if (g_cluster->size() > 1 && data_parallel)
      std::cerr << ", each holding its users' rows (training and offline evaluation data-parallel)";
    std::cerr << "\n";
  }
  mtf::experiments::run_experiment(sc, spec, out, eo);
  if (!root) return;  // rank 0 wrote the run database and reports it
  std::cout << mtf::experiments::report_markdown(mtf::read_run(out, /*with_transitions=*/false, /*with_rows=*/false), spec)
            << "\nrun database: " << out.string() << "\n";
}

int cmd_run(const std::vector<std::string>& args) {
  po::options_description opts("mtfsim run SCENARIO.json [options]");
  opts.add_options()("help,h", "show this help")
      ("out,o", po::value<std::string>(), "run database to write (default results/<scenario>.sqlite)")
      ("seed", po::value<std::string>(), "override the scenario's master seed, 0 .. 2^64-1")
      ("threads,t", po::value<std::string>()->default_value("2"), "simulation threads, 1 .. 256 (results do not depend on it)")
      ("quiet,q", "no progress bar")
      ("no-record", "write no database (summary only)")
      ("resume", "continue the experiment killed while writing this --out (its .partial file) from its last completed stage")
      ("force", "replace --out even when it is not a run database; discard an unfinished .partial file")
      ("checkpoint-every", po::value<std::string>()->default_value("300"),
       "experiments: seconds of agent training between checkpoints, 0 .. 86400 (0: after every step)")
      ("out-of-core", po::value<std::string>(), "DIR: experiments: the recorded transitions go to column files in this new directory, memory-mapped for training and evaluation instead of held (same results); DIR is removed afterwards")
      ("chunk-rows", po::value<std::string>()->default_value("100000"), "with --out-of-core or --resume: transitions read back per chunk when resuming (under mpirun: sent to the other ranks per chunk), 1 .. 10^9")
      ("data-parallel", "experiments under mpirun: each rank holds only its users' recorded rows (memory per rank falls with ranks), and training and the offline evaluation run data-parallel over the ranks (deterministic for a rank count, but not one process's bits; the simulated stages are unchanged)");
  const po::variables_map vm = parse_command(args, opts, "scenario", "scenario file");
  if (vm.count("help")) {
    std::cout << opts << "\nSimulates the scenario's groups for its days, prints the summary table\n"
                         "and writes every transition and online metric to an SQLite database.\n"
                         "A scenario with an \"experiment\" block runs its whole protocol instead\n"
                         "(exploration, training, online learners, offline evaluation, A/B test;\n"
                         "docs/experiments.md) and prints the report (see also: mtfsim report).\n"
                         "The database is written to FILE.sqlite.partial and renamed onto FILE.sqlite\n"
                         "when the run finishes, so an earlier FILE.sqlite survives a failed or killed\n"
                         "run; a killed experiment continues with --resume.\n";
    return 0;
  }
  if (!vm.count("scenario")) throw po::error("run: missing SCENARIO.json (try: mtfsim run scenarios/quickstart.json)");
  const fs::path path = vm["scenario"].as<std::string>();
  const int threads = threads_flag(vm, "run");
  const std::optional<std::uint64_t> seed =
      vm.count("seed") ? std::optional<std::uint64_t>(seed_flag(vm, "run")) : std::nullopt;
  mtf::Scenario sc = mtf::load_scenario(path);
  if (seed) sc.seed = *seed;
  const bool quiet = vm.count("quiet") > 0;

  const bool resume = vm.count("resume") > 0, force = vm.count("force") > 0;
  std::size_t chunk_rows = mtf::experiments::ExperimentOptions{}.chunk_rows;
  const fs::path out_of_core = out_of_core_flag(vm, "run", chunk_rows, resume);
  const bool data_parallel = vm.count("data-parallel") > 0;
  if (data_parallel && sc.experiment_json.empty())
    throw po::error("run: --data-parallel: a plain simulation trains no agents; it applies to experiments (to train "
                    "one agent data-parallel: mpirun -np N mtfsim train RUN.sqlite ...)");
  if (!out_of_core.empty() && sc.experiment_json.empty())
    throw po::error("run: --out-of-core: a plain simulation holds no transitions in memory (the run database "
                    "receives them as they are recorded); it applies to experiments");
  if (!sc.experiment_json.empty()) {
    if (vm.count("no-record")) throw po::error("run: --no-record: an experiment always writes its run database");
    const fs::path out =
        output_file(vm.count("out") ? fs::path(vm["out"].as<std::string>()) : default_out(sc, path), "run", "out");
    refuse_input_as_output(out, path, "run", "out", "scenario file");
    run_experiment_cmd(sc, path, out, threads, quiet, resume, force,
                       static_cast<double>(int_flag(vm, "run", "checkpoint-every", 0, 86400)), out_of_core,
                       chunk_rows, data_parallel);
    return 0;
  }
  if (resume)
    throw po::error("run: --resume: only an experiment (a scenario with an \"experiment\" block) resumes; "
                    "run a plain simulation again without --resume");
  const bool root = g_cluster->root();
  mtf::experiments::SimulationOptions so;
  so.threads = threads;
  so.replace_any_file = force;
  so.cluster = g_cluster;
  if (!vm.count("no-record")) {
    so.out = output_file(vm.count("out") ? fs::path(vm["out"].as<std::string>()) : default_out(sc, path), "run", "out");
    refuse_input_as_output(so.out, path, "run", "out", "scenario file");
  }
  if (!quiet && root) {
    std::cerr << "mtfsim: " << sc.name << ": " << sc.population.size << " users, " << sc.days
              << " days, " << sc.groups.size() << " groups, " << threads << " threads";
    if (g_cluster->size() > 1) std::cerr << " on each of " << g_cluster->size() << " MPI ranks";
    std::cerr << "\n";
  }
  mtf::experiments::SimulationResult sr;
  {
    ProgressBar bar(!quiet && root);
    so.on_progress = [&](const mtf::Progress& p) { bar.update(p); };
    sr = mtf::experiments::run_simulation(sc, so);
  }
  if (!root) return 0;  // rank 0 reports, and wrote the database
  const mtf::RunResult& res = sr.run;
  std::cout << "\n" << sc.name << ": " << sc.population.size << " users, " << sc.days << " days, "
            << res.requests << " requests in " << res.wall_seconds << " s\n\n"
            << mtf::format_summary_table(res.groups);
  if (sr.has_lifts) {
    std::vector<std::string> names;
    for (const auto& g : sc.groups) names.push_back(g.name);
    std::cout << "\n" << mtf::format_lift_table(sr.lifts, names, /*control=*/0);
  } else if (sc.groups.size() > 1) {
    std::cout << "\nno lifts: per-user totals cover at most " << mtf::UserTotals::kMaxDays
              << " days, this run has " << sc.days << "\n";
  }
  if (!so.out.empty()) std::cout << "\nrun database: " << so.out.string() << "\n";
  return 0;
}

fs::path find_scenario(const std::string& given) {
  if (fs::exists(given)) return given;
#ifdef MTF_SOURCE_DIR
  const fs::path alt = fs::path(MTF_SOURCE_DIR) / given;
  if (fs::exists(alt)) return alt;
#endif
  return given;
}

/// The policy of bench sim --agent: an agent of type `name` trained for `steps`
/// steps on a short exploration of `world` (2,000 users, one day, one group
/// exploring uniformly within 0.15 of the baseline action). Fixed seeds, so the
/// benchmarked policy is the same from run to run.
mtf::PolicyPtr bench_agent(const mtf::Scenario& world, const std::string& name, int steps) {
  mtf::Scenario sc = world;
  sc.population.size = 2000;
  sc.days = 1;
  sc.record.transitions = true;
  sc.record.user_days = false;
  mtf::GroupSpec g;
  g.name = "explore";
  g.policy.kind = mtf::PolicyKind::kBoundedUniform;
  g.policy.bound = {0.15};
  g.policy.json = R"({"type":"bounded_uniform","bound":0.15})";
  sc.groups = {g};
  mtf::Simulator sim(sc);
  mtf::TransitionColumns columns;
  columns.state_dim = mtf::kStateDim;
  columns.action_dim = sc.action_dim();
  mtf::RunOptions ro;
  ro.threads = 1;
  ro.collect = true;
  ro.on_batch = [&columns](const mtf::RecordBatch& b) { columns.append(b.transition_columns); };
  const auto t0 = std::chrono::steady_clock::now();
  sim.run(ro, nullptr);
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<std::size_t> all(columns.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  const std::size_t recorded = columns.size();
  const mtf::agents::Dataset data(std::move(columns), all);
  std::unique_ptr<mtf::agents::Agent> agent =
      mtf::agents::make_agent(name, nlohmann::json::object(), mtf::kStateDim, sc.action_dim(), sc.seed);
  agent->train(data, steps);
  const auto t2 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "bench sim: agent %s trained %d steps on %zu transitions (explore %.1f s, train %.1f s)\n",
               name.c_str(), steps, recorded, std::chrono::duration<double>(t1 - t0).count(),
               std::chrono::duration<double>(t2 - t1).count());
  return mtf::PolicyPtr(std::move(agent));
}

int cmd_bench_sim(const std::vector<std::string>& args) {
  po::options_description opts("mtfsim bench sim [options]");
  opts.add_options()("help,h", "show this help")
      ("threads,t", po::value<std::string>(), "threads, 1 .. 256 (default: run 1 and 2)")
      ("record", "record every transition to a database (default: off)")
      ("out", po::value<std::string>()->default_value("/tmp/mtfsim-bench.sqlite"), "database for --record")
      ("scenario", po::value<std::string>()->default_value("scenarios/quickstart.json"), "scenario to take the world from")
      ("users", po::value<std::string>()->default_value("50000"), "population size, 1 .. 10^9")
      ("days", po::value<std::string>()->default_value("2"), "days to simulate, 1 .. 3650")
      ("agent", po::value<std::string>(), "policy: this agent, trained on a short exploration (default: the baseline)")
      ("train-steps", po::value<std::string>()->default_value("200"), "training steps of --agent, 0 .. 10^8");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << opts << "\nSimulates the scenario's world with one group under the production\n"
                         "baseline policy and reports simulated requests per second. The last\n"
                         "line is JSON. With --agent the group's policy is that agent instead,\n"
                         "trained first (untimed) on a short bounded-uniform exploration.\n";
    return 0;
  }
  const std::string cmd = "bench sim";
  const std::int64_t users = int_flag(vm, cmd, "users", 1, 1000000000);  // as population.size
  const int days = static_cast<int>(int_flag(vm, cmd, "days", 1, 3650));  // as "days"
  const int steps = static_cast<int>(int_flag(vm, cmd, "train-steps", 0, 100000000));
  std::vector<int> thread_counts = {1, 2};
  if (vm.count("threads")) thread_counts = {threads_flag(vm, cmd)};
  const bool record = vm.count("record") > 0;
  const fs::path out = record ? output_file(vm["out"].as<std::string>(), cmd, "out") : fs::path();
  mtf::Scenario base = mtf::load_scenario(find_scenario(vm["scenario"].as<std::string>()));
  base.population.size = users;
  base.days = days;
  mtf::GroupSpec g;
  g.name = "baseline";
  g.policy.kind = mtf::PolicyKind::kBaseline;
  g.policy.json = R"({"type":"baseline"})";
  base.groups = {g};
  std::vector<mtf::PolicyPtr> policies;
  std::string agent;
  if (vm.count("agent")) {
    agent = vm["agent"].as<std::string>();
    policies = {bench_agent(base, agent, steps)};
    base.groups[0].name = agent;
  }
  const mtf::Cluster& cl = *g_cluster;
  const bool root = cl.root();
  std::ostringstream json;
  json << "{\"bench\":\"sim\",";
  if (!agent.empty()) json << "\"agent\":\"" << agent << "\",";
  json << "\"record\":" << (record ? "true" : "false") << ",\"candidates\":"
       << base.retrieval.candidates << ",\"tasks\":" << mtf::kNumTasks << ",\"shown\":" << base.retrieval.shown
       << ",\"users\":" << base.population.size << ",\"days\":" << base.days << ",\"ranks\":" << cl.size()
       << ",\"runs\":[";
  if (root) std::printf("%8s %12s %10s %14s %16s\n", "threads", "requests", "seconds", "requests/s", "writer CPU (s)");
  for (std::size_t i = 0; i < thread_counts.size(); ++i) {
    const int t = thread_counts[i];
    mtf::Simulator sim(base, policies, 0, mtf::UserSharding{&cl});  // each rank holds its users
    std::unique_ptr<mtf::Recorder> rec;
    mtf::RecorderOptions ropt;
    ropt.index_transitions = base.record.index_transitions;
    if (record && root) rec = std::make_unique<mtf::Recorder>(out, sim.run_info(mtf::code_version(), t), ropt);
    mtf::RunOptions ro;
    ro.threads = t;
    ro.cluster = &cl;
    const auto t0 = std::chrono::steady_clock::now();
    mtf::RunResult res = sim.run(ro, rec.get());
    const auto t_run = std::chrono::steady_clock::now();
    if (rec) rec->finish({}, res.wall_seconds);
    const double finish_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_run).count();
    // Timed to the end of finish(): a recorded run is done when its database is.
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double writer_cpu = rec ? rec->writer_cpu_seconds() : 0.0;
    // Every rank's peak resident memory so far (VmHWM, MB).
    const std::vector<std::string> peaks = cl.all_gather(std::to_string(peak_resident_mb()));
    if (!root) continue;
    std::printf("%8d %12lld %10.3f %14.0f %16.3f\n", t, static_cast<long long>(res.requests), secs,
                res.requests / secs, writer_cpu);
    json << (i ? "," : "") << "{\"threads\":" << t << ",\"requests\":" << res.requests
         << ",\"seconds\":" << secs << ",\"requests_per_s\":" << res.requests / secs
         << ",\"writer_cpu_s\":" << writer_cpu << ",\"finish_s\":" << finish_s << ",\"peak_mb_per_rank\":[";
    for (std::size_t r = 0; r < peaks.size(); ++r) json << (r ? "," : "") << peaks[r];
    json << "]}";
  }
  json << "]}";
  if (root) std::cout << json.str() << std::endl;
  return 0;
}

int cmd_report(const std::vector<std::string>& args) {
  po::options_description opts("mtfsim report RUN.sqlite [options]");
  opts.add_options()("help,h", "show this help")("out,o", po::value<std::string>(), "write the markdown here (default: stdout)")
      ("html", po::value<std::string>(), "write the charts here as one self-contained HTML file (instead of printing "
                                         "the markdown; with --out, both)")
      ("allow-partial", "report a run that did not finish (killed or failed) as far as it got");
  const po::variables_map vm = parse_command(args, opts, "db", "run database");
  if (vm.count("help")) {
    std::cout << opts << "\nPrints the paper-style tables of an experiment's run database (markdown),\n"
                         "with the paper's published numbers beside the testbed's. With --html, writes\n"
                         "its charts instead (learning curves, A/B forest plot, offline against online,\n"
                         "action distributions, daily active users, exploration cost) as one HTML file\n"
                         "that needs no network: docs/experiments.md, \"The HTML report\".\n";
    return 0;
  }
  if (!vm.count("db")) throw po::error("report: missing RUN.sqlite (written by mtfsim run on an experiment scenario)");
  const fs::path db = vm["db"].as<std::string>();
  const fs::path out = vm.count("out") ? output_file(vm["out"].as<std::string>(), "report", "out") : fs::path();
  const fs::path html = vm.count("html") ? output_file(vm["html"].as<std::string>(), "report", "html") : fs::path();
  if (!out.empty()) refuse_input_as_output(out, db, "report", "out", "run database");
  if (!html.empty()) refuse_input_as_output(html, db, "report", "html", "run database");
  if (!out.empty() && !html.empty() && out.lexically_normal() == html.lexically_normal())
    bad_flag("report", "html", "a path other than --out's", html.string() + ", the markdown's file too");
  const bool allow_partial = vm.count("allow-partial") > 0;
  if (!html.empty()) mtf::write_file_atomically(html, mtf::experiments::report_html(db, allow_partial));
  if (!html.empty() && out.empty()) return 0;
  const std::string md = mtf::experiments::report_markdown(db, allow_partial);
  if (!out.empty()) {
    mtf::write_file_atomically(out, md);
  } else {
    std::cout << md;
  }
  return 0;
}

int cmd_export(const std::vector<std::string>& args) {
  const std::string cmd = "export";
  po::options_description opts("mtfsim export RUN.sqlite --format hdf5|csv [options]");
  opts.add_options()("help,h", "show this help")
      ("format,f", po::value<std::string>(), "hdf5 (D4RL's and d3rlpy's keys) or csv (one row per transition)")
      ("groups,g", po::value<std::string>(), "export only these groups: names, comma-separated (default: all)")
      ("out,o", po::value<std::string>(), "file to write (default: RUN with the extension .h5 or .csv; csv: - for stdout)")
      ("next-observations", "also write each transition's next observation")
      ("allow-partial", "export a run that did not finish (killed or failed) as far as it got");
  const po::variables_map vm = parse_command(args, opts, "db", "run database");
  if (vm.count("help")) {
    std::cout << opts << "\nWrites the run's transitions (one per request; an episode is a session) as\n"
                         "an offline-RL dataset: HDF5 with the keys of D4RL and d3rlpy's MDPDataset\n"
                         "(observations, actions, rewards, terminals, timeouts, ...) plus the user,\n"
                         "session, step, group, baseline action, exploration bounds and log density,\n"
                         "or CSV with the same columns. Layout and loading code: docs/export.md.\n";
    return 0;
  }
  if (!vm.count("db")) throw po::error("export: missing RUN.sqlite (a run database written by mtfsim run)");
  if (!vm.count("format")) throw po::error("export: missing --format (hdf5 or csv)");
  const std::string format_text = vm["format"].as<std::string>();
  if (format_text != "hdf5" && format_text != "csv") bad_flag(cmd, "format", "hdf5 or csv", shown_flag(format_text));
  const mtf::ExportFormat format = format_text == "hdf5" ? mtf::ExportFormat::kHdf5 : mtf::ExportFormat::kCsv;
  mtf::ExportOptions eo;
  eo.next_observations = vm.count("next-observations") > 0;
  eo.allow_partial = vm.count("allow-partial") > 0;
  eo.exported_by = mtf::code_version();
  if (vm.count("groups")) {
    const std::string list = vm["groups"].as<std::string>();
    std::stringstream items(list);
    std::string name;
    while (std::getline(items, name, ',')) eo.groups.push_back(name);
    if (list.empty() || list.back() == ',' ||
        std::any_of(eo.groups.begin(), eo.groups.end(), [](const std::string& g) { return g.empty(); }))
      bad_flag(cmd, "groups", "group names separated by commas", mtf::json_reader::in_quotes(list));
  }
  const fs::path db = vm["db"].as<std::string>();
  const bool to_stdout = vm.count("out") && vm["out"].as<std::string>() == "-";
  if (to_stdout && format == mtf::ExportFormat::kHdf5)
    bad_flag(cmd, "out", "a file path (only csv goes to stdout)", "-");
  fs::path out;
  if (!to_stdout) {
    // Default: beside the run database (an unfinished FILE.sqlite.partial exports to FILE.h5).
    fs::path stem = db;
    if (stem.extension() == ".partial") stem.replace_extension();
    out = output_file(vm.count("out") ? fs::path(vm["out"].as<std::string>())
                                      : stem.replace_extension(format == mtf::ExportFormat::kHdf5 ? ".h5" : ".csv"),
                      cmd, "out");
    refuse_input_as_output(out, db, cmd, "out", "run database");
    if (mtf::is_run_database(out))
      bad_flag(cmd, "out", "a path that is not a run database (export never replaces one)",
               out.string() + ", a run database");
  }
  mtf::ExportSummary done;
  try {
    done = to_stdout ? mtf::export_csv(db, std::cout, eo) : mtf::export_run(db, out, format, eo);
  } catch (const mtf::UnknownGroupError& e) {
    std::string names;
    for (const std::string& g : e.available()) names += (names.empty() ? "" : ", ") + g;
    bad_flag(cmd, "groups", "names of the run's groups (" + names + ")", mtf::json_reader::in_quotes(e.name()));
  }
  std::string groups;
  for (const std::string& g : done.groups) groups += (groups.empty() ? "" : ", ") + g;
  (to_stdout ? std::cerr : std::cout)
      << "export: " << done.transitions << " transitions in " << done.sessions << " sessions (" << done.terminals
      << " end with a terminal, " << done.timeouts << " with a timeout), groups " << groups << " -> "
      << (to_stdout ? std::string("stdout") : out.string()) << "\n";
  return 0;
}

int cmd_regress(const std::vector<std::string>& args) {
  po::options_description opts("mtfsim regress SCENARIO.json --baseline FILE.json [options]");
  opts.add_options()("help,h", "show this help")
      ("baseline,b", po::value<std::string>(), "band file to check against (or to write with --update)")
      ("update", "rewrite the band file from this run (on purpose: after an intended change)")
      ("out,o", po::value<std::string>(), "run database (default: a temporary file, removed)")
      ("threads,t", po::value<std::string>()->default_value("2"), "threads, 1 .. 256 (results do not depend on it)")
      ("quiet,q", "no progress lines");
  const po::variables_map vm = parse_command(args, opts, "scenario", "scenario file");
  if (vm.count("help")) {
    std::cout << opts << "\nRuns an experiment scenario and compares every agent's offline estimates\n"
                         "and online lifts with the band recorded in the baseline file. Exit 0: all\n"
                         "inside; exit 3: something moved (a table of what moved is printed).\n";
    return 0;
  }
  if (!vm.count("scenario")) throw po::error("regress: missing SCENARIO.json");
  if (!vm.count("baseline")) throw po::error("regress: missing --baseline FILE.json");
  const fs::path path = vm["scenario"].as<std::string>();
  const int threads = threads_flag(vm, "regress");
  const fs::path baseline = vm.count("update") ? output_file(vm["baseline"].as<std::string>(), "regress", "baseline")
                                               : fs::path(vm["baseline"].as<std::string>());
  const fs::path out = vm.count("out") ? output_file(vm["out"].as<std::string>(), "regress", "out")
                                       : fs::temp_directory_path() / ("mtfsim-regress-" + std::to_string(::getpid()) + ".sqlite");
  refuse_input_as_output(out, path, "regress", "out", "scenario file");
  refuse_input_as_output(baseline, path, "regress", "baseline", "scenario file");
  const mtf::Scenario sc = mtf::load_scenario(path);
  if (sc.experiment_json.empty()) throw po::error("regress: " + path.string() + " has no experiment block");
  if (!vm.count("update")) {
    if (!fs::exists(baseline))
      throw std::runtime_error(baseline.string() + ": no such baseline file; create it with --update");
    check_input_file(baseline, "a baseline file (written by mtfsim regress --update)");
  }
  const mtf::experiments::ExperimentSpec spec = mtf::experiments::parse_experiment(sc, path.string());
  mtf::experiments::ExperimentOptions eo;
  eo.threads = threads;
  if (!vm.count("quiet")) eo.log = [](const std::string& line) { std::fprintf(stderr, "  %s\n", line.c_str()); };
  mtf::experiments::run_experiment(sc, spec, out, eo);
  const mtf::RunContents run = mtf::read_run(out, false, false);
  if (!vm.count("out")) fs::remove(out);
  if (vm.count("update")) {
    mtf::experiments::write_baseline(baseline, run);
    std::cout << "regress: wrote " << mtf::experiments::tracked_figures(run).size() << " figures to " << baseline.string() << "\n";
    return 0;
  }
  const auto checks = mtf::experiments::check_baseline(baseline, run);
  const auto moved = std::count_if(checks.begin(), checks.end(), [](const auto& c) { return !c.inside; });
  if (moved == 0) {
    std::cout << "regress: all " << checks.size() << " figures inside their bands (" << baseline.string() << ")\n";
    return 0;
  }
  std::cout << "regress: " << moved << " of " << checks.size() << " figures left their bands (" << baseline.string()
            << "):\n\n" << mtf::experiments::format_checks(checks, true)
            << "\nIf the change is intended, rewrite the baseline: mtfsim regress " << path.string()
            << " --baseline " << baseline.string() << " --update\n";
  return 3;
}

/// A --policy of evaluate: baseline, constant:a1,...,ad (in [-1, 1]) or an agent file.
std::pair<std::string, mtf::PolicyPtr> policy_flag(const std::string& spec, const mtf::Scenario& sc) {
  const std::string cmd = "evaluate";
  const int d = sc.action_dim();
  const std::string expected = "baseline, constant:a1,...,a" + std::to_string(d) + " (" + std::to_string(d) +
                               " numbers in [-1, 1]), an agent file (*.mtfa), an MLP policy file (*.json) or RUN.sqlite:NAME";
  if (spec == "baseline") return {spec, std::make_shared<mtf::BaselinePolicy>(sc.fusion)};
  const std::string prefix = "constant:";
  if (spec.rfind(prefix, 0) == 0) {
    std::vector<float> action;
    std::stringstream list(spec.substr(prefix.size()));
    std::string item;
    while (std::getline(list, item, ',')) {
      double v = 0;
      const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
      if (item.empty() || ec != std::errc{} || ptr != item.data() + item.size() || !(v >= -1.0 && v <= 1.0))
        bad_flag(cmd, "policy", expected, mtf::json_reader::in_quotes(spec));
      action.push_back(static_cast<float>(v));
    }
    if (static_cast<int>(action.size()) != d || spec.back() == ',')
      bad_flag(cmd, "policy", expected, mtf::json_reader::in_quotes(spec) + ", " + std::to_string(action.size()) + (action.size() == 1 ? " number" : " numbers"));
    return {spec, std::make_shared<mtf::ConstantPolicy>(std::move(action))};
  }
  // An agent file, an MLP policy file, or RUN.sqlite:NAME (an agent a run kept).
  const fs::path path = spec;
  std::error_code ec;
  const auto db_ref = mtf::experiments::split_agent_ref(spec);
  if (!db_ref) {
    if (path.extension() != ".mtfa" && path.extension() != ".json" && !fs::is_regular_file(path, ec))
      bad_flag(cmd, "policy", expected, mtf::json_reader::in_quotes(spec));
    if (!fs::exists(path, ec)) bad_flag(cmd, "policy", expected, mtf::json_reader::in_quotes(spec) + ", no such file");
    check_input_file(path, "an agent or policy file");
  }
  return {db_ref ? db_ref->second : path.stem().string(), mtf::experiments::load_policy_ref(spec, d).policy};
}

int cmd_evaluate(const std::vector<std::string>& args) {
  po::options_description opts("mtfsim evaluate SCENARIO.json --policy SPEC [--policy SPEC ...] [options]");
  opts.add_options()("help,h", "show this help")
      ("policy,p", po::value<std::vector<std::string>>()->composing(),
       "a policy: baseline, constant:a1,...,ad (in [-1, 1]) or an agent file (*.mtfa); repeat for more")
      ("users", po::value<std::string>()->default_value("150000"), "evaluation users, 2 .. 10^9")
      ("days", po::value<std::string>()->default_value("3"), "days to simulate, 1 .. 60")
      ("gamma", po::value<std::string>()->default_value("0.95"),
       "discount of the in-session and the chained (cross-session) returns, 0 .. 1")
      ("seed", po::value<std::string>(), "the users' seed, 0 .. 2^64-1 (default: the scenario's seed)")
      ("threads,t", po::value<std::string>()->default_value("2"), "threads, 1 .. 256 (results do not depend on it)")
      ("json", po::value<std::string>(), "also write the tables as JSON to this file");
  const po::variables_map vm = parse_command(args, opts, "scenario", "scenario file");
  if (vm.count("help")) {
    std::cout << opts << "\nThe oracle: runs each policy on the same simulated users of the scenario's\n"
                         "world (common random numbers: every user keeps its own streams, so two\n"
                         "policies differ only through their actions) and prints each policy's\n"
                         "values per user-day with 95% intervals (and at --gamma the in-session\n"
                         "discounted return per session and the return of each user's requests\n"
                         "chained across sessions and days), and the paired differences of\n"
                         "every policy against the reference: the first policy, the baseline\n"
                         "(added first when no --policy names it).\n";
    return 0;
  }
  const std::string cmd = "evaluate";
  if (!vm.count("scenario")) throw po::error("evaluate: missing SCENARIO.json (try: mtfsim evaluate scenarios/quickstart.json --policy baseline)");
  if (!vm.count("policy")) throw po::error("evaluate: missing --policy (baseline, constant:a1,...,ad, an agent file *.mtfa, an MLP policy file *.json or RUN.sqlite:NAME)");
  mtf::experiments::OracleOptions o;
  o.users = int_flag(vm, cmd, "users", 2, 1000000000);
  o.days = static_cast<int>(int_flag(vm, cmd, "days", 1, 60));
  o.gamma = number_flag(vm, cmd, "gamma", 0, 1);
  o.threads = threads_flag(vm, cmd);
  if (vm.count("seed")) o.user_seed = seed_flag(vm, cmd);
  const fs::path json_out = vm.count("json") ? output_file(vm["json"].as<std::string>(), cmd, "json") : fs::path();
  if (!json_out.empty()) refuse_input_as_output(json_out, vm["scenario"].as<std::string>(), cmd, "json", "scenario file");
  const mtf::Scenario sc = mtf::load_scenario(vm["scenario"].as<std::string>());
  if (o.user_seed == 0) o.user_seed = sc.seed;
  std::vector<std::string> specs = vm["policy"].as<std::vector<std::string>>();
  if (std::find(specs.begin(), specs.end(), "baseline") == specs.end()) specs.insert(specs.begin(), "baseline");
  std::vector<std::pair<std::string, mtf::PolicyPtr>> policies;
  for (const std::string& spec : specs) policies.push_back(policy_flag(spec, sc));
  const auto t0 = std::chrono::steady_clock::now();
  const mtf::experiments::OracleResult r = mtf::experiments::evaluate_policies(sc, policies, o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << mtf::experiments::oracle_markdown(r) << "\n" << policies.size() << " policies x " << o.users
            << " users x " << o.days << " days in " << secs << " s (" << o.threads << " threads)\n";
  if (!json_out.empty()) {
    nlohmann::json j = mtf::experiments::oracle_json(r);
    j["wall_seconds"] = secs;
    j["threads"] = o.threads;
    mtf::write_file_atomically(json_out, j.dump(2) + "\n");
  }
  return 0;
}

/// --set key=value of train: the value as JSON (numbers, true/false, arrays),
/// otherwise as a string.
void set_hyperparameter(nlohmann::json& hp, const std::string& item, const std::string& cmd = "train") {
  const std::size_t eq = item.find('=');
  if (eq == std::string::npos || eq == 0)
    bad_flag(cmd, "set", "key=value (a hyperparameter of the agent, e.g. gamma=0.95)", shown_flag(item));
  const std::string key = item.substr(0, eq), text = item.substr(eq + 1);
  nlohmann::json v = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  hp[key] = v.is_discarded() ? nlohmann::json(text) : v;
}

int cmd_train(const std::vector<std::string>& args) {
  po::options_description opts("mtfsim train RUN.sqlite (--agent TYPE | --from AGENT) --steps N --out FILE.mtfa [options]");
  std::string types;
  for (const std::string& n : mtf::agents::agent_names()) types += (types.empty() ? "" : ", ") + n;
  const std::string agent_help = "a new agent of this type: " + types;
  opts.add_options()("help,h", "show this help")
      ("agent", po::value<std::string>(), agent_help.c_str())
      ("set", po::value<std::vector<std::string>>()->composing(), "key=value: a hyperparameter of the new agent; repeat for more")
      ("from", po::value<std::string>(), "train this agent further instead: an agent file, or RUN.sqlite:NAME")
      ("steps", po::value<std::string>(), "gradient steps, 1 .. 10^8")
      ("groups", po::value<std::string>(), "train on these groups of the run only (comma-separated names)")
      ("formulation", po::value<std::string>()->default_value("session"), "session (the papers' MDP: an episode is a session) or cross_session (a user's sessions chained; docs/experiments.md, \"MDP formulations\")")
      ("discount-seconds", po::value<std::string>(), "discount by elapsed time: gamma^(dt / SECONDS) per transition, dt the simulated time to s'; 1 .. 10^7 (default: one step of gamma per request)")
      ("out,o", po::value<std::string>(), "the agent file to write (*.mtfa)")
      ("curve", po::value<std::string>(), "also write the learning curve here (CSV, every point)")
      ("seed", po::value<std::string>()->default_value("1"), "the new agent's seed, 0 .. 2^64-1")
      ("threads,t", po::value<std::string>()->default_value("2"), "threads, 1 .. 256 (results do not depend on it)")
      ("out-of-core", po::value<std::string>(), "DIR: transitions larger than memory: read them in chunks into column files in this new directory and train on them memory-mapped (same bits); DIR is removed afterwards")
      ("chunk-rows", po::value<std::string>()->default_value("100000"), "with --out-of-core: transitions read (and held) per chunk, 1 .. 10^9; about 420 bytes each")
      ("quiet,q", "no progress bar");
  const po::variables_map vm = parse_command(args, opts, "db", "run database");
  if (vm.count("help")) {
    std::cout << opts << "\nTrains one agent on the transitions of a finished run database (every group,\n"
                         "or --groups), writes it as an agent file, and prints its learning curve at\n"
                         "log-spaced steps: the losses, and on a fixed probe of the data the mean Q of\n"
                         "its own action, the share of its actions outside the logged exploration\n"
                         "bounds and the distance to the logged baseline action. The file runs in\n"
                         "scenarios ({\"type\": \"agent\", \"path\": FILE}) and in mtfsim evaluate.\n";
    return 0;
  }
  const std::string cmd = "train";
  if (!vm.count("db")) throw po::error("train: missing RUN.sqlite (a run database with transitions: mtfsim run writes one)");
  if (vm.count("agent") == vm.count("from"))
    throw po::error("train: give --agent TYPE (a new agent) or --from AGENT (train one further), not both or neither");
  if (vm.count("from") && vm.count("set"))
    throw po::error("train: --set applies to a new agent (--agent); an agent from --from keeps its hyperparameters");
  if (!vm.count("steps")) throw po::error("train: missing --steps N");
  if (!vm.count("out")) throw po::error("train: missing --out FILE.mtfa (where the trained agent goes)");
  const fs::path db = vm["db"].as<std::string>();
  check_input_file(db, "a run database");
  mtf::experiments::OfflineTrainingSpec spec;
  spec.run = db;
  spec.steps = int_flag(vm, cmd, "steps", 1, 100000000);
  spec.seed = seed_flag(vm, cmd);
  const int threads = threads_flag(vm, cmd);
  if (vm.count("agent")) {
    spec.type = vm["agent"].as<std::string>();
    const std::vector<std::string> names = mtf::agents::agent_names();
    if (std::find(names.begin(), names.end(), spec.type) == names.end())
      bad_flag(cmd, "agent", "an agent type: " + types, shown_flag(spec.type));
  }
  if (vm.count("from")) spec.from = vm["from"].as<std::string>();
  if (const std::string f = vm["formulation"].as<std::string>(); f == "cross_session")
    spec.formulation = mtf::agents::Formulation::kCrossSession;
  else if (f != "session")
    bad_flag(cmd, "formulation", "session or cross_session", shown_flag(f));
  if (vm.count("discount-seconds")) spec.discount_seconds = number_flag(vm, cmd, "discount-seconds", 1, 1e7);
  if (vm.count("set"))
    for (const std::string& item : vm["set"].as<std::vector<std::string>>()) set_hyperparameter(spec.hyperparameters, item);
  if (vm.count("groups")) {
    std::stringstream ss(vm["groups"].as<std::string>());
    for (std::string g; std::getline(ss, g, ',');)
      if (!g.empty()) spec.groups.push_back(g);
    if (spec.groups.empty()) bad_flag(cmd, "groups", "comma-separated group names", shown_flag(vm["groups"].as<std::string>()));
  }
  const fs::path out = output_file(vm["out"].as<std::string>(), cmd, "out");
  refuse_input_as_output(out, db, cmd, "out", "run database");
  if (mtf::is_run_database(out))
    bad_flag(cmd, "out", "an agent file path", out.string() + ", a run database");
  const fs::path curve_out = vm.count("curve") ? output_file(vm["curve"].as<std::string>(), cmd, "curve") : fs::path();
  if (!curve_out.empty()) refuse_input_as_output(curve_out, db, cmd, "curve", "run database");
  spec.out_of_core = out_of_core_flag(vm, cmd, spec.chunk_rows);  // under mpirun, each rank's shard beside DIR
  mtf::nn::set_num_threads(threads);
  spec.cluster = g_cluster;  // under mpirun: data-parallel, each rank on its users' transitions
  const bool root = g_cluster->root();
  const bool bar = !vm.count("quiet") && isatty(STDERR_FILENO) && root;
  auto last = std::chrono::steady_clock::now();
  const auto t0 = last;
  spec.progress = [&](const mtf::agents::TrainProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (!bar || (now - last < std::chrono::milliseconds(200) && p.step != p.total_steps)) return;
    last = now;
    const double frac = static_cast<double>(p.step) / static_cast<double>(p.total_steps);
    std::string b(static_cast<std::size_t>(frac * 30), '#');
    b.resize(30, '.');
    const double secs = std::chrono::duration<double>(now - t0).count();
    std::fprintf(stderr, "\r  [%s] step %lld/%lld  %.0f steps/s   ", b.c_str(), static_cast<long long>(p.step),
                 static_cast<long long>(p.total_steps), secs > 0 ? p.step / secs : 0.0);
    if (p.step == p.total_steps) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  };
  mtf::experiments::OfflineTrainingResult r;
  try {
    r = mtf::experiments::train_offline(spec);
  } catch (const std::invalid_argument& e) {
    // A group the run does not have is a bad flag, reported as every bad flag is.
    if (std::string_view(e.what()).starts_with("train: --groups: ")) throw po::error(e.what());
    throw;
  }
  if (!root) return 0;  // every rank holds the same agent; rank 0 writes it
  r.agent->save(out);
  if (!curve_out.empty()) mtf::write_file_atomically(curve_out, mtf::experiments::curve_csv(r.curve));
  if (g_cluster->size() > 1)
    std::cout << "data-parallel over " << g_cluster->size() << " MPI ranks (each on its users' transitions; "
              << "the curve is rank 0's)\n";
  if (!spec.out_of_core.empty())
    std::cout << "out of core: the transitions were read in chunks of " << spec.chunk_rows
              << " into column files in " << spec.out_of_core.string() << " and memory-mapped (files now removed)\n";
  std::cout << r.agent->name() << " trained " << spec.steps << " steps (" << r.agent->steps_trained()
            << " in all) on " << r.transitions << " transitions of " << db.string() << " ("
            << mtf::agents::to_string(spec.formulation) << " formulation, discount "
            << (spec.discount_seconds > 0 ? "by elapsed time, a step every " : "per request");
  if (spec.discount_seconds > 0) std::cout << spec.discount_seconds << " s";
  std::cout << ") in " << r.seconds
            << " s\n\nLearning curve (log-spaced steps" << (curve_out.empty() ? "" : "; every point in " + curve_out.string())
            << "):\n\n" << mtf::experiments::format_curve(r.curve) << "\nagent file: " << out.string() << "\n";
  return 0;
}

/// Reads the states of `act`: rows of kStateDim numbers, comma-separated; a
/// first line that is not numbers is a header and must name the features.
std::vector<float> read_states_csv(const fs::path& path) {
  check_input_file(path, "a CSV file of states");
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot read the states file (check the path)");
  std::vector<float> states;
  std::string line;
  for (std::size_t lineno = 1; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
    if (line.back() == ',') cells.emplace_back();
    const auto where = [&] { return path.string() + ": line " + std::to_string(lineno) + ": "; };
    if (cells.size() != static_cast<std::size_t>(mtf::kStateDim))
      throw std::runtime_error(where() + std::to_string(cells.size()) + " columns, expected " +
                               std::to_string(mtf::kStateDim) + " (one per state feature, core/state_features.h)");
    std::vector<float> row;
    bool numeric = true;
    for (const std::string& c : cells) {
      char* end = nullptr;
      const float v = std::strtof(c.c_str(), &end);
      if (c.empty() || end != c.c_str() + c.size()) {
        numeric = false;
        break;
      }
      row.push_back(v);
    }
    if (!numeric) {
      if (lineno != 1 || !states.empty())
        throw std::runtime_error(where() + "expected " + std::to_string(mtf::kStateDim) + " numbers, got \"" + line + "\"");
      for (std::size_t i = 0; i < cells.size(); ++i)
        if (cells[i] != mtf::kStateFeatures[i].name)
          throw std::runtime_error(where() + "column " + std::to_string(i + 1) + " is \"" + cells[i] +
                                   "\", the simulator's feature " + std::to_string(i + 1) + " is \"" +
                                   std::string(mtf::kStateFeatures[i].name) + "\" (a header must name the features in order)");
      continue;
    }
    states.insert(states.end(), row.begin(), row.end());
  }
  if (states.empty()) throw std::runtime_error(path.string() + ": no states (expected rows of " + std::to_string(mtf::kStateDim) + " numbers)");
  return states;
}

int cmd_act(const std::vector<std::string>& args) {
  po::options_description opts("mtfsim act POLICY --states FILE.csv [options]");
  opts.add_options()("help,h", "show this help")
      ("states", po::value<std::string>(), "the states: CSV rows of 32 numbers (an optional header names the features)")
      ("out,o", po::value<std::string>(), "write the actions here as CSV (default: stdout)")
      ("seed", po::value<std::string>()->default_value("1"), "the streams of stochastic policies (row i draws from its own), 0 .. 2^64-1");
  const po::variables_map vm = parse_command(args, opts, "policy", "policy");
  if (vm.count("help")) {
    std::cout << opts << "\nPrints the actions a policy takes on given states, one CSV row per state:\n"
                         "POLICY is an agent file (*.mtfa), an MLP policy file (docs/policy-format.md)\n"
                         "or RUN.sqlite:NAME. Actions are in [-1, 1]; columns are the action's dimensions.\n";
    return 0;
  }
  const std::string cmd = "act";
  if (!vm.count("policy")) throw po::error("act: missing POLICY (an agent file, an MLP policy file or RUN.sqlite:NAME)");
  if (!vm.count("states")) throw po::error("act: missing --states FILE.csv");
  const std::uint64_t seed = seed_flag(vm, cmd);
  const fs::path out = vm.count("out") ? output_file(vm["out"].as<std::string>(), cmd, "out") : fs::path();
  const std::string ref = vm["policy"].as<std::string>();
  if (!mtf::experiments::split_agent_ref(ref)) check_input_file(ref, "an agent or policy file");
  const mtf::PolicyPtr policy = mtf::experiments::load_policy_ref(ref, -1).policy;
  const std::vector<float> states = read_states_csv(vm["states"].as<std::string>());
  const std::size_t n = states.size() / static_cast<std::size_t>(mtf::kStateDim);
  const int d = policy->action_dim();
  std::vector<float> actions(n * static_cast<std::size_t>(d));
  std::vector<mtf::Rng> streams;
  streams.reserve(n);
  for (std::size_t i = 0; i < n; ++i) streams.emplace_back(seed, mtf::Stream::kPolicy, i);
  std::vector<mtf::Rng*> rngs;
  for (auto& r : streams) rngs.push_back(&r);
  policy->act_batch(states, actions, rngs, {});
  std::ostringstream o;
  for (int j = 0; j < d; ++j) o << (j ? "," : "") << "a" << j;
  o << "\n";
  char buf[32];
  for (std::size_t i = 0; i < n; ++i) {
    for (int j = 0; j < d; ++j) {
      std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(actions[i * static_cast<std::size_t>(d) + static_cast<std::size_t>(j)]));
      o << (j ? "," : "") << buf;
    }
    o << "\n";
  }
  if (out.empty()) std::cout << o.str();
  else mtf::write_file_atomically(out, o.str());
  return 0;
}

int cmd_bench(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "mtfsim bench sim|train [options]   (mtfsim bench sim --help)\n";
    return args.empty() ? 2 : 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "sim") return cmd_bench_sim(rest);
  single_process_only("bench " + args[0]);
  if (args[0] == "train") {
#ifdef MTF_HAVE_TRAIN_BENCH
    po::options_description opts("mtfsim bench train [options]");
    mtf::agents::TrainBenchOptions o;
    const auto text = [](int v) { return po::value<std::string>()->default_value(std::to_string(v)); };
    opts.add_options()("help,h", "show this help")
        ("agent", po::value<std::string>(&o.agent)->default_value(o.agent), "agent to train")
        ("hidden", text(o.hidden), "hidden units per layer (two layers), 1 .. 4096")
        ("critics", text(o.critics), "critics in the ensemble, 1 .. 256")
        ("batch", text(o.batch), "minibatch size, 1 .. 65536")
        ("threads", text(o.threads), "threads, 1 .. 256")
        ("steps", text(o.steps), "timed training steps, 1 .. 10^6")
        ("set", po::value<std::vector<std::string>>()->composing(),
         "key=value: a hyperparameter of the agent (e.g. cql_alpha=0); repeat for more");
    po::variables_map vm;
    po::store(po::command_line_parser(rest).options(opts).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << opts;
      return 0;
    }
    const std::string cmd = "bench train";
    o.hidden = static_cast<int>(int_flag(vm, cmd, "hidden", 1, 4096));
    o.critics = static_cast<int>(int_flag(vm, cmd, "critics", 1, 256));
    o.batch = static_cast<int>(int_flag(vm, cmd, "batch", 1, 65536));
    o.threads = threads_flag(vm, cmd);
    o.steps = static_cast<int>(int_flag(vm, cmd, "steps", 1, 1000000));
    if (vm.count("set"))
      for (const std::string& item : vm["set"].as<std::vector<std::string>>())
        set_hyperparameter(o.hyperparameters, item, cmd);
    return mtf::agents::run_train_bench(o, std::cout);
#else
    throw po::error("bench train: this build has no learning core");
#endif
  }
  throw po::error("bench: unknown benchmark '" + args[0] + "' (expected sim or train)");
}

}  // namespace

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // Blocks of 8 MiB and more (a stage's per-impression arrays, a users' state
  // at a checkpoint, chunks of copied rows) are mapped on their own and go
  // back to the system when freed. glibc otherwise raises that threshold up to
  // 32 MiB as large blocks are freed and serves them from the heap, where
  // freed ones stay resident: a run in a memory limit (out of core) would
  // carry the earlier stages' arrays into the later ones.
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
#endif
#ifdef MTF_MPI
  // Under mpirun: the MPI world (initialised before anything reads argv).
  std::unique_ptr<mtf::MpiCluster> mpi;
  if (mtf::MpiCluster::launched_by_mpirun()) {
    mpi = std::make_unique<mtf::MpiCluster>(argc, argv);
    if (mpi->size() > 1) g_cluster = mpi.get();
  }
#endif
  // A rank that fails alone ends the job: the others would wait for it.
  const auto fail = [&](int code) {
#ifdef MTF_MPI
    if (g_cluster->size() > 1) mpi->abort(code);
#endif
    return code;
  };
  const std::string who =
      g_cluster->size() > 1 ? "mtfsim (MPI rank " + std::to_string(g_cluster->rank()) + ")" : "mtfsim";
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      std::cout << kUsage;
      return args.empty() ? 2 : 0;
    }
    const std::string cmd = args[0];
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (cmd == "run") return cmd_run(rest);
    if (cmd == "bench") return cmd_bench(rest);
    if (cmd == "train") return cmd_train(rest);
    single_process_only(cmd);
    if (cmd == "report") return cmd_report(rest);
    if (cmd == "export") return cmd_export(rest);
    if (cmd == "regress") return cmd_regress(rest);
    if (cmd == "evaluate") return cmd_evaluate(rest);
    if (cmd == "act") return cmd_act(rest);
    std::cerr << "mtfsim: unknown command '" << cmd << "'\n\n" << kUsage;
    return 2;
  } catch (const po::error& e) {
    std::cerr << who << ": " << e.what() << "\n";
    return fail(2);
  } catch (const std::exception& e) {
    std::cerr << who << ": error: " << e.what() << "\n";
    return fail(1);
  }
}
