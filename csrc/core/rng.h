// rng.h: a counter-based random number generator and stratified pixel samples.
//
// Every random number is a hash of (seed, stream, pixel, sample, dimension), so a pixel's
// sequence does not depend on which thread renders it or in which order, and a backward pass
// can replay exactly the numbers its forward pass used. Streams keep the forward and backward
// passes (and the edge sampler) apart.
#pragma once

#include <cmath>

#include "vector.h"

namespace rt {

// The finaliser of splitmix64 (Steele, Lea and Flood 2014): a bijective 64-bit mix.
RT_HOST_DEVICE RT_INLINE uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// A 32-bit hash of two words, for the stratified pattern.
RT_HOST_DEVICE RT_INLINE uint32_t hash32(uint32_t a, uint32_t b) {
    return uint32_t(mix64((uint64_t(a) << 32) | b) >> 32);
}

// Uniform float in [0, 1) from the top 24 bits of a word.
RT_HOST_DEVICE RT_INLINE Real to_unit(uint64_t h) { return Real(h >> 40) * Real(5.9604644775390625e-08); }

enum Stream : uint32_t {
    kStreamForward = 0,
    kStreamBackward = 1,
    kStreamEdge = 2,
};

// The random numbers of one (pixel, sample) path. get(d) is a pure function of the key and d.
struct Sampler {
    uint64_t key;
    RT_HOST_DEVICE Sampler(uint64_t seed, uint32_t stream, uint64_t pixel, uint64_t sample) {
        key = mix64(mix64(mix64(seed * 0x9e3779b97f4a7c15ull + stream) ^ pixel) + sample * 0xd1b54a32d192ed03ull);
    }
    RT_HOST_DEVICE Real get(uint32_t dim) const {
        return to_unit(mix64(key ^ (uint64_t(dim + 1) * 0x9e3779b97f4a7c15ull)));
    }
};

// Correlated multi-jittered sampling (Kensler 2013, "Correlated Multi-Jittered Sampling"):
// sample s of n in a pixel, stratified in both axes for any n, an unbiased random pattern
// per pixel chosen by pattern_key.
RT_HOST_DEVICE RT_INLINE uint32_t permute(uint32_t i, uint32_t l, uint32_t p) {
    if (l <= 1) return 0;
    uint32_t w = l - 1;
    w |= w >> 1; w |= w >> 2; w |= w >> 4; w |= w >> 8; w |= w >> 16;
    // Cycle walking: hash within the next power of two until the value falls below l.
    do {
        i ^= p; i *= 0xe170893du;
        i ^= p >> 16; i ^= (i & w) >> 4;
        i ^= p >> 8; i *= 0x0929eb3fu;
        i ^= p >> 23; i ^= (i & w) >> 1;
        i *= 1u | (p >> 27); i *= 0x6935fa69u;
        i ^= (i & w) >> 11; i *= 0x74dcb303u;
        i ^= (i & w) >> 2; i *= 0x9e501cc3u;
        i ^= (i & w) >> 2; i *= 0xc860a3dfu;
        i &= w; i ^= i >> 5;
    } while (i >= l);
    return (i + p) % l;
}

RT_HOST_DEVICE RT_INLINE Vec2 cmj_sample(uint32_t s, uint32_t n, uint32_t pattern_key) {
    uint32_t m = uint32_t(std::sqrt(double(n)));
    if (m * m < n) ++m;  // m columns, ny rows with m * ny >= n
    uint32_t ny = (n + m - 1) / m;
    s = permute(s, n, pattern_key * 0x51633e2du);
    uint32_t sx = permute(s % m, m, pattern_key * 0x68bc21ebu);
    uint32_t sy = permute(s / m, ny, pattern_key * 0x02e5be93u);
    Real jx = to_unit(mix64((uint64_t(pattern_key) << 32) ^ (s * 2u + 0x967a889bu)));
    Real jy = to_unit(mix64((uint64_t(pattern_key) << 32) ^ (s * 2u + 0x368cc8b7u + 1u)));
    Real x = (Real(sx) + (Real(sy) + jx) / Real(ny)) / Real(m);
    Real y = (Real(s) + jy) / Real(n);
    // Guard against rounding to exactly 1.
    const Real one_minus = Real(0.99999994);
    return Vec2(x < one_minus ? x : one_minus, y < one_minus ? y : one_minus);
}

}  // namespace rt
