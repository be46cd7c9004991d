// The chunk table of a multi-tensor call (the optimizer updates, clipping, the gradient norm):
// every tensor cut into pieces, tensor after tensor, and run on the thread pool.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "trainart/common.hpp"
#include "trainart/parallel.hpp"

namespace trainart::cpu {

// Elements [lo, hi) of tensor `tensor`.
struct TensorChunk {
  index_t tensor, lo, hi;
};

class ChunkTable {
 public:
  // Tensors: a vector of anything with an element count `n`; pieces of at most `chunk` elements.
  template <class Tensors>
  ChunkTable(const Tensors& tensors, index_t chunk) {
    offsets_.push_back(0);
    for (std::size_t t = 0; t < tensors.size(); ++t)
      for (index_t lo = 0; lo < tensors[t].n; lo += chunk) {
        const index_t hi = std::min(tensors[t].n, lo + chunk);
        chunks_.push_back({static_cast<index_t>(t), lo, hi});
        offsets_.push_back(offsets_.back() + (hi - lo));
      }
  }

  std::size_t size() const { return chunks_.size(); }
  const TensorChunk& operator[](std::size_t k) const { return chunks_[k]; }

  // Below this many elements in all tensors together a call stays on one thread.
  static constexpr index_t kSerialBelow = 32768;

  // fn(k, chunk) for every chunk, each thread taking a run of chunks holding about the same
  // number of elements.
  template <class Fn>
  void run(Fn&& fn) const {
    parallel_for_sized(offsets_, kSerialBelow, [&](index_t lo, index_t hi) {
      for (index_t k = lo; k < hi; ++k) fn(k, chunks_[static_cast<std::size_t>(k)]);
    });
  }

 private:
  std::vector<TensorChunk> chunks_;
  std::vector<index_t> offsets_;  // elements before each chunk, then the total
};

}  // namespace trainart::cpu
