#include "scene.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "limits.h"

namespace rt {

namespace {

// Normalises a table of non-negative weights into a cdf with n + 1 entries. All-zero weights
// give a uniform table.
void build_cdf(const Real* weights, int n, Real* cdf) {
    double total = 0;
    for (int i = 0; i < n; ++i) total += weights[i];
    double acc = 0;
    cdf[0] = 0;
    for (int i = 0; i < n; ++i) {
        acc += total > 0 ? double(weights[i]) : 1.0;
        cdf[i + 1] = Real(acc / (total > 0 ? total : double(n)));
    }
    cdf[n] = 1;
}

}  // namespace

void SceneData::set_shapes(const std::vector<ShapeInput>& shapes, bool rebuild, int num_threads) {
    ++generation_[kGeometry];
    ++generation_[kLights];
    // Concatenate every shape into the global arrays (indexed with ints: 3 per vertex or
    // triangle must fit).
    int64_t sum_v = 0, sum_f = 0;
    for (const auto& in : shapes) {
        sum_v = checked_sum(sum_v, in.num_vertices, kMaxIndex / 3, "the scene's number of vertices");
        sum_f = checked_sum(sum_f, in.num_triangles, kMaxIndex / 3, "the scene's number of triangles");
    }
    const int total_v = int(sum_v), total_f = int(sum_f);
    if (rebuild) {
        // Lights refer to shapes by index: the caller sets them again after a rebuild.
        light_inputs_.clear();
        lights_.clear();
        light_tri_.clear();
        light_tri_cdf_.clear();
        light_choice_cdf_.assign(1, Real(0));
    }
    if (!rebuild && (total_f != int(tri_shape_.size()) || total_v * 3 != int(vertices_.size()) ||
                     shapes.size() != shapes_.size())) {
        throw std::invalid_argument("refit requested but the scene's connectivity changed");
    }
    vertices_.resize(size_t(total_v) * 3);
    uvs_.assign(size_t(total_v) * 2, Real(0));
    normals_.assign(size_t(total_v) * 3, Real(0));
    if (rebuild) {
        indices_.resize(size_t(total_f) * 3);
        tri_shape_.resize(total_f);
        shapes_.resize(shapes.size());
    }
    int v_off = 0, f_off = 0;
    for (size_t si = 0; si < shapes.size(); ++si) {
        const ShapeInput& in = shapes[si];
        std::copy(in.vertices, in.vertices + size_t(in.num_vertices) * 3, vertices_.begin() + size_t(v_off) * 3);
        if (in.uvs) std::copy(in.uvs, in.uvs + size_t(in.num_vertices) * 2, uvs_.begin() + size_t(v_off) * 2);
        if (in.normals) {
            std::copy(in.normals, in.normals + size_t(in.num_vertices) * 3, normals_.begin() + size_t(v_off) * 3);
        }
        if (rebuild) {
            for (size_t k = 0; k < size_t(in.num_triangles) * 3; ++k) indices_[size_t(f_off) * 3 + k] = in.indices[k] + v_off;
            std::fill(tri_shape_.begin() + f_off, tri_shape_.begin() + f_off + in.num_triangles, int(si));
        }
        ShapeData& sd = shapes_[si];
        sd.vertex_offset = v_off;
        sd.num_vertices = in.num_vertices;
        sd.tri_offset = f_off;
        sd.num_triangles = in.num_triangles;
        sd.material_id = in.material_id;
        if (rebuild) sd.light_id = -1;
        sd.has_uvs = in.uvs != nullptr;
        sd.has_normals = in.normals != nullptr;
        v_off += in.num_vertices;
        f_off += in.num_triangles;
    }
    if (rebuild) {
        bvh_.build(vertices_.data(), total_v, indices_.data(), total_f, num_threads);
    } else {
        bvh_.refit(vertices_.data(), num_threads);
    }
    // Light tables depend on triangle areas: recompute them for the new positions.
    if (!light_inputs_.empty()) set_lights(std::vector<LightInput>(light_inputs_));
}

void SceneData::set_materials(const std::vector<MaterialInput>& materials) {
    ++generation_[kMaterials];
    materials_.clear();
    texels_.clear();
    auto add_texture = [this](const Real* data, int w, int h, int channels) {
        int64_t size = checked_product(checked_product(w, h, kMaxIndex, "a texture's texels"), channels, kMaxIndex,
                                       "a texture's values");
        checked_sum(int64_t(texels_.size()), size, kMaxIndex, "the scene's texture values");
        Texture t;
        t.offset = int(texels_.size());
        t.width = w;
        t.height = h;
        t.channels = channels;
        texels_.insert(texels_.end(), data, data + size_t(w) * h * channels);
        return t;
    };
    for (const auto& in : materials) {
        Material m;
        m.diffuse = add_texture(in.diffuse, in.diffuse_w, in.diffuse_h, 3);
        m.specular = add_texture(in.specular, in.specular_w, in.specular_h, 3);
        m.roughness = add_texture(in.roughness, in.roughness_w, in.roughness_h, 1);
        m.two_sided = in.two_sided;
        materials_.push_back(m);
    }
}

void SceneData::set_lights(const std::vector<LightInput>& lights) {
    ++generation_[kLights];
    light_inputs_ = lights;
    lights_.clear();
    light_tri_.clear();
    light_tri_cdf_.clear();
    for (auto& sd : shapes_) sd.light_id = -1;
    SceneView v = view();
    std::vector<Real> power, areas;
    for (size_t li = 0; li < lights.size(); ++li) {
        const LightInput& in = lights[li];
        if (in.shape_id < 0 || in.shape_id >= int(shapes_.size())) {
            throw std::invalid_argument("area light shape_id out of range");
        }
        ShapeData& sd = shapes_[in.shape_id];
        if (sd.light_id >= 0) throw std::invalid_argument("two area lights share one shape");
        sd.light_id = int(li);
        AreaLightData l;
        l.shape_id = in.shape_id;
        l.intensity = in.intensity;
        l.two_sided = in.two_sided;
        l.tri_offset = int(light_tri_.size());
        l.num_triangles = sd.num_triangles;
        l.cdf_offset = int(light_tri_cdf_.size());
        areas.resize(sd.num_triangles);
        double area = 0;
        for (int k = 0; k < sd.num_triangles; ++k) {
            int tri = sd.tri_offset + k;
            light_tri_.push_back(tri);
            areas[k] = triangle_area(v, tri);
            area += areas[k];
        }
        light_tri_cdf_.resize(light_tri_cdf_.size() + sd.num_triangles + 1);
        build_cdf(areas.data(), sd.num_triangles, light_tri_cdf_.data() + l.cdf_offset);
        l.area = Real(area);
        lights_.push_back(l);
        power.push_back(luminance(in.intensity) * l.area * (in.two_sided ? 2 : 1));
    }
    light_choice_cdf_.resize(lights.size() + 1);
    build_cdf(power.data(), int(power.size()), light_choice_cdf_.data());
}

void SceneData::set_envmap(const Real* values, int width, int height) {
    ++generation_[kEnvmap];
    env_values_.clear();
    env_width_ = env_height_ = 0;
    env_emits_ = false;
    if (!values) return;
    checked_product(checked_product(width, height, kMaxIndex, "the envmap's texels"), 3, kMaxIndex,
                    "the envmap's values");
    env_width_ = width;
    env_height_ = height;
    env_values_.assign(values, values + size_t(width) * height * 3);
    // Weights: luminance * sin(theta) at each texel's centre row. The lookup is bilinear, so a
    // texel's region also shows its neighbours' radiance: taking the largest luminance of the
    // 3x3 neighbourhood keeps the pdf from being tiny where the radiance is not (no fireflies
    // next to a small bright sun).
    std::vector<Real> lum(size_t(width) * height);
    for (size_t k = 0; k < lum.size(); ++k) lum[k] = std::fmax(luminance(Vec3::load(values + 3 * k)), Real(0));
    std::vector<Real> weights(size_t(width) * height);
    std::vector<Real> row_weights(height);
    for (int i = 0; i < height; ++i) {
        Real sin_theta = std::sin(kPi * (Real(i) + Real(0.5)) / Real(height));
        double row = 0;
        for (int j = 0; j < width; ++j) {
            Real m = 0;
            for (int di = -1; di <= 1; ++di) {
                int ii = std::min(std::max(i + di, 0), height - 1);
                for (int dj = -1; dj <= 1; ++dj) {
                    int jj = ((j + dj) % width + width) % width;
                    m = std::fmax(m, lum[size_t(ii) * width + jj]);
                }
            }
            Real w = m * sin_theta;
            weights[size_t(i) * width + j] = w;
            row += w;
        }
        row_weights[i] = Real(row);
        env_emits_ = env_emits_ || row > 0;
    }
    env_marginal_cdf_.resize(height + 1);
    build_cdf(row_weights.data(), height, env_marginal_cdf_.data());
    env_conditional_cdf_.resize(size_t(height) * (width + 1));
    for (int i = 0; i < height; ++i) {
        build_cdf(weights.data() + size_t(i) * width, width, env_conditional_cdf_.data() + size_t(i) * (width + 1));
    }
    // The probability of each texel, consistent with the two tables above.
    env_texel_pmf_.resize(size_t(width) * height);
    for (int i = 0; i < height; ++i) {
        Real pr = env_marginal_cdf_[i + 1] - env_marginal_cdf_[i];
        const Real* c = env_conditional_cdf_.data() + size_t(i) * (width + 1);
        for (int j = 0; j < width; ++j) env_texel_pmf_[size_t(i) * width + j] = pr * (c[j + 1] - c[j]);
    }
}

SceneView SceneData::view() const {
    SceneView v;
    v.vertices = vertices_.data();
    v.uvs = uvs_.data();
    v.normals = normals_.data();
    v.indices = indices_.data();
    v.tri_shape = tri_shape_.data();
    v.shapes = shapes_.data();
    v.num_vertices = int(vertices_.size() / 3);
    v.num_triangles = int(tri_shape_.size());
    v.num_shapes = int(shapes_.size());
    v.bvh = bvh_.view();
    v.materials = materials_.data();
    v.texels = texels_.data();
    v.num_materials = int(materials_.size());
    v.lights = lights_.data();
    v.num_lights = int(lights_.size());
    v.light_choice = Distribution1D{light_choice_cdf_.data(), int(lights_.size())};
    v.light_tri = light_tri_.data();
    v.light_tri_cdf = light_tri_cdf_.data();
    v.light_box = BVHNode{{kInfinity, kInfinity, kInfinity}, 0, {-kInfinity, -kInfinity, -kInfinity}, 0};
    for (const AreaLightData& l : lights_) {
        const ShapeData& shape = shapes_[size_t(l.shape_id)];
        for (int k = shape.vertex_offset; k < shape.vertex_offset + shape.num_vertices; ++k) {
            for (int a = 0; a < 3; ++a) {
                Real x = vertices_[3 * size_t(k) + a];
                v.light_box.bmin[a] = min_r(v.light_box.bmin[a], x);
                v.light_box.bmax[a] = max_r(v.light_box.bmax[a], x);
            }
        }
    }
    v.has_envmap = !env_values_.empty();
    v.envmap.values = env_values_.data();
    v.envmap.width = env_width_;
    v.envmap.height = env_height_;
    v.envmap.marginal_cdf = env_marginal_cdf_.data();
    v.envmap.conditional_cdf = env_conditional_cdf_.data();
    v.envmap.texel_pmf = env_texel_pmf_.data();
    // Environment vs area lights for next-event estimation.
    bool area_emits = false;
    for (const auto& l : lights_) area_emits = area_emits || (!is_black(l.intensity) && l.area > 0);
    v.env_choice_prob = env_emits_ ? (area_emits ? Real(0.5) : Real(1)) : Real(0);
    if (has_camera_) v.camera = make_camera(camera_);
    return v;
}

}  // namespace rt
