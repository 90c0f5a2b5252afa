// bindings.cpp: the only file that knows about Python.
//
// Arrays cross as numpy buffers (torch tensors are passed with .numpy(), zero-copy). The
// Python package validates every argument with messages for users; this layer checks again
// what could crash the process (dtype, shape, contiguity, index ranges) and raises
// ValueError, so a caller that skips the Python layer still cannot corrupt memory. Counts
// cross as 64-bit integers and are checked against limits.h before they are narrowed.
//
// Long calls (render, render_backward, intersect) run without the GIL and stop on Ctrl-C:
// see run_interruptible.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/adjoint_check.h"
#include "core/backward.h"
#include "core/cancel.h"
#include "core/edges.h"
#include "core/light.h"
#include "core/limits.h"
#include "core/parallel.h"
#include "core/path_tracer.h"
#include "core/scene.h"
#ifdef RT_WITH_CUDA
#include "cuda/backend.h"
#endif

namespace py = pybind11;
using namespace rt;

namespace {

using FloatArray = py::array_t<float, py::array::c_style>;
using IntArray = py::array_t<int32_t, py::array::c_style>;

[[noreturn]] void fail(const std::string& msg) { throw py::value_error(msg); }

// A count from Python, checked against its bound before it is narrowed (check_count's
// std::invalid_argument reaches Python as a ValueError naming it).
int count(int64_t value, int64_t lo, int64_t hi, const char* name) {
    check_count(value, lo, hi, name);
    return int(value);
}

// How often a thread waiting for the core runs Python's signal handlers.
constexpr std::chrono::milliseconds kSignalPoll(50);
// Intersect calls up to this many rays take milliseconds at most: they run on the calling
// thread (starting the waiting thread of run_interruptible would double their cost).
constexpr py::ssize_t kInlineRays = 1024;

// Runs `work` (a call of the core) on a thread of its own and waits for it without the GIL,
// taking the GIL every kSignalPoll to run Python's signal handlers (PyErr_CheckSignals). When a
// handler raises (KeyboardInterrupt on Ctrl-C), the work's CancelFlag is set, so its kernels
// stop within a sample or so and it throws rt::Cancelled; once it has stopped, the handler's
// exception is raised here. Any other exception of the work is rethrown here. (Signal handlers
// run in the main thread only: a call from another thread runs to the end.)
template <typename Work>
void run_interruptible(Work&& work) {
    CancelFlag cancel{false};
    std::mutex mutex;
    std::condition_variable finished;
    bool done = false;
    bool interrupted = false;
    std::exception_ptr error;
    {
        py::gil_scoped_release release;
        std::thread runner([&] {
            try {
                CancelScope scope(&cancel);
                work();
            } catch (...) {
                error = std::current_exception();
            }
            std::lock_guard<std::mutex> lock(mutex);
            done = true;
            finished.notify_all();
        });
        for (;;) {
            {
                std::unique_lock<std::mutex> lock(mutex);
                if (finished.wait_for(lock, kSignalPoll, [&] { return done; })) break;
            }
            if (!interrupted) {
                py::gil_scoped_acquire gil;
                if (PyErr_CheckSignals() != 0) {  // the handler's exception stays set
                    interrupted = true;
                    cancel.store(true);
                }
            }
        }
        runner.join();
    }
    if (interrupted) throw py::error_already_set();
    if (error) std::rethrow_exception(error);
}

// A C-contiguous float32 array of the given shape (-1: any extent).
FloatArray as_floats(const py::handle& obj, const char* name, std::vector<py::ssize_t> shape) {
    if (!py::isinstance<py::array>(obj)) fail(std::string(name) + " must be a numpy array");
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (!a.dtype().is(py::dtype::of<float>())) fail(std::string(name) + " must be float32");
    if (!(a.flags() & py::array::c_style)) fail(std::string(name) + " must be C-contiguous");
    if (a.ndim() != py::ssize_t(shape.size())) fail(std::string(name) + " has the wrong number of dimensions");
    for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] >= 0 && a.shape(i) != shape[i]) fail(std::string(name) + " has the wrong shape");
    }
    return py::reinterpret_borrow<FloatArray>(a);
}

IntArray as_ints(const py::handle& obj, const char* name, std::vector<py::ssize_t> shape) {
    if (!py::isinstance<py::array>(obj)) fail(std::string(name) + " must be a numpy array");
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (!a.dtype().is(py::dtype::of<int32_t>())) fail(std::string(name) + " must be int32");
    if (!(a.flags() & py::array::c_style)) fail(std::string(name) + " must be C-contiguous");
    if (a.ndim() != py::ssize_t(shape.size())) fail(std::string(name) + " has the wrong number of dimensions");
    for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] >= 0 && a.shape(i) != shape[i]) fail(std::string(name) + " has the wrong shape");
    }
    return py::reinterpret_borrow<IntArray>(a);
}

void check_finite(const float* p, size_t n, const char* name) {
    for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(p[i])) fail(std::string(name) + " contains NaN or Inf");
    }
}

#ifdef RT_WITH_CUDA
// A C-contiguous array in GPU memory, read from an object's __cuda_array_interface__ (a torch CUDA
// tensor has one): the pointer, the shape and the GPU it lies on.
struct DeviceArray {
    void* ptr;
    std::vector<int64_t> shape;
    int device;
};

DeviceArray device_array(const py::handle& obj, const char* name, const char* typestr, std::vector<int64_t> shape,
                         bool writeable) {
    std::string n(name);
    if (!py::hasattr(obj, "__cuda_array_interface__")) fail(n + " must be a CUDA array (a torch tensor on a GPU)");
    py::dict cai = obj.attr("__cuda_array_interface__");
    if (cai["typestr"].cast<std::string>() != typestr) fail(n + " must have dtype " + typestr);
    py::tuple sh = cai["shape"];
    if (sh.size() != shape.size()) fail(n + " has the wrong number of dimensions");
    DeviceArray a;
    int64_t elements = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
        int64_t extent = sh[i].cast<int64_t>();
        if (shape[i] >= 0 && extent != shape[i]) fail(n + " has the wrong shape");
        a.shape.push_back(extent);
        elements *= extent;
    }
    if (cai.contains("strides") && !cai["strides"].is_none()) {
        // C-contiguous strides given explicitly are fine; anything else is not.
        py::tuple st = cai["strides"];
        int64_t expect = (std::string(typestr) == "<i8" || std::string(typestr) == "<f8") ? 8 : 4;
        for (size_t i = shape.size(); i-- > 0;) {
            if (a.shape[i] > 1 && st[i].cast<int64_t>() != expect) fail(n + " must be C-contiguous");
            expect *= a.shape[i];
        }
    }
    py::tuple data = cai["data"];
    a.ptr = reinterpret_cast<void*>(data[0].cast<uintptr_t>());
    if (writeable && data[1].cast<bool>()) fail(n + " must be writeable");
    a.device = -1;
    if (elements > 0) {
        a.device = cuda::pointer_device(a.ptr);
        if (a.device < 0) fail(n + " does not point into GPU memory");
    }
    return a;
}
#endif

Vec3 as_vec3(const py::handle& obj, const char* name) {
    FloatArray a = as_floats(obj, name, {3});
    check_finite(a.data(), 3, name);
    return Vec3::load(a.data());
}

BSDFParams as_bsdf(const py::handle& kd, const py::handle& ks, float roughness) {
    BSDFParams p;
    p.kd = as_vec3(kd, "kd");
    p.ks = as_vec3(ks, "ks");
    if (!(roughness > 0) || !std::isfinite(roughness)) fail("roughness must be positive and finite");
    p.alpha = ggx_alpha(roughness);
    return p;
}

// An envmap built from values alone, for the sampler tests.
struct EnvmapHolder {
    SceneData data;
    explicit EnvmapHolder(const py::handle& values) {
        FloatArray v = as_floats(values, "values", {-1, -1, 3});
        if (v.shape(0) < 1 || v.shape(1) < 1) fail("values must not be empty");
        check_finite(v.data(), size_t(v.size()), "values");
        data.set_envmap(v.data(), int(v.shape(1)), int(v.shape(0)));
    }
    EnvmapData env() const { return data.view().envmap; }
};

class CoreScene {
public:
    void set_shapes(const py::list& shapes, bool rebuild, int64_t threads) {
        int num_threads = count(threads, 0, kMaxThreads, "threads");
        std::vector<SceneData::ShapeInput> inputs;
        std::vector<py::object> keep;  // keeps the arrays alive during the call
        for (size_t i = 0; i < shapes.size(); ++i) {
            py::tuple t = shapes[i].cast<py::tuple>();
            if (t.size() != 5) fail("each shape is (vertices, indices, uvs, normals, material_id)");
            FloatArray v = as_floats(t[0], "vertices", {-1, 3});
            IntArray f = as_ints(t[1], "indices", {-1, 3});
            int nv = count(v.shape(0), 0, kMaxIndex / 3, "the number of vertices of a shape");
            int nf = count(f.shape(0), 0, kMaxIndex / 3, "the number of triangles of a shape");
            if (nv == 0 || nf == 0) fail("shapes[" + std::to_string(i) + "] is empty");
            check_finite(v.data(), size_t(v.size()), "vertices");
            const int32_t* fd = f.data();
            for (py::ssize_t k = 0; k < f.size(); ++k) {
                if (fd[k] < 0 || fd[k] >= nv) fail("shapes[" + std::to_string(i) + "].indices out of range");
            }
            SceneData::ShapeInput in{v.data(), nv, fd, nf, nullptr, nullptr, t[4].cast<int>()};
            if (!t[2].is_none()) {
                FloatArray uv = as_floats(t[2], "uvs", {nv, 2});
                check_finite(uv.data(), size_t(uv.size()), "uvs");
                in.uvs = uv.data();
                keep.push_back(uv);
            }
            if (!t[3].is_none()) {
                FloatArray n = as_floats(t[3], "normals", {nv, 3});
                check_finite(n.data(), size_t(n.size()), "normals");
                in.normals = n.data();
                keep.push_back(n);
            }
            keep.push_back(v);
            keep.push_back(f);
            inputs.push_back(in);
        }
        if (!rebuild) {
            require_shapes();
            py::gil_scoped_release release;  // a refit takes milliseconds
            data_.set_shapes(inputs, false, num_threads);
            return;
        }
        // A rebuild interrupted by Ctrl-C leaves the BVH half-built: nothing may use the shapes
        // until a rebuild completes.
        shapes_ready_ = false;
        run_interruptible([&] {
            data_.set_shapes(inputs, true, num_threads);
            throw_if_cancelled();
            edges_ = build_edges(data_.view());
        });
        shapes_ready_ = true;
    }

    void require_shapes() const {
        if (!shapes_ready_) fail("the scene's shapes are not set: the last rebuild of the BVH was interrupted");
    }

    void set_materials(const py::list& materials) {
        std::vector<SceneData::MaterialInput> inputs;
        std::vector<py::object> keep;
        for (size_t i = 0; i < materials.size(); ++i) {
            py::tuple t = materials[i].cast<py::tuple>();
            if (t.size() != 4) fail("each material is (diffuse, specular, roughness, two_sided)");
            FloatArray d = as_floats(t[0], "diffuse", {-1, -1, 3});
            FloatArray s = as_floats(t[1], "specular", {-1, -1, 3});
            FloatArray r = as_floats(t[2], "roughness", {-1, -1, 1});
            for (auto* a : {&d, &s, &r}) {
                if (a->shape(0) < 1 || a->shape(1) < 1) fail("material textures must not be empty");
                check_finite(a->data(), size_t(a->size()), "material texture");
            }
            inputs.push_back({d.data(), int(d.shape(1)), int(d.shape(0)), s.data(), int(s.shape(1)),
                              int(s.shape(0)), r.data(), int(r.shape(1)), int(r.shape(0)), t[3].cast<bool>()});
            keep.push_back(d);
            keep.push_back(s);
            keep.push_back(r);
        }
        data_.set_materials(inputs);
        num_materials_ = int(materials.size());
    }

    void set_lights(const py::list& lights) {
        std::vector<SceneData::LightInput> inputs;
        for (size_t i = 0; i < lights.size(); ++i) {
            py::tuple t = lights[i].cast<py::tuple>();
            int shape_id = t[0].cast<int>();
            if (shape_id < 0 || shape_id >= int(data_.shapes().size())) fail("area light shape_id out of range");
            inputs.push_back({shape_id, as_vec3(t[1], "intensity"), int(t[2].cast<bool>())});
        }
        data_.set_lights(inputs);
    }

    void set_envmap(const py::object& values) {
        if (values.is_none()) {
            data_.set_envmap(nullptr, 0, 0);
            return;
        }
        FloatArray v = as_floats(values, "envmap values", {-1, -1, 3});
        if (v.shape(0) < 1 || v.shape(1) < 1) fail("envmap values must not be empty");
        check_finite(v.data(), size_t(v.size()), "envmap values");
        data_.set_envmap(v.data(), int(v.shape(1)), int(v.shape(0)));
    }

    void set_camera(const py::handle& position, const py::handle& look_at, const py::handle& up, float fov,
                    int64_t height, int64_t width, bool orthographic) {
        CameraParams c;
        c.position = as_vec3(position, "position");
        c.look_at = as_vec3(look_at, "look_at");
        c.up = as_vec3(up, "up");
        if (!(fov > 0 && fov < 180)) fail("fov must be in (0, 180)");
        count(height, 1, kMaxResolution, "resolution[0] (height)");
        count(width, 1, kMaxResolution, "resolution[1] (width)");
        if (height * width > kMaxPixels) {
            fail("resolution: height x width must be at most " + std::to_string(kMaxPixels) + " pixels (got " +
                 std::to_string(height) + " x " + std::to_string(width) + ")");
        }
        Vec3 fwd = c.look_at - c.position;
        if (length(fwd) <= 0) fail("look_at must differ from position");
        if (length(cross(normalize(fwd), c.up)) <= 1e-6f) fail("up must not be zero or parallel to the view direction");
        c.fov_degrees = fov;
        c.height = int(height);
        c.width = int(width);
        c.orthographic = orthographic;
        data_.set_camera(c);
    }

    void check_ready() const {
        require_shapes();
        for (const auto& sd : data_.shapes()) {
            if (sd.material_id < 0 || sd.material_id >= num_materials_) fail("shape material_id out of range");
        }
    }

    // render()'s arguments, checked, and the floats per pixel of its output.
    RenderParams render_params(int64_t spp, int64_t max_bounces, uint64_t seed, const std::vector<int>& channels,
                               int64_t threads, int* width) {
        if (!data_.has_camera()) fail("the scene has no camera");
        check_ready();
        if (channels.empty() || channels.size() > size_t(kMaxChannels)) fail("between 1 and 8 channels");
        if (seed > kMaxSeed) fail("seed must be < 2**63");
        RenderParams p;
        p.spp = count(spp, 1, kMaxSpp, "spp");
        p.max_bounces = count(max_bounces, 0, kMaxBounces, "max_bounces");
        p.seed = seed;
        p.num_channels = int(channels.size());
        *width = 0;
        for (size_t i = 0; i < channels.size(); ++i) {
            if (channels[i] < 0 || channels[i] > kLastChannel) fail("unknown channel");
            p.channels[i] = channels[i];
            *width += channel_width(channels[i]);
        }
        p.num_threads = count(threads, 0, kMaxThreads, "threads");
        check_render_params(data_.view().camera, p);
        return p;
    }

    void render(const py::handle& out, int64_t spp, int64_t max_bounces, uint64_t seed,
                const std::vector<int>& channels, int64_t threads) {
        int width;
        RenderParams p = render_params(spp, max_bounces, seed, channels, threads, &width);
        const CameraParams& c = data_.camera_params();
        FloatArray o = as_floats(out, "out", {c.height, c.width, width});
        if (!o.writeable()) fail("out must be writeable");
        float* dst = o.mutable_data();
        SceneView view = data_.view();
        run_interruptible([&] { rt::render(view, p, dst); });
    }

#ifdef RT_WITH_CUDA
    // render() on the GPU that holds `out` (a CUDA tensor, [H, W, width] float32), on `stream`.
    void render_cuda(const py::handle& out, int64_t spp, int64_t max_bounces, uint64_t seed,
                     const std::vector<int>& channels, uintptr_t stream) {
        int width;
        RenderParams p = render_params(spp, max_bounces, seed, channels, 0, &width);
        const CameraParams& c = data_.camera_params();
        DeviceArray o = device_array(out, "out", "<f4", {c.height, c.width, width}, true);
        if (!device_) device_.reset(new cuda::DeviceScene);
        run_interruptible([&] { device_->render(data_, p, static_cast<float*>(o.ptr), o.device, stream); });
    }

    // intersect() on the GPU that holds the rays; the outputs are CUDA tensors of intersect()'s
    // shapes and dtypes on the same GPU.
    void intersect_cuda(const py::handle& origins, const py::handle& directions, const py::handle& t,
                        const py::handle& shape_id, const py::handle& tri_id, const py::handle& uv, uintptr_t stream) {
        require_shapes();
        DeviceArray o = device_array(origins, "origins", "<f4", {-1, 3}, false);
        int64_t n = o.shape[0];
        count(n, 0, kMaxRays, "the number of rays");
        std::vector<DeviceArray> a = {o, device_array(directions, "directions", "<f4", {n, 3}, false),
                                      device_array(t, "t", "<f4", {n}, true),
                                      device_array(shape_id, "shape_id", "<i8", {n}, true),
                                      device_array(tri_id, "triangle_id", "<i8", {n}, true),
                                      device_array(uv, "uv", "<f4", {n, 2}, true)};
        for (const DeviceArray& x : a) {
            if (n > 0 && x.device != o.device) fail("intersect: every array must be on the GPU of origins");
        }
        if (n == 0) return;
        if (!device_) device_.reset(new cuda::DeviceScene);
        run_interruptible([&] {
            device_->intersect(data_, static_cast<const float*>(a[0].ptr), static_cast<const float*>(a[1].ptr), n,
                               static_cast<float*>(a[2].ptr), static_cast<int64_t*>(a[3].ptr),
                               static_cast<int64_t*>(a[4].ptr), static_cast<float*>(a[5].ptr), o.device, stream);
        });
    }

    // Bytes of GPU memory the scene's device copy holds (0 before its first GPU call).
    int64_t device_bytes() const { return device_ ? int64_t(device_->bytes()) : 0; }
#endif

    py::tuple intersect(const py::handle& origins, const py::handle& directions, int64_t threads) {
        require_shapes();
        int num_threads = count(threads, 0, kMaxThreads, "threads");
        FloatArray o = as_floats(origins, "origins", {-1, 3});
        FloatArray d = as_floats(directions, "directions", {o.shape(0), 3});
        py::ssize_t n = o.shape(0);
        count(n, 0, kMaxRays, "the number of rays");
        py::array_t<float> t(n);
        py::array_t<int64_t> shape_id(n), tri_id(n);
        py::array_t<float> uv({n, py::ssize_t(2)});
        const float* op = o.data();
        const float* dp = d.data();
        float* tp = t.mutable_data();
        int64_t* sp = shape_id.mutable_data();
        int64_t* fp = tri_id.mutable_data();
        float* uvp = uv.mutable_data();
        SceneView view = data_.view();
        auto work = [&] { intersect_rays(view, op, dp, int64_t(n), tp, sp, fp, uvp, num_threads); };
        if (n <= kInlineRays) {
            py::gil_scoped_release release;  // done within milliseconds: no thread of its own
            work();
        } else {
            run_interruptible(work);
        }
        return py::make_tuple(t, shape_id, tri_id, uv);
    }

    py::tuple sample_lights(const py::handle& points, const py::handle& u) {
        require_shapes();
        FloatArray p = as_floats(points, "points", {-1, 3});
        FloatArray uu = as_floats(u, "u", {p.shape(0), 3});
        py::ssize_t n = p.shape(0);
        py::array_t<float> dirs({n, py::ssize_t(3)}), dist(n), pdf(n);
        SceneView view = data_.view();
        for (py::ssize_t i = 0; i < n; ++i) {
            LightSample ls = sample_area_lights(view, Vec3::load(p.data() + 3 * i), Vec3::load(uu.data() + 3 * i));
            bool ok = ls.pdf > 0;
            for (int k = 0; k < 3; ++k) dirs.mutable_data()[3 * i + k] = ok ? ls.dir[k] : 0.f;
            dist.mutable_data()[i] = ok ? ls.dist : 0.f;
            pdf.mutable_data()[i] = ls.pdf;
        }
        return py::make_tuple(dirs, dist, pdf);
    }

    py::array_t<float> pdf_lights(const py::handle& points, const py::handle& directions) {
        require_shapes();
        FloatArray p = as_floats(points, "points", {-1, 3});
        FloatArray d = as_floats(directions, "directions", {p.shape(0), 3});
        py::ssize_t n = p.shape(0);
        py::array_t<float> pdf(n);
        SceneView view = data_.view();
        for (py::ssize_t i = 0; i < n; ++i) {
            Vec3 org = Vec3::load(p.data() + 3 * i), dir = Vec3::load(d.data() + 3 * i);
            Ray ray{org, dir, 0, kInfinity};
            Hit hit;
            float value = 0;
            if (rt::intersect(view.bvh, ray, &hit)) {
                SurfacePoint sp = surface_point(view, hit);
                const ShapeData& shape = view.shapes[sp.shape_id];
                if (shape.light_id >= 0 &&
                    !is_black(area_light_emission(view.lights[shape.light_id], sp.ng, -normalize(dir)))) {
                    value = area_lights_pdf(view, org, sp.p, sp.ng, sp.tri);
                }
            }
            pdf.mutable_data()[i] = value;
        }
        return pdf;
    }

    int num_bvh_nodes() const {
        require_shapes();
        return data_.bvh().num_nodes();
    }

    // The edge tree's self-test (check_edge_tree in core/edges.h): (violations, pairs checked).
    py::tuple check_edge_tree(uint64_t seed, int queries, double shrink) {
        check_ready();
        if (queries < 1) fail("queries must be positive");
        if (!(shrink >= 0 && shrink < 1)) fail("shrink must be in [0, 1)");
        int64_t pairs = 0;
        int violations;
        {
            py::gil_scoped_release release;
            violations = rt::check_edge_tree(data_.view(), edges_, seed, queries, Real(shrink), &pairs);
        }
        return py::make_tuple(violations, pairs);
    }
    int num_edges() const { return int(edges_.size()); }

    // The reverse pass's arguments, checked (shape_vertex_grad's flags go to *vertex_grad, which
    // the result points into).
    BackwardParams backward_params(int64_t spp, int64_t max_bounces, uint64_t seed, int64_t edge_spp, bool interior,
                                   bool primary_edges, int64_t secondary_edges, int64_t threads,
                                   const py::object& shape_vertex_grad, bool camera_grad,
                                   int64_t secondary_edges_traced, int64_t secondary_stride,
                                   std::vector<uint8_t>* vertex_grad) {
        if (!data_.has_camera()) fail("the scene has no camera");
        check_ready();
        if (seed > kMaxSeed) fail("seed must be < 2**63");
        BackwardParams p;
        p.spp = count(spp, 1, kMaxSpp, "spp");
        p.max_bounces = count(max_bounces, 0, kMaxPathVertices - 1, "max_bounces (with gradients)");
        p.edge_spp = count(edge_spp, 0, kMaxEdgeSpp, "edge_spp");
        p.secondary_edges = count(secondary_edges, 0, kMaxSecondarySpp, "secondary_spp");
        p.secondary_edges_traced = secondary_edges_traced == -1
                                       ? p.secondary_edges
                                       : count(secondary_edges_traced, 0, kMaxSecondarySpp, "secondary_spp (traced)");
        p.secondary_stride = count(secondary_stride, 1, kMaxSecondaryStride, "secondary_stride");
        p.num_threads = count(threads, 0, kMaxThreads, "threads");
        const CameraParams& c = data_.camera_params();
        if (primary_edges && int64_t(p.edge_spp) * c.height * c.width > kMaxEdgeSamples) {
            fail("edge_spp x height x width (the primary-edge samples) must be at most " +
                 std::to_string(kMaxEdgeSamples) + " (got " + std::to_string(p.edge_spp) + " x " +
                 std::to_string(c.height) + " x " + std::to_string(c.width) + "): lower edge_spp");
        }
        p.seed = seed;
        p.interior = interior;
        p.primary_edges = primary_edges;
        // Which shapes' vertices need gradients (None: all).
        if (!shape_vertex_grad.is_none()) {
            py::sequence flags = shape_vertex_grad;
            size_t num_shapes = data_.shapes().size();
            if (py::len(flags) != num_shapes) {
                fail("shape_vertex_grad must have one flag per shape (" + std::to_string(num_shapes) + "), got " +
                     std::to_string(py::len(flags)));
            }
            for (const py::handle& f : flags) vertex_grad->push_back(f.cast<bool>() ? 1 : 0);
            p.shape_vertex_grad = vertex_grad->data();
        }
        p.camera_grad = camera_grad ? 1 : 0;
        check_backward_params(data_.view().camera, p);
        return p;
    }

    // The gradient's slots, in 64 bits, checked before they are narrowed to the layout's ints.
    GradLayout grad_layout() const {
        GradLayout layout;
        int64_t offset = 0;
        auto block = [&](int* begin, int64_t size) {
            *begin = int(offset);
            offset = checked_sum(offset, size, kMaxIndex, "the scene's differentiable values");
        };
        block(&layout.vertices, int64_t(data_.num_vertices()) * 3);
        block(&layout.uvs, int64_t(data_.num_vertices()) * 2);
        block(&layout.normals, int64_t(data_.num_vertices()) * 3);
        block(&layout.texels, data_.num_texels());
        block(&layout.lights, int64_t(data_.num_lights()) * 3);
        block(&layout.envmap, data_.envmap_size());
        block(&layout.camera, 10);
        layout.total = int(offset);
        return layout;
    }

    // The reverse pass. Returns the gradient blocks as numpy arrays (float32).
    py::dict render_backward(const py::handle& d_image, int64_t spp, int64_t max_bounces, uint64_t seed,
                             int64_t edge_spp, bool interior, bool primary_edges, int64_t secondary_edges,
                             int64_t threads, const py::object& probe, const py::object& shape_vertex_grad,
                             bool camera_grad, int64_t secondary_edges_traced, int64_t secondary_stride,
                             const py::object& d_aux) {
        std::vector<uint8_t> vertex_grad;
        BackwardParams p = backward_params(spp, max_bounces, seed, edge_spp, interior, primary_edges, secondary_edges,
                                           threads, shape_vertex_grad, camera_grad, secondary_edges_traced,
                                           secondary_stride, &vertex_grad);
        const CameraParams& c = data_.camera_params();
        FloatArray d = as_floats(d_image, "d_image", {c.height, c.width, 3});
        check_finite(d.data(), size_t(d.size()), "d_image");
        FloatArray a;
        if (!d_aux.is_none()) {
            a = as_floats(d_aux, "d_aux", {c.height, c.width, kAuxWidth});
            check_finite(a.data(), size_t(a.size()), "d_aux");
            p.d_aux = a.data();
        }
        GradLayout layout = grad_layout();
        std::vector<double> grad(size_t(layout.total), 0.0);
        // A probe: a direction in parameter space whose per-pixel gradient image is wanted.
        std::vector<double> probe_values, probe_image;
        GradOutput out{grad.data()};
        if (!probe.is_none()) {
            FloatArray pr = as_floats(probe, "probe", {layout.total});
            check_finite(pr.data(), size_t(pr.size()), "probe");
            probe_values.assign(pr.data(), pr.data() + pr.size());
            probe_image.assign(size_t(c.height) * c.width, 0.0);
            out.probe = probe_values.data();
            out.probe_image = probe_image.data();
        }
        SceneView view = data_.view();
        BackwardStats stats;
        p.stats = &stats;
        run_interruptible([&] { rt::render_backward(view, c, edges_, layout, p, d.data(), out); });
        auto grad_block = [&](int begin, int end) {
            py::array_t<float> a(end - begin);
            float* dst = a.mutable_data();
            for (int i = begin; i < end; ++i) dst[i - begin] = float(grad[size_t(i)]);
            return a;
        };
        py::dict result;
        result["vertices"] = grad_block(layout.vertices, layout.uvs);
        result["uvs"] = grad_block(layout.uvs, layout.normals);
        result["normals"] = grad_block(layout.normals, layout.texels);
        result["texels"] = grad_block(layout.texels, layout.lights);
        result["lights"] = grad_block(layout.lights, layout.envmap);
        result["envmap"] = grad_block(layout.envmap, layout.camera);
        result["camera"] = grad_block(layout.camera, layout.total);
        result["total"] = py::int_(layout.total);
        result["primary_edge_samples"] = py::int_(int64_t(stats.primary_edge_samples));
        result["secondary_edge_draws"] = py::int_(int64_t(stats.secondary_edge_draws));
        if (out.probe) {
            py::array_t<float> img({py::ssize_t(c.height), py::ssize_t(c.width)});
            for (size_t i = 0; i < probe_image.size(); ++i) img.mutable_data()[i] = float(probe_image[i]);
            result["probe_image"] = img;
        }
        return result;
    }

#ifdef RT_WITH_CUDA
    // The reverse pass on the GPU that holds d_image ([H, W, 3] float32); the gradient is added into
    // `grad`, a float64 CUDA tensor of the layout's total size on that GPU, whose block offsets the
    // caller computes as grad_layout does. Returns the edge-sample counts.
    py::dict render_backward_cuda(const py::handle& d_image, const py::handle& grad, int64_t spp, int64_t max_bounces,
                                  uint64_t seed, int64_t edge_spp, bool interior, bool primary_edges,
                                  int64_t secondary_edges, const py::object& shape_vertex_grad, bool camera_grad,
                                  int64_t secondary_edges_traced, int64_t secondary_stride, uintptr_t stream,
                                  const py::object& d_aux) {
        std::vector<uint8_t> vertex_grad;
        BackwardParams p = backward_params(spp, max_bounces, seed, edge_spp, interior, primary_edges, secondary_edges,
                                           0, shape_vertex_grad, camera_grad, secondary_edges_traced,
                                           secondary_stride, &vertex_grad);
        const CameraParams& c = data_.camera_params();
        GradLayout layout = grad_layout();
        DeviceArray d = device_array(d_image, "d_image", "<f4", {c.height, c.width, 3}, false);
        DeviceArray g = device_array(grad, "grad", "<f8", {layout.total}, true);
        if (g.device != d.device) fail("grad must be on the GPU of d_image");
        if (!d_aux.is_none()) {
            DeviceArray a = device_array(d_aux, "d_aux", "<f4", {c.height, c.width, kAuxWidth}, false);
            if (a.device != d.device) fail("d_aux must be on the GPU of d_image");
            p.d_aux = static_cast<const float*>(a.ptr);
        }
        if (!device_) device_.reset(new cuda::DeviceScene);
        int64_t primary = 0, draws = 0;
        run_interruptible([&] {
            device_->backward(data_, edges_, layout, p, static_cast<const float*>(d.ptr), static_cast<double*>(g.ptr),
                              d.device, stream, &primary, &draws);
        });
        py::dict result;
        result["total"] = py::int_(layout.total);
        result["primary_edge_samples"] = py::int_(primary);
        result["secondary_edge_draws"] = py::int_(draws);
        return result;
    }
#endif

private:
    SceneData data_;
    std::vector<Edge> edges_;  // rebuilt with the BVH, when connectivity changes
    int num_materials_ = 0;
    bool shapes_ready_ = true;  // false while a rebuild is running or after one was interrupted
#ifdef RT_WITH_CUDA
    std::unique_ptr<cuda::DeviceScene> device_;  // the device copy (made at the first GPU call)
#endif
};

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "raytrace's compiled core (private: use the raytrace package)";
    m.def("default_num_threads", &default_num_threads);
    // The CUDA backend (docs/cuda.md): whether this build has it, the GPUs the driver reports,
    // and each one's name.
#ifdef RT_WITH_CUDA
    m.attr("has_cuda") = true;
    m.def("cuda_device_count", &cuda::device_count);
    m.def("cuda_device_name", &cuda::device_name);
#else
    m.attr("has_cuda") = false;
    m.def("cuda_device_count", [] { return 0; });
#endif
    // Worker threads the pool keeps alive now (for the tests).
    m.def("pool_workers", [] { return ThreadPool::instance().num_workers(); });
    // For the tests: a parallel region whose kernel throws at index `at` (of n, on `threads`
    // threads): the exception reaches Python, whichever thread threw it.
    m.def("check_pool_error", [](int64_t n, int64_t threads, int64_t at) {
        int num_threads = count(threads, 1, kMaxThreads, "threads");
        py::gil_scoped_release release;
        parallel_for([&](int i) {
            if (i == at) throw std::runtime_error("kernel " + std::to_string(i) + " failed");
        }, n, num_threads, 1);
    });
    // The largest counts the core accepts (core/limits.h); raytrace/_limits.py reads them.
    m.def("limits", [] {
        py::dict d;
        d["spp"] = kMaxSpp;
        d["edge_spp"] = kMaxEdgeSpp;
        d["edge_samples"] = kMaxEdgeSamples;
        d["secondary_spp"] = kMaxSecondarySpp;
        d["secondary_stride"] = kMaxSecondaryStride;
        d["max_bounces"] = kMaxBounces;
        d["max_bounces_grad"] = int64_t(kMaxPathVertices - 1);
        d["threads"] = kMaxThreads;
        d["resolution"] = kMaxResolution;
        d["pixels"] = kMaxPixels;
        d["rays"] = kMaxRays;
        d["seed"] = kMaxSeed;
        d["channels"] = int64_t(kMaxChannels);
        return d;
    });
    // A call stopped by its CancelFlag outside run_interruptible (not expected) reads as Ctrl-C.
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const Cancelled& e) {
            PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
        }
    });

    py::class_<CoreScene>(m, "Scene")
        .def(py::init<>())
        .def("set_shapes", &CoreScene::set_shapes, py::arg("shapes"), py::arg("rebuild"), py::arg("num_threads"))
        .def("set_materials", &CoreScene::set_materials)
        .def("set_lights", &CoreScene::set_lights)
        .def("set_envmap", &CoreScene::set_envmap)
        .def("set_camera", &CoreScene::set_camera)
        .def("render", &CoreScene::render, py::arg("out"), py::arg("spp"), py::arg("max_bounces"), py::arg("seed"),
             py::arg("channels"), py::arg("num_threads"))
        .def("intersect", &CoreScene::intersect)
#ifdef RT_WITH_CUDA
        .def("render_cuda", &CoreScene::render_cuda, py::arg("out"), py::arg("spp"), py::arg("max_bounces"),
             py::arg("seed"), py::arg("channels"), py::arg("stream"))
        .def("intersect_cuda", &CoreScene::intersect_cuda)
        .def("device_bytes", &CoreScene::device_bytes)
        .def("render_backward_cuda", &CoreScene::render_backward_cuda, py::arg("d_image"), py::arg("grad"),
             py::arg("spp"), py::arg("max_bounces"), py::arg("seed"), py::arg("edge_spp"), py::arg("interior"),
             py::arg("primary_edges"), py::arg("secondary_edges"), py::arg("shape_vertex_grad"),
             py::arg("camera_grad"), py::arg("secondary_edges_traced"), py::arg("secondary_stride"),
             py::arg("stream"), py::arg("d_aux") = py::none())
#endif
        .def("sample_lights", &CoreScene::sample_lights)
        .def("pdf_lights", &CoreScene::pdf_lights)
        .def("num_bvh_nodes", &CoreScene::num_bvh_nodes)
        .def("num_edges", &CoreScene::num_edges)
        .def("check_edge_tree", &CoreScene::check_edge_tree, py::arg("seed"), py::arg("queries"),
             py::arg("shrink") = 0.0)
        .def("render_backward", &CoreScene::render_backward, py::arg("d_image"), py::arg("spp"),
             py::arg("max_bounces"), py::arg("seed"), py::arg("edge_spp"), py::arg("interior"),
             py::arg("primary_edges"), py::arg("secondary_edges"), py::arg("num_threads"),
             py::arg("probe") = py::none(), py::arg("shape_vertex_grad") = py::none(), py::arg("camera_grad") = true,
             py::arg("secondary_edges_traced") = -1, py::arg("secondary_stride") = 16,
             py::arg("d_aux") = py::none());

    // BSDF, for the sampler tests (local frame, normal +z).
    m.def("bsdf_eval", [](const py::handle& kd, const py::handle& ks, float roughness, const py::handle& wo,
                          const py::handle& wi) {
        BSDFParams p = as_bsdf(kd, ks, roughness);
        FloatArray a = as_floats(wo, "wo", {-1, 3}), b = as_floats(wi, "wi", {a.shape(0), 3});
        py::ssize_t n = a.shape(0);
        py::array_t<float> f({n, py::ssize_t(3)});
        for (py::ssize_t i = 0; i < n; ++i) {
            Vec3 v = bsdf_eval(p, Vec3::load(a.data() + 3 * i), Vec3::load(b.data() + 3 * i));
            for (int k = 0; k < 3; ++k) f.mutable_data()[3 * i + k] = v[k];
        }
        return f;
    });
    m.def("bsdf_pdf", [](const py::handle& kd, const py::handle& ks, float roughness, const py::handle& wo,
                         const py::handle& wi) {
        BSDFParams p = as_bsdf(kd, ks, roughness);
        FloatArray a = as_floats(wo, "wo", {-1, 3}), b = as_floats(wi, "wi", {a.shape(0), 3});
        py::ssize_t n = a.shape(0);
        py::array_t<float> pdf(n);
        for (py::ssize_t i = 0; i < n; ++i) {
            pdf.mutable_data()[i] = bsdf_pdf(p, Vec3::load(a.data() + 3 * i), Vec3::load(b.data() + 3 * i));
        }
        return pdf;
    });
    m.def("bsdf_sample", [](const py::handle& kd, const py::handle& ks, float roughness, const py::handle& wo,
                            const py::handle& u) {
        BSDFParams p = as_bsdf(kd, ks, roughness);
        FloatArray a = as_floats(wo, "wo", {-1, 3}), b = as_floats(u, "u", {a.shape(0), 3});
        py::ssize_t n = a.shape(0);
        py::array_t<float> wi({n, py::ssize_t(3)}), pdf(n);
        for (py::ssize_t i = 0; i < n; ++i) {
            Vec3 w;
            Real pd = 0;
            if (!bsdf_sample(p, Vec3::load(a.data() + 3 * i), Vec3::load(b.data() + 3 * i), &w, &pd)) {
                w = Vec3(0);
                pd = 0;
            }
            for (int k = 0; k < 3; ++k) wi.mutable_data()[3 * i + k] = w[k];
            pdf.mutable_data()[i] = pd;
        }
        return py::make_tuple(wi, pdf);
    });

    // Environment map, for the sampler tests.
    m.def("envmap_sample", [](const py::handle& values, const py::handle& u) {
        EnvmapHolder h(values);
        EnvmapData env = h.env();
        FloatArray uu = as_floats(u, "u", {-1, 2});
        py::ssize_t n = uu.shape(0);
        py::array_t<float> dirs({n, py::ssize_t(3)}), pdf(n);
        for (py::ssize_t i = 0; i < n; ++i) {
            Real pd;
            Vec3 d = envmap_sample(env, Vec2(uu.data()[2 * i], uu.data()[2 * i + 1]), &pd);
            for (int k = 0; k < 3; ++k) dirs.mutable_data()[3 * i + k] = d[k];
            pdf.mutable_data()[i] = pd;
        }
        return py::make_tuple(dirs, pdf);
    });
    m.def("envmap_pdf", [](const py::handle& values, const py::handle& dirs) {
        EnvmapHolder h(values);
        EnvmapData env = h.env();
        FloatArray d = as_floats(dirs, "dirs", {-1, 3});
        py::ssize_t n = d.shape(0);
        py::array_t<float> pdf(n);
        for (py::ssize_t i = 0; i < n; ++i) pdf.mutable_data()[i] = envmap_pdf(env, Vec3::load(d.data() + 3 * i));
        return pdf;
    });
    m.def("envmap_eval", [](const py::handle& values, const py::handle& dirs) {
        EnvmapHolder h(values);
        EnvmapData env = h.env();
        FloatArray d = as_floats(dirs, "dirs", {-1, 3});
        py::ssize_t n = d.shape(0);
        py::array_t<float> out({n, py::ssize_t(3)});
        for (py::ssize_t i = 0; i < n; ++i) {
            Vec3 v = envmap_eval(env, Vec3::load(d.data() + 3 * i));
            for (int k = 0; k < 3; ++k) out.mutable_data()[3 * i + k] = v[k];
        }
        return out;
    });

    // Finite-difference self-test of the adjoints (tests/test_adjoints.py): name -> max error.
    m.def("check_adjoints", [](uint64_t seed, int trials) {
        if (trials < 1) fail("trials must be positive");
        std::vector<AdjointCheckResult> results;
        {
            py::gil_scoped_release release;
            results = run_adjoint_checks(seed, trials);
        }
        py::dict out;
        for (const AdjointCheckResult& r : results) out[py::str(r.name)] = r.max_error;
        return out;
    }, py::arg("seed"), py::arg("trials"));
}
