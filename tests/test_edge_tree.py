"""The edge tree's pruning is conservative (issue 3).

The secondary-edge estimate is unbiased only if every edge whose term can be nonzero at a point
keeps a positive probability there: the tree may skip a subtree only when a bound proves that
none of its edges matters. The core's self-test (csrc/core/edges.h, check_edge_tree) takes random
points on the scene's triangles and checks every edge of positive importance against the tree's
probability of drawing it and against the edges the gather collects. The scenes have what the
bounds must handle: long edges beside short ones (a ground's border next to a fine sphere),
flat-shading creases, a mesh seen from both sides, random triangle soups.
"""
import os
import sys

import pytest
import torch

import raytrace as rt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
from scenes import reference_scene  # noqa: E402

UP = [0.0, 1.0, 0.0]
LIGHT = torch.tensor([[-0.5, 2.0, -0.5], [0.5, 2.0, -0.5], [0.5, 2.0, 0.5], [-0.5, 2.0, 0.5]])
LIGHT_FACES = torch.tensor([[0, 1, 2], [0, 2, 3]])


def lit_scene(shapes):
    """`shapes` (vertices, indices, normals or None) under a small downward light."""
    cam = rt.Camera([0.0, 1.0, 4.0], [0.0, 0.0, 0.0], UP, fov=40.0, resolution=(16, 16))
    shape_list = [rt.Shape(v, i, 0, normals=n) for v, i, n in shapes]
    shape_list.append(rt.Shape(LIGHT, LIGHT_FACES, 1))
    mats = [rt.Material(torch.tensor([0.5, 0.5, 0.5])), rt.Material(torch.zeros(3))]
    return rt.Scene(cam, shape_list, mats, [rt.AreaLight(len(shape_list) - 1, torch.tensor([10.0, 10.0, 10.0]))])


def soup(seed, n=60):
    """Random triangles in a box around the origin (intersecting, some sliver-thin)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand((n, 1, 3), generator=g) * 2 - 1
    v = (centres + 0.4 * (torch.rand((n, 3, 3), generator=g) - 0.5)).reshape(-1, 3)
    return v, torch.arange(3 * n).reshape(n, 3), None


def scenes():
    mesh = rt.sphere(radius=0.7, subdivisions=2)
    ground = torch.tensor([[-5.0, -0.7, -5.0], [5.0, -0.7, -5.0], [5.0, -0.7, 5.0], [-5.0, -0.7, 5.0]])
    return {
        "reference": reference_scene((16, 16), sphere_n=8, welded=True),
        "flat icosphere on a ground": lit_scene([(mesh.vertices, mesh.indices, None),
                                                 (ground, torch.tensor([[0, 2, 1], [0, 3, 2]]), None)]),
        "smooth icosphere": lit_scene([(mesh.vertices, mesh.indices, mesh.normals)]),
        "triangle soup": lit_scene([soup(1)]),
    }


@pytest.mark.parametrize("name", list(scenes()))
def test_every_edge_that_matters_can_be_drawn(name):
    core = scenes()[name]._sync(2)
    violations, pairs = core.check_edge_tree(seed=3, queries=1500)
    assert pairs > 500, "setup: the points see edges that matter"
    assert violations == 0


def test_a_tree_that_prunes_too_much_fails_the_check():
    """Control: narrowing the nodes' bounds on their faces' orientation (so some silhouette
    edges are pruned) is caught."""
    core = scenes()["reference"]._sync(2)
    violations, pairs = core.check_edge_tree(seed=3, queries=1500, shrink=0.5)
    assert violations > 0.002 * pairs


def test_check_rejects_bad_arguments():
    core = scenes()["reference"]._sync(2)
    with pytest.raises(ValueError, match="queries"):
        core.check_edge_tree(seed=0, queries=0)
    with pytest.raises(ValueError, match="shrink"):
        core.check_edge_tree(seed=0, queries=10, shrink=1.0)
