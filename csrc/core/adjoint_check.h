// adjoint_check.h: finite-difference self-test of every hand-written adjoint (d_ function).
//
// Each check draws random, well-conditioned inputs x and a random output gradient g, runs the
// adjoint, and compares every component k of its result with the central difference of
// <g, F(x)> along e_k (forward in float, step 1e-3 relative, Richardson-extrapolated). The
// error of one comparison is
//     |adjoint_k - fd_k| / max(|fd_k|, |adjoint_k|, 1e-2 max_j |fd_j|, 1e-6),
// so a wrong sign gives 2, a missing term or a wrong factor O(1), while float round-off stays
// far below 1e-2. Names ending in ":accumulates" check that an adjoint adds into its outputs
// (calling it twice on pre-filled outputs adds twice its result). Names starting with
// "forward:" check identities of the forward functions the adjoints rely on. Names starting
// with "control:" run deliberately wrong adjoints through the same metric: they must report
// large errors, which shows the check cannot pass vacuously.
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
