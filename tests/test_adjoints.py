"""Every hand-written adjoint (the d_ functions of csrc/core) against central finite differences.

_core.check_adjoints(seed, trials) runs the C++ self-test of csrc/core/adjoint_check.cpp: for
random well-conditioned inputs and a random output gradient, it compares each adjoint's result,
component by component, with finite differences of the float forward function, and returns
name -> largest error over the trials (metric in csrc/core/adjoint_check.h: a wrong sign gives
2, a factor two 0.5, a missing term O(1), float round-off a few 1e-3).

The "control:" entries run deliberately wrong adjoints through the same harness; they must
fail, so that this test cannot pass vacuously.
"""

from __future__ import annotations

import pytest

from raytrace import _core

TOLERANCE = 2e-2
TRIALS = 200

# Adjoints, by the forward function they differentiate (with a [variant] where one function
# has several code paths).
ADJOINTS = [
    "d_normalize",
    "d_length",
    "d_cross",
    "d_generate_ray[perspective]",
    "d_generate_ray[orthographic]",
    "d_project[perspective]",
    "d_project[orthographic]",
    "d_intersect_triangle",
    "d_ggx_d",
    "d_smith_g1",
    "d_schlick_fresnel",
    "d_schlick_fresnel[small f0]",
    "d_bsdf_eval_world",
    "d_terminator",
    "d_texture_lookup[rgb]",
    "d_texture_lookup[gray]",
    "d_texture_lookup[1x1]",
    "d_eval_material",
    "d_direction_to_envmap_uv",
    "d_envmap_eval",
]
# Those that add into pointer arguments (the others return their gradient).
RETURNING = {"d_normalize", "d_length", "d_direction_to_envmap_uv"}
ACCUMULATING = [name + ":accumulates" for name in ADJOINTS if name not in RETURNING]

FORWARD_IDENTITIES = [
    "forward:project_inverts_generate_ray[perspective]",
    "forward:project_inverts_generate_ray[orthographic]",
    "forward:bsdf_eval_world_matches_local",
    "forward:intersect_triangle_on_plane",
]

CONTROLS = [
    "control:d_normalize_wrong_sign",
    "control:d_normalize_missing_term",
    "control:d_generate_ray_fov_10_percent",
    "control:d_bsdf_eval_world_factor_two",
    "control:d_cross_overwrites:accumulates",
]


@pytest.fixture(scope="module", params=[0, 1, 2], ids=lambda s: f"seed{s}")
def results(request):
    return _core.check_adjoints(request.param, TRIALS)


def test_every_adjoint_is_checked(results):
    assert set(results) == set(ADJOINTS + ACCUMULATING + FORWARD_IDENTITIES + CONTROLS)


@pytest.mark.parametrize("name", ADJOINTS)
def test_adjoint_matches_finite_differences(results, name):
    assert results[name] < TOLERANCE, f"{name}: max error {results[name]:.3g}"


@pytest.mark.parametrize("name", ACCUMULATING)
def test_adjoint_accumulates(results, name):
    # Float round-off only (an adjoint that overwrites scores O(1)); sums of terms of both signs
    # (the uv slopes of three textures) lose a few digits.
    assert results[name] < 1e-3, f"{name}: max error {results[name]:.3g}"


@pytest.mark.parametrize("name", FORWARD_IDENTITIES)
def test_forward_identity(results, name):
    assert results[name] < 1e-4, f"{name}: max error {results[name]:.3g}"


@pytest.mark.parametrize("name", CONTROLS)
def test_wrong_adjoint_is_detected(results, name):
    # The mildest control, a 10% error on one input's gradient, scores 0.09.
    assert results[name] > 3 * TOLERANCE, f"{name}: error {results[name]:.3g} would pass the check"


def test_check_is_deterministic():
    assert _core.check_adjoints(7, 3) == _core.check_adjoints(7, 3)


def test_rejects_bad_trials():
    with pytest.raises(ValueError, match="trials"):
        _core.check_adjoints(0, 0)
