// adjoint_check.cpp: finite-difference self-test of the d_ functions (see adjoint_check.h).
//
// Every function under test is wrapped as a Problem: a flat input vector x, a forward map
// x -> y (the float code the renderer runs) and the adjoint (x, d_y) -> d_x, which adds into
// d_x exactly as the d_ function adds into its outputs. Generators draw inputs away from the
// places where the forward functions are not differentiable (clamps, texel cell borders,
// grazing angles, poles), so that the finite differences measure the derivative.
#include "adjoint_check.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "camera.h"
#include "geometry.h"
#include "light.h"
#include "material.h"

namespace rt {
namespace {

// ---- Random numbers (host only; a fixed generator so results repeat across platforms) ----

struct Rng {
    uint64_t state;
    explicit Rng(uint64_t seed) : state(seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull) {}
    uint64_t next() {
        // splitmix64
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
    Real uniform(double a, double b) { return Real(a + (b - a) * uniform()); }
    int integer(int lo, int hi) { return lo + int(next() % uint64_t(hi - lo + 1)); }  // [lo, hi]
    Vec3 vec3(double a, double b) { return Vec3(uniform(a, b), uniform(a, b), uniform(a, b)); }
    Vec3 unit_vector() {
        for (;;) {
            Vec3 v = vec3(-1, 1);
            Real l2 = length_squared(v);
            if (l2 > Real(0.01) && l2 <= 1) return v / std::sqrt(l2);
        }
    }
    // A unit vector whose cosine with unit n lies in [lo, hi].
    Vec3 unit_vector_at(Vec3 n, double lo, double hi) {
        for (;;) {
            Vec3 v = unit_vector();
            Real c = dot(v, n);
            if (c >= lo && c <= hi) return v;
        }
    }
};

// ---- The metric -----------------------------------------------------------------------

// adjoint and fd hold the gradient's components scaled by their inputs' typical changes (see
// Problem). Each component's error is relative to the larger of the two values, but never to
// less than 2% of the largest component, nor than 0.3% of the output's scale (what float
// round-off in F lets the differences resolve, sum |d_y_i F_i(x)|): a wrong sign gives 2, a
// factor two 0.5, a missing term O(1), and a 10% error on the largest component 0.09.
double component_errors(const std::vector<double>& adjoint, const std::vector<double>& fd, double out_scale) {
    double fd_max = 0;
    for (double v : fd) fd_max = std::max(fd_max, std::fabs(v));
    double floor = std::max({2e-2 * fd_max, 3e-3 * out_scale, 1e-6});
    double err = 0;
    for (size_t k = 0; k < fd.size(); ++k) {
        double denom = std::max({std::fabs(fd[k]), std::fabs(adjoint[k]), floor});
        err = std::max(err, std::fabs(adjoint[k] - fd[k]) / denom);
    }
    return err;
}

// ---- Problems --------------------------------------------------------------------------

struct Problem {
    std::vector<Real> x;
    // The typical size of a change of each input, over which the forward function is smooth
    // (and stays away from its clamps and cell borders). Finite-difference steps are
    // kStep * typical_k, and gradients are compared as adjoint_k * typical_k, the change of
    // the output for a typical change of x_k, so that inputs of different units weigh alike.
    std::vector<Real> typical;
    int num_outputs = 0;
    std::function<void(const Real* x, Real* y)> forward;
    std::function<void(const Real* x, const Real* d_y, Real* d_x)> adjoint;  // adds into d_x

    void add_inputs(std::initializer_list<Real> values, Real typ) {
        for (Real v : values) {
            x.push_back(v);
            typical.push_back(typ);
        }
    }
    void add_vec3(Vec3 v, Real typ) { add_inputs({v.x, v.y, v.z}, typ); }
};

// Sequential reading and writing of flat arrays.
struct Reader {
    const Real* p;
    Real real() { return *p++; }
    Vec2 vec2() { Vec2 v(p[0], p[1]); p += 2; return v; }
    Vec3 vec3() { Vec3 v(p[0], p[1], p[2]); p += 3; return v; }
};
struct Writer {
    Real* p;
    void real(Real v) { *p++ = v; }
    void vec2(Vec2 v) { p[0] = v.x; p[1] = v.y; p += 2; }
    void vec3(Vec3 v) { p[0] = v.x; p[1] = v.y; p[2] = v.z; p += 3; }
};

// A Sink for the texel adjoints: adds into a flat array.
struct ArraySink {
    Real* values;
    void add(int index, Real value) { values[index] += value; }
};

// <d_y, F(x)> with x_k replaced by v, in double.
double weighted_output(const Problem& pr, const std::vector<double>& d_y, int k, Real v) {
    std::vector<Real> x = pr.x, y(size_t(pr.num_outputs));
    x[size_t(k)] = v;
    pr.forward(x.data(), y.data());
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += d_y[i] * double(y[i]);
    return s;
}

// The central difference along e_k with step h (the step actually taken in float).
double central_difference(const Problem& pr, const std::vector<double>& d_y, int k, double h) {
    Real xk = pr.x[size_t(k)];
    Real xp = Real(double(xk) + h), xm = Real(double(xk) - h);
    return (weighted_output(pr, d_y, k, xp) - weighted_output(pr, d_y, k, xm)) / (double(xp) - double(xm));
}

// The step, relative to the typical change: float round-off in F(x +- h) shows up in the
// difference quotient at about 1e-7 / kStep of the output's scale, so the step is large and
// the truncation error is removed by Richardson extrapolation instead.
constexpr double kStep = 2e-2;

double gradient_error(const Problem& pr, Rng& rng) {
    std::vector<double> d_y(size_t(pr.num_outputs));
    std::vector<Real> d_yf(d_y.size());
    for (size_t i = 0; i < d_y.size(); ++i) {
        d_yf[i] = rng.uniform(-1, 1);
        d_y[i] = d_yf[i];
    }
    size_t n = pr.x.size();
    std::vector<Real> g(n, Real(0));
    pr.adjoint(pr.x.data(), d_yf.data(), g.data());
    std::vector<double> adjoint(n), fd(n);
    for (size_t k = 0; k < n; ++k) {
        double typ = pr.typical[k];
        // Richardson extrapolation of steps h and h/2 (truncation error O(h^4)), averaged over
        // four steps in [0.7, 1] kStep typical to average out round-off.
        double sum = 0;
        for (int j = 0; j < 4; ++j) {
            double h = kStep * typ * (1 - 0.1 * j);
            double d1 = central_difference(pr, d_y, int(k), h);
            double d2 = central_difference(pr, d_y, int(k), h / 2);
            sum += (4 * d2 - d1) / 3;
        }
        fd[k] = sum / 4 * typ;
        adjoint[k] = double(g[k]) * typ;
    }
    // The output's scale, sum |d_y_i F_i(x)|: round-off in F limits what the differences resolve.
    std::vector<Real> y(size_t(pr.num_outputs));
    pr.forward(pr.x.data(), y.data());
    double out_scale = 0;
    for (size_t i = 0; i < y.size(); ++i) out_scale += std::fabs(d_y[i] * double(y[i]));
    return component_errors(adjoint, fd, out_scale);
}

// Calling the adjoint twice on outputs pre-filled with r must give r + 2 (its result from 0).
double accumulation_error(const Problem& pr, Rng& rng) {
    std::vector<Real> d_y(size_t(pr.num_outputs));
    for (Real& v : d_y) v = rng.uniform(-1, 1);
    size_t n = pr.x.size();
    std::vector<Real> once(n, Real(0)), acc(n), r(n);
    pr.adjoint(pr.x.data(), d_y.data(), once.data());
    for (size_t k = 0; k < n; ++k) acc[k] = r[k] = rng.uniform(-1, 1);
    pr.adjoint(pr.x.data(), d_y.data(), acc.data());
    pr.adjoint(pr.x.data(), d_y.data(), acc.data());
    double err = 0;
    for (size_t k = 0; k < n; ++k) {
        double expected = double(r[k]) + 2 * double(once[k]);
        double denom = std::max(1e-6, std::fabs(double(r[k])) + 2 * std::fabs(double(once[k])));
        err = std::max(err, std::fabs(double(acc[k]) - expected) / denom);
    }
    return err;
}

// ---- Generators of well-conditioned inputs ------------------------------------------

CameraParams random_camera(Rng& rng, bool orthographic) {
    CameraParams p;
    p.position = rng.vec3(-3, 3);
    Vec3 forward = rng.unit_vector();
    p.look_at = p.position + forward * rng.uniform(1, 6);
    Vec3 up;
    do {
        up = rng.unit_vector();
    } while (length(cross(forward, up)) < Real(0.5));
    p.up = up * rng.uniform(0.5, 2);  // need not be unit
    p.fov_degrees = rng.uniform(20, 100);
    p.width = rng.integer(16, 640);
    p.height = rng.integer(16, 480);
    p.orthographic = orthographic;
    return p;
}

// Typical changes: half the distance to look_at, |up| and the fov.
void add_camera_inputs(Problem* pr, const CameraParams& p) {
    Real dist = length(p.look_at - p.position);
    pr->add_vec3(p.position, dist / 2);
    pr->add_vec3(p.look_at, dist / 2);
    pr->add_vec3(p.up, length(p.up));
    pr->add_inputs({p.fov_degrees}, p.fov_degrees);
}

// The differentiable fields of CameraParams or DCameraParams, in the order of add_camera_inputs.
template <typename P>
P read_camera(Reader& r, P p) {
    p.position = r.vec3();
    p.look_at = r.vec3();
    p.up = r.vec3();
    p.fov_degrees = r.real();
    return p;
}

template <typename P>
void write_camera(Writer w, const P& p) {
    w.vec3(p.position);
    w.vec3(p.look_at);
    w.vec3(p.up);
    w.real(p.fov_degrees);
}

// A uv whose bilinear cell coordinates (u w - 0.5, v h - 0.5) are at least `margin` away from
// the cell borders, where the lookup's derivative jumps; u and v range over [-1, 2].
bool uv_away_from_borders(Vec2 uv, int w, int h, double margin) {
    auto ok = [&](double t, int n) {
        if (n == 1) return true;
        double x = t * n - 0.5;
        double f = x - std::floor(x);
        return f > margin && f < 1 - margin;
    };
    return ok(uv.x, w) && ok(uv.y, h);
}

// ---- The problems of each function ----------------------------------------------------

// Adds a returned gradient into d_x.
void add_to(Real* d_x, Vec3 g) {
    for (int k = 0; k < 3; ++k) d_x[k] += g[k];
}

Problem problem_normalize(Rng& rng) {
    Problem pr;
    Vec3 v = rng.unit_vector() * rng.uniform(0.2, 5);
    pr.add_vec3(v, length(v));
    pr.num_outputs = 3;
    pr.forward = [](const Real* x, Real* y) { Writer{y}.vec3(normalize(Vec3::load(x))); };
    pr.adjoint = [](const Real* x, const Real* d_y, Real* d_x) {
        add_to(d_x, d_normalize(Vec3::load(x), Vec3::load(d_y)));
    };
    return pr;
}

Problem problem_length(Rng& rng) {
    Problem pr;
    Vec3 v = rng.unit_vector() * rng.uniform(0.2, 5);
    pr.add_vec3(v, length(v));
    pr.num_outputs = 1;
    pr.forward = [](const Real* x, Real* y) { y[0] = length(Vec3::load(x)); };
    pr.adjoint = [](const Real* x, const Real* d_y, Real* d_x) { add_to(d_x, d_length(Vec3::load(x), d_y[0])); };
    return pr;
}

Problem problem_cross(Rng& rng) {
    Problem pr;
    pr.add_vec3(rng.vec3(-2, 2), 1);
    pr.add_vec3(rng.vec3(-2, 2), 1);
    pr.num_outputs = 3;
    pr.forward = [](const Real* x, Real* y) {
        Reader r{x};
        Vec3 a = r.vec3(), b = r.vec3();
        Writer{y}.vec3(cross(a, b));
    };
    pr.adjoint = [](const Real* x, const Real* d_y, Real* d_x) {
        Reader r{x}, dr{d_x};
        Vec3 a = r.vec3(), b = r.vec3();
        Vec3 d_a = dr.vec3(), d_b = dr.vec3();
        d_cross(a, b, Reader{d_y}.vec3(), &d_a, &d_b);
        Writer w{d_x};
        w.vec3(d_a);
        w.vec3(d_b);
    };
    return pr;
}

// Inputs: camera (10). Outputs: ray origin, direction.
Problem problem_generate_ray(Rng& rng, bool orthographic) {
    Problem pr;
    CameraParams p = random_camera(rng, orthographic);
    Real x = rng.uniform(0, p.width), y = rng.uniform(0, p.height);
    add_camera_inputs(&pr, p);
    pr.num_outputs = 6;
    pr.forward = [p, x, y](const Real* in, Real* out) {
        Reader r{in};
        Ray ray = generate_ray(make_camera(read_camera(r, p)), x, y);
        Writer w{out};
        w.vec3(ray.org);
        w.vec3(ray.dir);
    };
    pr.adjoint = [p, x, y](const Real* in, const Real* d_y, Real* d_x) {
        Reader r{in}, dr{d_y};
        CameraParams c = read_camera(r, p);
        Reader g{d_x};
        DCameraParams d = read_camera(g, DCameraParams{});
        Vec3 d_org = dr.vec3(), d_dir = dr.vec3();
        d_generate_ray(c, x, y, d_org, d_dir, &d);
        write_camera(Writer{d_x}, d);
    };
    return pr;
}

// A point seen by camera p at image-plane coordinates (sx, sy) in about [-1.2, 1.2] and depth
// in [0.3, 3] times the distance to look_at.
Vec3 random_visible_point(Rng& rng, const CameraParams& p) {
    Camera c = make_camera(p);
    Real sx = rng.uniform(-1.2, 1.2), sy = rng.uniform(-1.2, 1.2);
    Real z = rng.uniform(0.3, 3) * length(p.look_at - p.position);
    if (c.orthographic) {
        return c.position + c.forward * z + c.right * (sx * c.half_width) + c.up * (sy * c.half_width * c.aspect);
    }
    return c.position + (c.forward + c.right * (sx * c.tan_half_fov) + c.up * (sy * c.tan_half_fov * c.aspect)) * z;
}

// Inputs: camera (10), point (3). Outputs: pixel coordinates.
Problem problem_project(Rng& rng, bool orthographic) {
    Problem pr;
    CameraParams p = random_camera(rng, orthographic);
    add_camera_inputs(&pr, p);
    pr.add_vec3(random_visible_point(rng, p), length(p.look_at - p.position) / 2);
    pr.num_outputs = 2;
    pr.forward = [p](const Real* in, Real* out) {
        Reader r{in};
        CameraParams c = read_camera(r, p);
        Vec3 point = r.vec3();
        Vec2 s(0, 0);
        project(make_camera(c), point, &s);
        Writer{out}.vec2(s);
    };
    pr.adjoint = [p](const Real* in, const Real* d_y, Real* d_x) {
        Reader r{in};
        CameraParams c = read_camera(r, p);
        Vec3 point = r.vec3();
        Reader g{d_x};
        DCameraParams d = read_camera(g, DCameraParams{});
        Vec3 d_point = g.vec3();
        d_project(c, point, Reader{d_y}.vec2(), &d, &d_point);
        write_camera(Writer{d_x}, d);
        Writer{d_x + 10}.vec3(d_point);
    };
    return pr;
}

// Inputs: o, d, v0, v1, v2. Outputs: t, b1, b2.
Problem problem_intersect_triangle(Rng& rng) {
    Problem pr;
    Vec3 v0 = rng.vec3(-2, 2), e1, e2;
    do {
        e1 = rng.vec3(-2, 2);
        e2 = rng.vec3(-2, 2);
    } while (length(cross(e1, e2)) < Real(0.3) * length(e1) * length(e2) || length(e1) < Real(0.3) ||
             length(e2) < Real(0.3));
    Vec3 n = normalize(cross(e1, e2));
    Real b1 = rng.uniform(-0.5, 1.5), b2 = rng.uniform(-0.5, 1.5);
    Vec3 hit = v0 + e1 * b1 + e2 * b2;
    Vec3 d;
    do {
        d = rng.unit_vector();
    } while (std::fabs(dot(d, n)) < Real(0.3));
    d = d * rng.uniform(0.5, 2);
    Vec3 o = hit - d * rng.uniform(0.5, 5);
    for (Vec3 v : {o, d, v0, v0 + e1, v0 + e2}) pr.add_vec3(v, Real(0.5));
    pr.num_outputs = 3;
    pr.forward = [](const Real* in, Real* out) {
        Reader r{in};
        Vec3 o = r.vec3(), d = r.vec3(), a = r.vec3(), b = r.vec3(), c = r.vec3();
        out[0] = out[1] = out[2] = 0;
        intersect_triangle(o, d, a, b, c, &out[0], &out[1], &out[2]);
    };
    pr.adjoint = [](const Real* in, const Real* d_y, Real* d_x) {
        Reader r{in};
        Vec3 o = r.vec3(), d = r.vec3(), a = r.vec3(), b = r.vec3(), c = r.vec3();
        Vec3 g[5];
        for (int k = 0; k < 5; ++k) g[k] = Vec3::load(d_x + 3 * k);
        d_intersect_triangle(o, d, a, b, c, d_y[0], d_y[1], d_y[2], &g[0], &g[1], &g[2], &g[3], &g[4]);
        Writer w{d_x};
        for (int k = 0; k < 5; ++k) w.vec3(g[k]);
    };
    return pr;
}

Problem problem_ggx_d(Rng& rng) {
    Problem pr;
    Real alpha = rng.uniform(0.1, 1);
    pr.add_inputs({rng.uniform(0.2, 0.98), alpha}, alpha / 2);  // D's peak is about alpha wide
    pr.num_outputs = 1;
    pr.forward = [](const Real* x, Real* y) { y[0] = ggx_d(x[0], x[1]); };
    pr.adjoint = [](const Real* x, const Real* d_y, Real* d_x) { d_ggx_d(x[0], x[1], d_y[0], &d_x[0], &d_x[1]); };
    return pr;
}

Problem problem_smith_g1(Rng& rng) {
    Problem pr;
    pr.add_inputs({rng.uniform(0.1, 0.95)}, Real(0.1));
    pr.add_inputs({rng.uniform(0.1, 1)}, Real(0.5));
    pr.num_outputs = 1;
    pr.forward = [](const Real* x, Real* y) { y[0] = smith_g1(x[0], x[1]); };
    pr.adjoint = [](const Real* x, const Real* d_y, Real* d_x) { d_smith_g1(x[0], x[1], d_y[0], &d_x[0], &d_x[1]); };
    return pr;
}

// The terminator factor inside its band (wi just above the geometric horizon), as a function of
// raw (unnormalised) normals.
Problem problem_terminator(Rng& rng) {
    Problem pr;
    // t = elevation / tilt stays within [0.25, 0.8], away from the band's ends where S'' jumps.
    Real tilt = rng.uniform(0.1, 0.3);  // radians between ns and ng
    Real elevation = tilt * rng.uniform(0.35, 0.65);
    pr.add_vec3(Vec3(rng.uniform(-0.01, 0.01), rng.uniform(-0.01, 0.01), 1), Real(0.005));
    pr.add_vec3(Vec3(std::sin(tilt), 0, std::cos(tilt)), Real(0.005));
    Real phi = rng.uniform(-0.5, 0.5);
    pr.add_vec3(Vec3(std::cos(elevation) * std::cos(phi), std::cos(elevation) * std::sin(phi), std::sin(elevation)),
                Real(0.005));
    pr.num_outputs = 1;
    pr.forward = [](const Real* x, Real* y) {
        y[0] = terminator(normalize(Vec3::load(x)), normalize(Vec3::load(x + 3)), Vec3::load(x + 6));
    };
    pr.adjoint = [](const Real* x, const Real* d_y, Real* d_x) {
        Vec3 a = Vec3::load(x), b = Vec3::load(x + 3), wi = Vec3::load(x + 6);
        Vec3 d_ng(0), d_ns(0), d_wi(0);
        d_terminator(normalize(a), normalize(b), wi, d_y[0], &d_ng, &d_ns, &d_wi);
        Vec3 g0 = d_normalize(a, d_ng), g1 = d_normalize(b, d_ns);
        for (int k = 0; k < 3; ++k) {
            d_x[k] += g0[k];
            d_x[3 + k] += g1[k];
            d_x[6 + k] += d_wi[k];
        }
    };
    return pr;
}

// small_f0: specular colours below 0.02, where the grazing reflectance F90 depends on f0.
Problem problem_schlick_fresnel(Rng& rng, bool small_f0) {
    Problem pr;
    if (small_f0) {
        pr.add_vec3(rng.vec3(0.001, 0.015), Real(0.01));
    } else {
        pr.add_vec3(rng.vec3(0.05, 1), 1);
    }
    pr.add_inputs({rng.uniform(0.05, 0.95)}, Real(0.05));
    pr.num_outputs = 3;
    pr.forward = [](const Real* x, Real* y) { Writer{y}.vec3(schlick_fresnel(Vec3::load(x), x[3])); };
    pr.adjoint = [](const Real* x, const Real* d_y, Real* d_x) {
        Vec3 d_f0 = Vec3::load(d_x);
        d_schlick_fresnel(Vec3::load(x), x[3], Vec3::load(d_y), &d_f0, &d_x[3]);
        Writer{d_x}.vec3(d_f0);
    };
    return pr;
}

// A shading configuration away from grazing angles and from the clamps of G1 and Schlick;
// one in five has wo below the shading normal (diffuse lobe only).
struct ShadingConfig {
    BSDFParams p;
    Vec3 n, wo, wi;
};

ShadingConfig random_shading(Rng& rng) {
    ShadingConfig s;
    s.p.kd = rng.vec3(0, 1);
    s.p.ks = rng.vec3(0.02, 1);
    s.p.alpha = rng.uniform(0.1, 1);
    s.n = rng.unit_vector();
    bool below = rng.uniform() < 0.2;
    do {
        s.wo = below ? rng.unit_vector_at(s.n, -0.95, -0.15) : rng.unit_vector_at(s.n, 0.15, 0.95);
        s.wi = rng.unit_vector_at(s.n, 0.15, 0.95);
    } while (dot(s.wo, s.wi) > Real(0.9));
    return s;
}

// The fields of BSDFParams or DBSDFParams.
template <typename P>
P read_bsdf(Reader& r) {
    P p;
    p.kd = r.vec3();
    p.ks = r.vec3();
    p.alpha = r.real();
    return p;
}

// Inputs: kd, ks, alpha, n, wo, wi. Outputs: f.
Problem problem_bsdf_eval_world(Rng& rng) {
    Problem pr;
    ShadingConfig s = random_shading(rng);
    pr.add_vec3(s.p.kd, 1);
    pr.add_vec3(s.p.ks, 1);
    Real width = s.p.alpha;  // of the specular peak, in angle and in alpha
    pr.add_inputs({s.p.alpha}, width);
    pr.add_vec3(s.n, width);
    pr.add_vec3(s.wo, width);
    pr.add_vec3(s.wi, width);
    pr.num_outputs = 3;
    pr.forward = [](const Real* in, Real* out) {
        Reader r{in};
        BSDFParams p = read_bsdf<BSDFParams>(r);
        Vec3 n = r.vec3(), wo = r.vec3(), wi = r.vec3();
        Writer{out}.vec3(bsdf_eval_world(p, n, wo, wi));
    };
    pr.adjoint = [](const Real* in, const Real* d_y, Real* d_x) {
        Reader r{in}, g{d_x};
        BSDFParams p = read_bsdf<BSDFParams>(r);
        Vec3 n = r.vec3(), wo = r.vec3(), wi = r.vec3();
        DBSDFParams d_p = read_bsdf<DBSDFParams>(g);
        Vec3 d_n = g.vec3(), d_wo = g.vec3(), d_wi = g.vec3();
        d_bsdf_eval_world(p, n, wo, wi, Vec3::load(d_y), &d_p, &d_n, &d_wo, &d_wi);
        Writer w{d_x};
        w.vec3(d_p.kd);
        w.vec3(d_p.ks);
        w.real(d_p.alpha);
        w.vec3(d_n);
        w.vec3(d_wo);
        w.vec3(d_wi);
    };
    return pr;
}

// Appends a texture of the given size to a texel buffer, after random padding (so that its
// offset is tested).
Texture random_texture(Rng& rng, std::vector<Real>* texels, int width, int height, int channels, double lo,
                       double hi) {
    int pad = rng.integer(0, 5);
    for (int k = 0; k < pad; ++k) texels->push_back(rng.uniform(lo, hi));
    Texture t{int(texels->size()), width, height, channels};
    for (int k = 0; k < width * height * channels; ++k) texels->push_back(rng.uniform(lo, hi));
    return t;
}

Vec2 random_uv(Rng& rng, const Texture* textures, int count) {
    for (;;) {
        Vec2 uv(rng.uniform(-1, 2), rng.uniform(-1, 2));
        bool ok = true;
        for (int k = 0; k < count; ++k) {
            ok = ok && uv_away_from_borders(uv, textures[k].width, textures[k].height, 0.05);
        }
        if (ok) return uv;
    }
}

// Inputs: the texel buffer, uv. Outputs: the lookup (3 channels, or .x for 1 channel).
Problem problem_texture_lookup(Rng& rng, int channels, bool one_by_one) {
    Problem pr;
    std::vector<Real> texels;
    int w = one_by_one ? 1 : rng.integer(1, 6), h = one_by_one ? 1 : rng.integer(1, 6);
    if (!one_by_one && w * h == 1) w = 2;
    Texture tex = random_texture(rng, &texels, w, h, channels, 0, 1);
    for (int k = 0; k < rng.integer(0, 3); ++k) texels.push_back(rng.uniform(0, 1));
    for (Real v : texels) pr.add_inputs({v}, 1);
    Vec2 uv = random_uv(rng, &tex, 1);
    pr.add_inputs({uv.x, uv.y}, Real(1) / Real(std::max(w, h)));  // a step of 1/100 texel
    int n = int(texels.size());
    pr.num_outputs = channels;
    pr.forward = [tex, n](const Real* in, Real* out) {
        Vec3 v = texture_lookup(in, tex, Vec2(in[n], in[n + 1]));
        for (int k = 0; k < tex.channels; ++k) out[k] = v[k];
    };
    pr.adjoint = [tex, n](const Real* in, const Real* d_y, Real* d_x) {
        // 1 channel: only d_value.x may be used (the others are the lookup's copies of .x).
        Vec3 d_value = tex.channels == 3 ? Vec3::load(d_y) : Vec3(d_y[0], Real(0.37), Real(-0.81));
        ArraySink sink{d_x};
        Vec2 d_uv(d_x[n], d_x[n + 1]);
        d_texture_lookup(in, tex, Vec2(in[n], in[n + 1]), d_value, sink, &d_uv);
        d_x[n] = d_uv.x;
        d_x[n + 1] = d_uv.y;
    };
    return pr;
}

// Inputs: the texel buffer (diffuse, specular, roughness), uv. Outputs: kd, ks, alpha.
Problem problem_eval_material(Rng& rng) {
    Problem pr;
    std::vector<Real> texels;
    auto size = [&]() { return rng.uniform() < 0.25 ? 1 : rng.integer(1, 5); };
    Material m;
    m.diffuse = random_texture(rng, &texels, size(), size(), 3, 0, 1);
    m.specular = random_texture(rng, &texels, size(), size(), 3, 0, 1);
    // Roughness clamped below kMinAlpha or above kMaxAlpha (no gradient) in a quarter of the cases.
    Real r = rng.uniform();
    Real lo = r < 0.125 ? Real(-0.5) : (r < 0.25 ? kMaxAlpha * Real(1.5) : Real(0.2));
    Real hi = r < 0.125 ? Real(-0.05) : (r < 0.25 ? kMaxAlpha * Real(3) : Real(0.9));
    m.roughness = random_texture(rng, &texels, size(), size(), 1, lo, hi);
    m.two_sided = 0;
    for (Real v : texels) pr.add_inputs({v}, 1);
    Texture all[3] = {m.diffuse, m.specular, m.roughness};
    Vec2 uv = random_uv(rng, all, 3);
    int cells = 1;
    for (const Texture& t : all) cells = std::max({cells, t.width, t.height});
    pr.add_inputs({uv.x, uv.y}, Real(1) / Real(cells));
    int n = int(texels.size());
    pr.num_outputs = 7;
    pr.forward = [m, n](const Real* in, Real* out) {
        BSDFParams p = eval_material(in, m, Vec2(in[n], in[n + 1]));
        Writer w{out};
        w.vec3(p.kd);
        w.vec3(p.ks);
        w.real(p.alpha);
    };
    pr.adjoint = [m, n](const Real* in, const Real* d_y, Real* d_x) {
        Reader r{d_y};
        DBSDFParams d_p = read_bsdf<DBSDFParams>(r);
        ArraySink sink{d_x};
        Vec2 d_uv(d_x[n], d_x[n + 1]);
        d_eval_material(in, m, Vec2(in[n], in[n + 1]), d_p, sink, &d_uv);
        d_x[n] = d_uv.x;
        d_x[n + 1] = d_uv.y;
    };
    return pr;
}

// A direction away from the poles whose envmap texel coordinates are away from cell borders
// (and, with away_from_seam, whose u is away from the seam u = 0 = 1, where uv jumps).
Vec3 random_envmap_direction(Rng& rng, int width, int height, bool away_from_seam) {
    for (;;) {
        Vec2 uv(away_from_seam ? rng.uniform(0.05, 0.95) : rng.uniform(0, 1), rng.uniform(0.07, 0.93));
        if (!uv_away_from_borders(uv, width, height, 0.1)) continue;
        Real sin_theta;
        return envmap_uv_to_direction(uv, &sin_theta);
    }
}

Problem problem_direction_to_envmap_uv(Rng& rng) {
    Problem pr;
    pr.add_vec3(random_envmap_direction(rng, 1, 1, true), Real(0.2));
    pr.num_outputs = 2;
    pr.forward = [](const Real* in, Real* out) { Writer{out}.vec2(direction_to_envmap_uv(Vec3::load(in))); };
    pr.adjoint = [](const Real* in, const Real* d_y, Real* d_x) {
        add_to(d_x, d_direction_to_envmap_uv(Vec3::load(in), Vec2(d_y[0], d_y[1])));
    };
    return pr;
}

// Inputs: the envmap's values [h, w, 3], dir (any length). Outputs: the radiance.
Problem problem_envmap_eval(Rng& rng) {
    Problem pr;
    int w = rng.integer(2, 16), h = rng.integer(2, 8);
    for (int k = 0; k < w * h * 3; ++k) pr.add_inputs({rng.uniform(0, 2)}, 1);
    Vec3 dir = random_envmap_direction(rng, w, h, false) * rng.uniform(0.5, 2);
    pr.add_vec3(dir, 4 * length(dir) / Real(std::max(w, h)));  // a step of about 1/30 texel
    int n = w * h * 3;
    pr.num_outputs = 3;
    auto env_of = [w, h](const Real* in) {
        EnvmapData env;
        env.values = in;
        env.width = w;
        env.height = h;
        return env;
    };
    pr.forward = [env_of, n](const Real* in, Real* out) {
        Writer{out}.vec3(envmap_eval(env_of(in), Vec3::load(in + n)));
    };
    pr.adjoint = [env_of, n](const Real* in, const Real* d_y, Real* d_x) {
        ArraySink sink{d_x};
        Vec3 d_dir = Vec3::load(d_x + n);
        d_envmap_eval(env_of(in), Vec3::load(in + n), Vec3::load(d_y), sink, &d_dir);
        Writer{d_x + n}.vec3(d_dir);
    };
    return pr;
}

// ---- Deliberately wrong adjoints (negative controls) ------------------------------------

Problem control_normalize_sign(Rng& rng) {
    Problem pr = problem_normalize(rng);
    pr.adjoint = [](const Real* x, const Real* d_y, Real* d_x) {
        add_to(d_x, -d_normalize(Vec3::load(x), Vec3::load(d_y)));
    };
    return pr;
}

Problem control_normalize_missing_term(Rng& rng) {
    Problem pr = problem_normalize(rng);
    pr.adjoint = [](const Real* x, const Real* d_y, Real* d_x) {
        add_to(d_x, Vec3::load(d_y) / length(Vec3::load(x)));  // without the projection
    };
    return pr;
}

// One input component wrong by 10%: the fov gradient of the perspective camera.
Problem control_camera_fov_scaled(Rng& rng) {
    Problem pr = problem_generate_ray(rng, false);
    auto right = pr.adjoint;
    pr.adjoint = [right](const Real* x, const Real* d_y, Real* d_x) {
        Real before = d_x[9];
        right(x, d_y, d_x);
        d_x[9] = before + (d_x[9] - before) * Real(1.1);
    };
    return pr;
}

// The whole BSDF gradient wrong by a factor 2.
Problem control_bsdf_factor_two(Rng& rng) {
    Problem pr = problem_bsdf_eval_world(rng);
    auto right = pr.adjoint;
    pr.adjoint = [right](const Real* x, const Real* d_y, Real* d_x) {
        std::vector<Real> twice(d_y, d_y + 3);
        for (Real& v : twice) v *= 2;
        right(x, twice.data(), d_x);
    };
    return pr;
}

// Overwrites instead of adding.
Problem control_cross_overwrites(Rng& rng) {
    Problem pr = problem_cross(rng);
    pr.adjoint = [](const Real* x, const Real* d_y, Real* d_x) {
        Reader r{x};
        Vec3 a = r.vec3(), b = r.vec3();
        Vec3 d_a(0), d_b(0);
        d_cross(a, b, Reader{d_y}.vec3(), &d_a, &d_b);
        Writer w{d_x};
        w.vec3(d_a);
        w.vec3(d_b);
    };
    return pr;
}

// ---- Identities of the forward functions ------------------------------------------------

// The ray through project(p) passes through p: distance from the ray's line, relative.
double project_inverse_error(Rng& rng, bool orthographic) {
    CameraParams p = random_camera(rng, orthographic);
    Camera c = make_camera(p);
    Vec3 point = random_visible_point(rng, p);
    Vec2 s;
    if (!project(c, point, &s)) return 1;
    // A point behind the camera is rejected.
    Vec2 unused;
    if (project(c, c.position - c.forward * rng.uniform(0.1, 3) + c.right * rng.uniform(-1, 1), &unused)) return 1;
    Ray ray = generate_ray(c, s.x, s.y);
    Vec3 v = point - ray.org;
    Vec3 dir = normalize(ray.dir);
    return double(length(v - dir * dot(v, dir))) / double(length(v));
}

double bsdf_world_vs_local_error(Rng& rng) {
    ShadingConfig s = random_shading(rng);
    Frame frame(s.n);
    Vec3 a = bsdf_eval_world(s.p, s.n, s.wo, s.wi);
    Vec3 b = bsdf_eval(s.p, frame.to_local(s.wo), frame.to_local(s.wi));
    Real pa = bsdf_pdf_world(s.p, s.n, s.wo, s.wi);
    Real pb = bsdf_pdf(s.p, frame.to_local(s.wo), frame.to_local(s.wi));
    auto rel = [](Real u, Real v) { return std::fabs(double(u) - double(v)) / std::max(1e-6, std::fabs(double(v))); };
    return std::max({rel(pa, pb), rel(a.x, b.x), rel(a.y, b.y), rel(a.z, b.z)});
}

double intersect_triangle_plane_error(Rng& rng) {
    Problem pr = problem_intersect_triangle(rng);
    Reader r{pr.x.data()};
    Vec3 o = r.vec3(), d = r.vec3(), v0 = r.vec3(), v1 = r.vec3(), v2 = r.vec3();
    Real t, b1, b2;
    if (!intersect_triangle(o, d, v0, v1, v2, &t, &b1, &b2)) return 1;
    Vec3 a = o + d * t, b = v0 * (1 - b1 - b2) + v1 * b1 + v2 * b2;
    double scale = std::max({double(length(o)), double(length(v0)), double(length(v1)), double(length(v2)), 1.0});
    double err = double(length(a - b)) / scale;
    // A ray parallel to the plane, and a degenerate triangle, are rejected (exact zeros).
    Real tt, u1, u2;
    Vec3 z(0), x(1, 0, 0), y(0, 1, 0);
    if (intersect_triangle(Vec3(0, 0, 1), Vec3(1, 1, 0), z, x, y, &tt, &u1, &u2)) err = std::max(err, 1.0);
    if (intersect_triangle(Vec3(0, 0, 1), Vec3(0.3f, 0.5f, -0.7f), z, x, x * 2, &tt, &u1, &u2)) {
        err = std::max(err, 1.0);
    }
    return err;
}

}  // namespace

std::vector<AdjointCheckResult> run_adjoint_checks(uint64_t seed, int trials) {
    using Generator = std::function<Problem(Rng&)>;
    struct Entry {
        std::string name;
        Generator generate;
        bool accumulates;  // the adjoint adds through pointers: check it
    };
    std::vector<Entry> entries = {
        {"d_normalize", problem_normalize, false},
        {"d_length", problem_length, false},
        {"d_cross", problem_cross, true},
        {"d_generate_ray[perspective]", [](Rng& r) { return problem_generate_ray(r, false); }, true},
        {"d_generate_ray[orthographic]", [](Rng& r) { return problem_generate_ray(r, true); }, true},
        {"d_project[perspective]", [](Rng& r) { return problem_project(r, false); }, true},
        {"d_project[orthographic]", [](Rng& r) { return problem_project(r, true); }, true},
        {"d_intersect_triangle", problem_intersect_triangle, true},
        {"d_ggx_d", problem_ggx_d, true},
        {"d_smith_g1", problem_smith_g1, true},
        {"d_schlick_fresnel", [](Rng& r) { return problem_schlick_fresnel(r, false); }, true},
        {"d_schlick_fresnel[small f0]", [](Rng& r) { return problem_schlick_fresnel(r, true); }, true},
        {"d_bsdf_eval_world", problem_bsdf_eval_world, true},
        {"d_terminator", problem_terminator, true},
        {"d_texture_lookup[rgb]", [](Rng& r) { return problem_texture_lookup(r, 3, false); }, true},
        {"d_texture_lookup[gray]", [](Rng& r) { return problem_texture_lookup(r, 1, false); }, true},
        {"d_texture_lookup[1x1]", [](Rng& r) { return problem_texture_lookup(r, 3, true); }, true},
        {"d_eval_material", problem_eval_material, true},
        {"d_direction_to_envmap_uv", problem_direction_to_envmap_uv, false},
        {"d_envmap_eval", problem_envmap_eval, true},
    };
    std::vector<Entry> controls = {
        {"control:d_normalize_wrong_sign", control_normalize_sign, false},
        {"control:d_normalize_missing_term", control_normalize_missing_term, false},
        {"control:d_generate_ray_fov_10_percent", control_camera_fov_scaled, false},
        {"control:d_bsdf_eval_world_factor_two", control_bsdf_factor_two, false},
    };
    std::vector<AdjointCheckResult> results;
    if (trials < 1) return results;
    uint64_t stream = 0;
    // The errors of `trials` runs of `trial`, each check with its own random stream.
    auto errors = [&](const std::function<double(Rng&)>& trial) {
        Rng rng(seed * 1000003ull + (++stream));
        std::vector<double> e;
        for (int t = 0; t < trials; ++t) e.push_back(trial(rng));
        return e;
    };
    auto max_of = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
    // A control reports the median of its trials' errors: the harness must flag a wrong adjoint
    // on typical inputs, not only on a lucky one.
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    for (const Entry& e : entries) {
        double acc_err = 0;
        double grad_err = max_of(errors([&](Rng& rng) {
            Problem pr = e.generate(rng);
            if (e.accumulates) acc_err = std::max(acc_err, accumulation_error(pr, rng));
            return gradient_error(pr, rng);
        }));
        results.push_back({e.name, grad_err, trials});
        if (e.accumulates) results.push_back({e.name + ":accumulates", acc_err, trials});
    }
    for (const Entry& e : controls) {
        results.push_back({e.name, median(errors([&](Rng& rng) { return gradient_error(e.generate(rng), rng); })),
                           trials});
    }
    results.push_back({"control:d_cross_overwrites:accumulates",
                       median(errors([](Rng& rng) { return accumulation_error(control_cross_overwrites(rng), rng); })),
                       trials});
    results.push_back({"forward:project_inverts_generate_ray[perspective]",
                       max_of(errors([](Rng& r) { return project_inverse_error(r, false); })), trials});
    results.push_back({"forward:project_inverts_generate_ray[orthographic]",
                       max_of(errors([](Rng& r) { return project_inverse_error(r, true); })), trials});
    results.push_back({"forward:bsdf_eval_world_matches_local", max_of(errors(bsdf_world_vs_local_error)), trials});
    results.push_back({"forward:intersect_triangle_on_plane", max_of(errors(intersect_triangle_plane_error)), trials});
    return results;
}

}  // namespace rt
