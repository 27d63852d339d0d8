// The item catalogue and the topic graph.
//
// Items are stored as structure-of-arrays, sorted by topic so a topic's items
// are contiguous (retrieval picks a topic, then an index in its range). Topics
// form a small-world graph (Boost.Graph: a ring lattice plus seeded shortcuts)
// along which user interests drift.
#pragma once

#include <cstdint>
#include <vector>

#include "sim/scenario.h"
#include "users/user_model.h"

namespace mtf {

class TopicGraph {
 public:
  /// Ring lattice of `topics` nodes, each linked to `degree` nearest neighbours
  /// (rounded down to even, at least 2), plus topics/4 random shortcuts.
  TopicGraph(int topics, int degree, std::uint64_t seed);
  int topics() const { return static_cast<int>(offsets_.size()) - 1; }
  /// Neighbours of topic t as a contiguous range [begin, end) into neighbour_data().
  const int* neighbours_begin(int t) const { return adj_.data() + offsets_[t]; }
  const int* neighbours_end(int t) const { return adj_.data() + offsets_[t + 1]; }
  int degree(int t) const { return offsets_[t + 1] - offsets_[t]; }
  /// Shortest-path distance in hops (breadth-first search over the Boost graph).
  std::vector<int> distances_from(int t) const;

 private:
  std::vector<int> offsets_;  // CSR
  std::vector<int> adj_;
};

struct Catalogue {
  /// Builds the catalogue from its parameters and the master seed.
  Catalogue(const CatalogueParams& p, std::uint64_t seed);

  int size() const { return static_cast<int>(topic.size()); }
  int topics() const { return graph.topics(); }

  TopicGraph graph;
  // Per item (sorted by topic):
  std::vector<std::uint16_t> topic;
  std::vector<float> duration;      ///< seconds, in [5, 300]
  std::vector<float> quality;       ///< [0, 1]
  std::vector<float> clickbait;     ///< [0, 1]
  std::vector<float> appeal;        ///< interaction appeal, [0, 1]
  std::vector<float> dur_feature;   ///< log10(duration / 30 s): about -0.8 (5 s) to 1 (300 s)
  std::vector<float> valid_logit;   ///< logit of the watch fraction above which watch > 10 s
  std::vector<float> skip_logit;    ///< logit of the watch fraction below which watch < 3 s
  /// The same attributes as one record per item (what a user reacts to): a shown
  /// item costs one cache line instead of one per array.
  std::vector<ItemView> view;
  // Per topic: items of topic t are [topic_begin[t], topic_begin[t+1]).
  std::vector<int> topic_begin;
};

}  // namespace mtf
