// Collected (experiments/context.h): out of core, a dataset of at most half
// the recorded rows reads column files of its own, shared by the datasets of
// the same rows while any of them is alive; larger datasets view the columns
// themselves. Either way a dataset equals the in-memory one of the same rows.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <numeric>
#include <vector>

#include "experiments/context.h"

using namespace mtf;
using namespace mtf::experiments;

namespace {

constexpr int kS = 3, kA = 2;
constexpr std::size_t kRows = 100;

/// 100 requests of 10 users, interleaved as a day records them: 5 sessions of
/// 2 steps each per user.
TransitionColumns recorded() {
  TransitionColumns batch;
  batch.state_dim = kS;
  batch.action_dim = kA;
  Rng world(23);
  std::vector<float> s(kS), s2(kS), a(kA), b(kA, 0.0f);
  for (std::size_t r = 0; r < kRows; ++r) {
    TransitionColumns::Row row;
    row.user = static_cast<std::int64_t>(r % 10);
    row.session = static_cast<std::int32_t>(r / 20);
    row.step = static_cast<std::int32_t>((r / 10) % 2);
    row.set_group(static_cast<int>(row.user % 2));
    row.time = 600.0 * static_cast<double>(r);
    row.reward = world.uniform01();
    row.done = row.step == 1;
    for (float& x : s) x = 2.0f * world.uniform01() - 1.0f;
    for (float& x : s2) x = 2.0f * world.uniform01() - 1.0f;
    for (float& x : a) x = 2.0f * world.uniform01() - 1.0f;
    batch.push(row, s, a, s2, b, {}, {});
  }
  return batch;
}

std::vector<std::size_t> rows_where(bool (*keep)(std::size_t)) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < kRows; ++i)
    if (keep(i)) out.push_back(i);
  return out;
}

/// Every transition of `d` in order, gathered into one batch.
agents::Batch everything(const agents::Dataset& d) {
  std::vector<int> all(static_cast<std::size_t>(d.size()));
  std::iota(all.begin(), all.end(), 0);
  agents::Batch b;
  d.gather(all, b);
  return b;
}

void check_same(const agents::Dataset& x, const agents::Dataset& y) {
  REQUIRE(x.size() == y.size());
  const agents::Batch a = everything(x), b = everything(y);
  CHECK(a.state == b.state);
  CHECK(a.action == b.action);
  CHECK(a.reward == b.reward);
  CHECK(a.next_state == b.next_state);
  CHECK(a.done == b.done);
  REQUIRE(a.steps.size() == b.steps.size());
  CHECK(a.steps == b.steps);
}

}  // namespace

TEST_CASE("out of core, datasets of the same rows share one copy; over half the rows, none") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("mtf_collected_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const TransitionColumns batch = recorded();
  Collected memory, disk;
  for (Collected* c : {&memory, &disk}) {
    c->transitions->state_dim = kS;
    c->transitions->action_dim = kA;
  }
  disk.start_out_of_core(dir);
  memory.add(batch);
  disk.add(batch);
  memory.seal(true);
  disk.seal(true);
  REQUIRE(disk.size() == kRows);

  const std::vector<std::size_t> even = rows_where([](std::size_t i) { return i % 2 == 0; });  // 50: half
  const std::vector<std::size_t> odd = rows_where([](std::size_t i) { return i % 2 == 1 && i < 90; });
  const std::vector<std::size_t> most = rows_where([](std::size_t i) { return i >= 30; });  // 70: more than half
  const agents::Dataset::RewardOf doubled = [](const TransitionColumns::Row& r) { return 2.0f * r.reward; };
  DatasetSpec plain, chained;
  chained.cross_session = true;
  chained.discount_seconds = 900;

  {
    const agents::Dataset e1 = disk.dataset(even, {}, plain);
    CHECK(disk.dataset_copies_made() == 1);
    CHECK(e1.row(1) == 1);  // rows of its own copy
    check_same(e1, memory.dataset(even, {}, plain));
    // The same rows again (another reward, formulation and discount): the same copy.
    const agents::Dataset e2 = disk.dataset(even, doubled, chained);
    CHECK(disk.dataset_copies_made() == 1);
    check_same(e2, memory.dataset(even, doubled, chained));
    // ... in the formulation and with the discount asked for, the copy's and the columns' alike.
    CHECK(e1.formulation() == agents::Formulation::kSession);
    CHECK(e1.discount_unit_seconds() == 0);
    CHECK(e2.formulation() == agents::Formulation::kCrossSession);
    CHECK(e2.discount_unit_seconds() == 900);
    // Other rows: a copy of their own.
    const agents::Dataset o = disk.dataset(odd, {}, chained);
    CHECK(disk.dataset_copies_made() == 2);
    check_same(o, memory.dataset(odd, {}, chained));
    // More than half the rows: the columns themselves.
    const agents::Dataset m = disk.dataset(most, doubled, plain);
    CHECK(disk.dataset_copies_made() == 2);
    CHECK(m.row(0) == 30);
    check_same(m, memory.dataset(most, doubled, plain));
    const agents::Dataset mc = disk.dataset(most, {}, chained);
    CHECK(mc.formulation() == agents::Formulation::kCrossSession);
    CHECK(mc.discount_unit_seconds() == 900);
    check_same(mc, memory.dataset(most, {}, chained));
    // One row over half: the columns themselves.
    std::vector<std::size_t> over_half(even);
    over_half.insert(over_half.begin() + 1, 1);
    const agents::Dataset h = disk.dataset(over_half, {}, plain);
    CHECK(disk.dataset_copies_made() == 2);
    CHECK(h.row(3) == 4);  // a copy's would be 3
    // The same count as `even`, other rows: not mistaken for it.
    std::vector<std::size_t> shifted(even);
    for (std::size_t& r : shifted) ++r;
    const agents::Dataset s = disk.dataset(shifted, {}, plain);
    CHECK(disk.dataset_copies_made() == 3);
    check_same(s, memory.dataset(shifted, {}, plain));
    // The copies live in the scratch directory, unlinked once mapped.
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
      CHECK(entry.path().filename().string().rfind("dataset-", 0) != 0);
  }
  // Every dataset of `even` gone: the next one copies the rows anew.
  const agents::Dataset again = disk.dataset(even, {}, plain);
  CHECK(disk.dataset_copies_made() == 4);
  check_same(again, memory.dataset(even, {}, plain));
  CHECK(memory.dataset_copies_made() == 0);  // in memory, datasets are views of the columns
}
