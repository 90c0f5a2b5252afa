// scene.h: the flat scene every kernel reads, and the host-side container that owns it.
//
// All shapes are concatenated into global arrays (vertices, per-vertex uvs and normals,
// triangles with global vertex indices). Everything a kernel needs is reachable from one
// SceneView taken by value; the reverse pass mirrors these buffers with gradient buffers of
// the same layout.
#pragma once

#include <vector>

#include "bvh.h"
#include "camera.h"
#include "material.h"
#include "sampling.h"

namespace rt {

struct ShapeData {
    int vertex_offset, num_vertices;
    int tri_offset, num_triangles;
    int material_id;
    int light_id;     // -1 if the shape does not emit
    int has_uvs;      // else uv = barycentrics of the hit
    int has_normals;  // else flat shading
};

struct AreaLightData {
    int shape_id;
    Vec3 intensity;   // emitted radiance
    int two_sided;
    int tri_offset;   // this light's triangles: light_tri[tri_offset .. tri_offset + num_triangles)
    int num_triangles;
    int cdf_offset;   // its area table: light_tri_cdf[cdf_offset .. cdf_offset + num_triangles]
    Real area;        // total area of the shape
};

struct EnvmapData {
    const Real* values = nullptr;  // [height, width, 3] radiance, lat-long
    int width = 0, height = 0;
    const Real* marginal_cdf = nullptr;     // [height + 1] over rows
    const Real* conditional_cdf = nullptr;  // [height, width + 1] over columns of each row
    const Real* texel_pmf = nullptr;        // [height, width] probability of each texel
};

struct SceneView {
    // Geometry.
    const Real* vertices;   // [V, 3]
    const Real* uvs;        // [V, 2] (zeros for shapes without uvs)
    const Real* normals;    // [V, 3] (zeros for shapes without normals)
    const int* indices;     // [F, 3] global vertex indices
    const int* tri_shape;   // [F] the shape of each triangle
    const ShapeData* shapes;
    int num_vertices, num_triangles, num_shapes;
    BVHView bvh;
    // Materials.
    const Material* materials;
    const Real* texels;
    int num_materials;
    // Area lights: one distribution over lights (by power), one per light over its triangles.
    const AreaLightData* lights;
    int num_lights;
    Distribution1D light_choice;   // over lights
    const int* light_tri;          // global triangle index of each light-triangle entry
    const Real* light_tri_cdf;     // per light: [num_triangles + 1] cumulative areas (normalised)
    BVHNode light_box;             // bounds of the area lights' vertices (bmin > bmax: no lights)
    // Environment.
    EnvmapData envmap;
    int has_envmap;
    // Probability that next-event estimation samples the environment rather than area lights.
    Real env_choice_prob;
    Camera camera;
};

// The geometry at a ray hit.
struct SurfacePoint {
    Vec3 p;       // position
    Vec3 ng;      // unit geometric normal, cross(v1 - v0, v2 - v0) (not oriented)
    Vec3 ns;      // unit shading normal (interpolated, or ng), on ng's side
    Vec2 uv;      // texture coordinates
    int shape_id;
    int tri;      // global triangle index
    Real coord_scale;  // the largest |coordinate| of the triangle's vertices: p rounds to a few
                       // ulps of it (offset_ray_origin)
};

RT_HOST_DEVICE RT_INLINE SurfacePoint surface_point(const SceneView& s, const Hit& hit) {
    SurfacePoint sp;
    const int* idx = s.indices + 3 * size_t(hit.tri);
    Vec3 v0 = Vec3::load(s.vertices + 3 * size_t(idx[0]));
    Vec3 v1 = Vec3::load(s.vertices + 3 * size_t(idx[1]));
    Vec3 v2 = Vec3::load(s.vertices + 3 * size_t(idx[2]));
    Real b0 = 1 - hit.u - hit.v;
    sp.p = v0 * b0 + v1 * hit.u + v2 * hit.v;
    sp.coord_scale = max_component(vmax(vmax(vabs(v0), vabs(v1)), vabs(v2)));
    sp.ng = normalize(cross(v1 - v0, v2 - v0));
    sp.tri = hit.tri;
    sp.shape_id = s.tri_shape[hit.tri];
    const ShapeData& shape = s.shapes[sp.shape_id];
    if (shape.has_normals) {
        Vec3 n = Vec3::load(s.normals + 3 * size_t(idx[0])) * b0 +
                 Vec3::load(s.normals + 3 * size_t(idx[1])) * hit.u +
                 Vec3::load(s.normals + 3 * size_t(idx[2])) * hit.v;
        Real len = length(n);
        sp.ns = len > 0 ? n / len : sp.ng;
        if (dot(sp.ns, sp.ng) < 0) sp.ns = -sp.ns;  // keep normals on one side of the surface
    } else {
        sp.ns = sp.ng;
    }
    if (shape.has_uvs) {
        const Real* t0 = s.uvs + 2 * size_t(idx[0]);
        const Real* t1 = s.uvs + 2 * size_t(idx[1]);
        const Real* t2 = s.uvs + 2 * size_t(idx[2]);
        sp.uv = Vec2(t0[0] * b0 + t1[0] * hit.u + t2[0] * hit.v, t0[1] * b0 + t1[1] * hit.u + t2[1] * hit.v);
    } else {
        sp.uv = Vec2(hit.u, hit.v);
    }
    return sp;
}

RT_HOST_DEVICE RT_INLINE Real triangle_area(const SceneView& s, int tri) {
    const int* idx = s.indices + 3 * size_t(tri);
    Vec3 v0 = Vec3::load(s.vertices + 3 * size_t(idx[0]));
    Vec3 v1 = Vec3::load(s.vertices + 3 * size_t(idx[1]));
    Vec3 v2 = Vec3::load(s.vertices + 3 * size_t(idx[2]));
    return Real(0.5) * length(cross(v1 - v0, v2 - v0));
}

// An offset origin for rays leaving a surface on the side of `n`, past intersection error.
// The offset is relative, so a scene scaled by any factor is rendered the same: a 1e-4 of the
// point's own largest coordinate (the margin the renderer always had at |p| >= 1), and at least
// 1e-5 of its triangle's largest coordinate (about 170 ulps of the rounding of p, which
// interpolates the vertices: near the origin |p| alone would give no margin at all).
RT_HOST_DEVICE RT_INLINE Vec3 offset_ray_origin(const SurfacePoint& sp, Vec3 n) {
    Real scale = max_r(max_component(vabs(sp.p)), Real(0.1) * sp.coord_scale);
    return sp.p + n * (Real(1e-4) * scale);
}

// The host side: owns every buffer a SceneView points into.
class SceneData {
public:
    struct ShapeInput {
        const Real* vertices; int num_vertices;
        const int* indices; int num_triangles;
        const Real* uvs;       // may be null
        const Real* normals;   // may be null
        int material_id;
    };
    struct MaterialInput {
        const Real* diffuse; int diffuse_w, diffuse_h;      // 3 channels
        const Real* specular; int specular_w, specular_h;   // 3 channels
        const Real* roughness; int roughness_w, roughness_h; // 1 channel
        int two_sided;
    };
    struct LightInput {
        int shape_id;
        Vec3 intensity;
        int two_sided;
    };

    // Copies the geometry. With rebuild, the BVH is built anew; otherwise connectivity must
    // be the same as in the last call and the BVH is refit.
    void set_shapes(const std::vector<ShapeInput>& shapes, bool rebuild, int num_threads);
    void set_materials(const std::vector<MaterialInput>& materials);
    // Needs the shapes: call after set_shapes (and again whenever vertices move).
    void set_lights(const std::vector<LightInput>& lights);
    void set_envmap(const Real* values, int width, int height);  // values null: no envmap
    void set_camera(const CameraParams& camera) { camera_ = camera; has_camera_ = true; }

    SceneView view() const;

    // What a device copy of the scene (csrc/cuda) re-uploads: the parts of the scene, each with a
    // counter that every setter changing it increments.
    enum Part { kGeometry = 0, kMaterials = 1, kLights = 2, kEnvmap = 3, kNumParts = 4 };
    uint64_t generation(Part part) const { return generation_[part]; }
    // Calls f(part, pointer, count) for every array a view() `v` of this scene points into, with
    // its element count; f may replace the pointer (with a device copy's). The order is fixed.
    template <typename F>
    void for_each_array(SceneView* v, F&& f) const;

    int num_triangles() const { return int(tri_shape_.size()); }
    int num_vertices() const { return int(vertices_.size() / 3); }
    int num_texels() const { return int(texels_.size()); }
    int num_lights() const { return int(lights_.size()); }
    int envmap_size() const { return int(env_values_.size()); }
    const std::vector<ShapeData>& shapes() const { return shapes_; }
    const BVH& bvh() const { return bvh_; }
    bool has_camera() const { return has_camera_; }
    const CameraParams& camera_params() const { return camera_; }

private:
    std::vector<Real> vertices_, uvs_, normals_;
    std::vector<int> indices_, tri_shape_;
    std::vector<ShapeData> shapes_;
    BVH bvh_;
    std::vector<Material> materials_;
    std::vector<Real> texels_;
    std::vector<AreaLightData> lights_;
    std::vector<Real> light_choice_cdf_;
    std::vector<int> light_tri_;
    std::vector<Real> light_tri_cdf_;
    std::vector<LightInput> light_inputs_;
    std::vector<Real> env_values_, env_marginal_cdf_, env_conditional_cdf_, env_texel_pmf_;
    int env_width_ = 0, env_height_ = 0;
    bool env_emits_ = false;  // whether any texel has positive luminance
    CameraParams camera_{};
    bool has_camera_ = false;
    uint64_t generation_[kNumParts] = {0, 0, 0, 0};
};

template <typename F>
void SceneData::for_each_array(SceneView* v, F&& f) const {
    f(kGeometry, v->vertices, vertices_.size());
    f(kGeometry, v->uvs, uvs_.size());
    f(kGeometry, v->normals, normals_.size());
    f(kGeometry, v->indices, indices_.size());
    f(kGeometry, v->tri_shape, tri_shape_.size());
    f(kGeometry, v->shapes, shapes_.size());
    f(kGeometry, v->bvh.nodes, size_t(bvh_.num_nodes()));
    f(kGeometry, v->bvh.prim_index, bvh_.num_prims());
    f(kGeometry, v->bvh.tri_verts, 9 * bvh_.num_prims());
    f(kMaterials, v->materials, materials_.size());
    f(kMaterials, v->texels, texels_.size());
    f(kLights, v->lights, lights_.size());
    f(kLights, v->light_choice.cdf, light_choice_cdf_.size());
    f(kLights, v->light_tri, light_tri_.size());
    f(kLights, v->light_tri_cdf, light_tri_cdf_.size());
    f(kEnvmap, v->envmap.values, env_values_.size());
    f(kEnvmap, v->envmap.marginal_cdf, env_marginal_cdf_.size());
    f(kEnvmap, v->envmap.conditional_cdf, env_conditional_cdf_.size());
    f(kEnvmap, v->envmap.texel_pmf, env_texel_pmf_.size());
}

}  // namespace rt
