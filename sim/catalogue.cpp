// Catalogue and topic graph construction (see catalogue.h).
#include "sim/catalogue.h"

#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/breadth_first_search.hpp>
#include <boost/random/normal_distribution.hpp>
#include <boost/random/uniform_01.hpp>
#include <cmath>
#include <numeric>
#include <queue>

#include "core/rng.h"

namespace mtf {
namespace {

using Graph = boost::adjacency_list<boost::setS, boost::vecS, boost::undirectedS>;

float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(-x)); }
float logitf(float p) { return std::log(p / (1.0f - p)); }

}  // namespace

TopicGraph::TopicGraph(int topics, int degree, std::uint64_t seed) {
  Graph g(topics);
  const int half = std::max(1, degree / 2);
  for (int t = 0; t < topics; ++t)
    for (int k = 1; k <= half; ++k) {
      const int u = (t + k) % topics;
      if (u != t) boost::add_edge(t, u, g);
    }
  Rng rng(seed, Stream::kTopicGraph);
  for (int s = 0; s < topics / 4; ++s) {
    const int a = static_cast<int>(rng.below(topics));
    const int b = static_cast<int>(rng.below(topics));
    if (a != b) boost::add_edge(a, b, g);  // setS ignores duplicates
  }
  offsets_.assign(topics + 1, 0);
  for (int t = 0; t < topics; ++t) {
    auto [it, end] = boost::adjacent_vertices(t, g);
    std::vector<int> nb(it, end);
    std::sort(nb.begin(), nb.end());
    adj_.insert(adj_.end(), nb.begin(), nb.end());
    offsets_[t + 1] = static_cast<int>(adj_.size());
  }
}

std::vector<int> TopicGraph::distances_from(int t) const {
  Graph g(topics());
  for (int a = 0; a < topics(); ++a)
    for (const int* b = neighbours_begin(a); b != neighbours_end(a); ++b)
      if (a < *b) boost::add_edge(a, *b, g);
  std::vector<int> dist(topics(), 0);
  boost::breadth_first_search(
      g, boost::vertex(t, g),
      boost::visitor(boost::make_bfs_visitor(
          boost::record_distances(dist.data(), boost::on_tree_edge()))));
  return dist;
}

Catalogue::Catalogue(const CatalogueParams& p, std::uint64_t seed)
    : graph(p.topics, p.topic_graph_degree, seed) {
  Rng rng(seed, Stream::kCatalogue);
  boost::random::normal_distribution<float> normal(0.0f, 1.0f);
  const int n = p.items;
  struct Item {
    std::uint16_t topic;
    float duration, quality, clickbait, appeal;
  };
  std::vector<Item> items(n);
  for (auto& it : items) {
    it.topic = static_cast<std::uint16_t>(rng.below(static_cast<std::uint32_t>(p.topics)));
    const float d = static_cast<float>(p.duration_median_s) *
                    std::exp(static_cast<float>(p.duration_sigma) * normal(rng));
    it.duration = std::clamp(d, 5.0f, 300.0f);
    const bool bait = rng.uniform01() < p.clickbait_share;
    it.clickbait = bait ? sigmoidf(1.2f + 0.8f * normal(rng)) : sigmoidf(-2.5f + 0.8f * normal(rng));
    // Clickbait-heavy items are, on average, of lower quality.
    it.quality = sigmoidf(0.3f + 0.9f * normal(rng) - 1.8f * it.clickbait);
    it.appeal = sigmoidf(-0.5f + 1.0f * normal(rng) + 0.8f * (it.quality - 0.5f));
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.topic < b.topic; });
  topic.resize(n);
  duration.resize(n);
  quality.resize(n);
  clickbait.resize(n);
  appeal.resize(n);
  dur_feature.resize(n);
  valid_logit.resize(n);
  skip_logit.resize(n);
  topic_begin.assign(p.topics + 1, 0);
  for (int i = 0; i < n; ++i) {
    const Item& it = items[i];
    topic[i] = it.topic;
    duration[i] = it.duration;
    quality[i] = it.quality;
    clickbait[i] = it.clickbait;
    appeal[i] = it.appeal;
    dur_feature[i] = std::log10(it.duration / 30.0f);
    // Watch fraction f: valid when f * d > 10 s, fast slide when f * d < 3 s.
    valid_logit[i] = it.duration <= 10.5f ? 8.0f : logitf(10.0f / it.duration);
    skip_logit[i] = logitf(std::min(3.0f / it.duration, 0.95f));
    ++topic_begin[it.topic + 1];
  }
  std::partial_sum(topic_begin.begin(), topic_begin.end(), topic_begin.begin());
  view.resize(n);
  for (int i = 0; i < n; ++i)
    view[i] = ItemView{topic[i], duration[i], quality[i], clickbait[i], appeal[i], dur_feature[i]};
  // A topic without items would break retrieval: the scenario validator keeps
  // items >= 100 and topics small enough, but guard anyway.
  for (int t = 0; t < p.topics; ++t)
    if (topic_begin[t + 1] == topic_begin[t])
      throw ScenarioError("catalogue: topic " + std::to_string(t) +
                          " has no items; raise catalogue.items or lower catalogue.topics");
}

}  // namespace mtf
