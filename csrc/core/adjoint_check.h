// adjoint_check.h: finite-difference self-test of every hand-written adjoint (d_ function).
//
// Each check draws random, well-conditioned inputs x (away from clamps, texel cell borders,
// grazing angles and poles) and a random output gradient g, runs the adjoint, and compares
// every component k of its result with the central difference of <g, F(x)> along e_k (the
// forward in float, Richardson-extrapolated, with a step of 2% of a typical change t_k of x_k).
// Components are compared scaled by t_k, so inputs of different units weigh alike:
//     error_k = |a_k - f_k| / max(|f_k|, |a_k|, 2e-2 max_j |f_j|, 3e-3 sum_i |g_i F_i(x)|)
// (a_k, f_k: adjoint and difference times t_k). A wrong sign gives 2, a factor two 0.5, a
// missing term O(1), float round-off a few 1e-3 at most. Names ending in ":accumulates" check
// that an adjoint adds into its outputs (twice on pre-filled outputs adds twice its result).
// Names starting with "forward:" check identities of the forward functions the adjoints rely
// on. Names starting with "control:" run deliberately wrong adjoints through the same metric
// and report the median over trials: they must be large, so the check cannot pass vacuously.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rt {

struct AdjointCheckResult {
    std::string name;
    double max_error;  // over all trials and input components
    int trials;
};

std::vector<AdjointCheckResult> run_adjoint_checks(uint64_t seed, int trials);

}  // namespace rt
