// sampling.h: warps from [0,1)^n to distributions, their pdfs, and discrete distributions.
#pragma once

#include <cmath>

#include "vector.h"

namespace rt {

RT_HOST_DEVICE RT_INLINE Vec3 sample_cosine_hemisphere(Vec2 u) {
    // Concentric disk mapping (Shirley and Chiu 1997), lifted to the hemisphere.
    Real a = 2 * u.x - 1, b = 2 * u.y - 1;
    Real r, phi;
    if (a == 0 && b == 0) {
        r = 0; phi = 0;
    } else if (a * a > b * b) {
        r = a; phi = (kPi / 4) * (b / a);
    } else {
        r = b; phi = (kPi / 2) - (kPi / 4) * (a / b);
    }
    Real x = r * std::cos(phi), y = r * std::sin(phi);
    Real z = std::sqrt(max_r(Real(0), 1 - x * x - y * y));
    return Vec3(x, y, z);
}
RT_HOST_DEVICE RT_INLINE Real cosine_hemisphere_pdf(Real cos_theta) {
    return cos_theta > 0 ? cos_theta * kInvPi : Real(0);
}

// Uniform barycentrics on a triangle: returns (b1, b2), the weights of v1 and v2.
RT_HOST_DEVICE RT_INLINE Vec2 sample_uniform_triangle(Vec2 u) {
    Real su = std::sqrt(u.x);
    return Vec2(su * (1 - u.y), su * u.y);
}

RT_HOST_DEVICE RT_INLINE Real power_heuristic(Real f_pdf, Real g_pdf) {
    Real f2 = f_pdf * f_pdf, g2 = g_pdf * g_pdf;
    return f2 + g2 > 0 ? f2 / (f2 + g2) : Real(0);
}

// A discrete distribution stored as a cumulative table cdf[0..n] with cdf[0] = 0 and
// cdf[n] = 1 (normalised on the host). Zero-probability entries are never chosen.
struct Distribution1D {
    const Real* cdf = nullptr;
    int n = 0;

    RT_HOST_DEVICE Real pmf(int i) const { return cdf[i + 1] - cdf[i]; }

    // Chooses an index with probability pmf(i); *u_remapped receives u rescaled to [0,1)
    // within the chosen entry, so it can be reused as a fresh uniform number.
    RT_HOST_DEVICE int sample(Real u, Real* u_remapped = nullptr) const {
        // The first index i with cdf[i + 1] > u.
        int lo = 0, hi = n - 1;
        while (lo < hi) {
            int mid = (lo + hi) >> 1;
            if (cdf[mid + 1] > u) hi = mid; else lo = mid + 1;
        }
        // Skip entries of zero probability (possible when u lands exactly on a step).
        while (lo < n - 1 && pmf(lo) <= 0) ++lo;
        if (u_remapped) {
            Real p = pmf(lo);
            Real r = p > 0 ? (u - cdf[lo]) / p : Real(0);
            *u_remapped = r < Real(0) ? Real(0) : (r < Real(0.99999994) ? r : Real(0.99999994));
        }
        return lo;
    }
};

}  // namespace rt
