// Scratch vectors that grow with the rows of a call and are given back between calls.
#pragma once

#include <cstddef>
#include <vector>

namespace trainart {

// Gives v's memory back (clear() keeps the capacity).
template <class V>
void free_vector(V& v) {
  V().swap(v);
}

// The bytes v holds, by capacity (what clear() would keep).
template <class V>
std::size_t held_bytes(const V& v) {
  return v.capacity() * sizeof(typename V::value_type);
}

}  // namespace trainart
