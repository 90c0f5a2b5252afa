// backward.cu: the reverse pass on the GPU, from the CPU's kernels (backward_interior.h,
// backward_primary.h), with a deterministic sum of the gradients.
//
// One GPU thread runs the interior kernel for one pixel (or the primary-edge kernel for a run of
// edge samples) exactly as a CPU thread does. Its gradient contributions go through a DeviceAcc:
// a small table in the thread's own memory that sums contributions to the same slot (a mesh
// vertex, a texel, the camera) in the order they come, and spills (slot, sum) records to the
// thread's own stretch of a buffer. The records are then gathered, stable-sorted by slot (a radix
// sort: integers, so the order within a slot stays the threads' order) and each slot's records
// are summed by one thread, in that order, in double precision, into the gradient. No float
// atomics: every sum has a fixed order, so the gradient is the same bit for bit run to run (and
// independent of the GPU's scheduling); it equals the CPU's up to the order of the additions.
//
// Memory is bounded: pixels (or samples) go through in batches of a fixed number of records; a
// thread that needs more than its stretch has its batch run again with longer stretches (the
// records do not depend on the stretch, so neither does the result).
#include <thrust/copy.h>
#include <thrust/execution_policy.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>
#include <thrust/sort.h>

#include "core/backward_interior.h"
#include "core/backward_primary.h"
#include "core/cancel.h"
#include "cuda/device.h"

namespace rt {
namespace cuda {
namespace {

using bwd::BackwardContext;
using bwd::InteriorKernel;
using bwd::PrimaryEdgeKernel;
using bwd::Probe;

// Records per batch (12 bytes each, plus as much again while they are sorted): a batch holds
// kBatchRecords / stretch threads.
constexpr int64_t kBatchRecords = int64_t(1) << 24;
// Records a thread may spill before its batch is run again with a longer stretch.
constexpr int kInitialStretch = 128;
// Edge samples per thread of the primary-edge kernel.
constexpr int kPrimarySamplesPerThread = 8;

// The per-thread accumulator: sums per slot in a small open-addressing table, spilled as records.
struct DeviceAcc {
    static constexpr int kTable = 64;      // slots held at once
    static constexpr int kSpillAt = 48;    // spill the whole table when this many are held
    int keys[kTable];
    double sums[kTable];
    int held;
    int* out_slots;      // this thread's stretch of the record buffer
    double* out_values;
    int stretch;
    int count;           // records made (may pass `stretch`: the batch is then run again)

    RT_DEVICE void init(int* slots, double* values, int n) {
        for (int i = 0; i < kTable; ++i) keys[i] = -1;
        held = 0;
        out_slots = slots;
        out_values = values;
        stretch = n;
        count = 0;
    }
    RT_DEVICE void add(int slot, Real value) {
        if (value == 0) return;
        unsigned h = (unsigned(slot) * 2654435761u) >> 26;  // 6 bits: kTable = 64
        for (;;) {
            if (keys[h] == slot) {
                sums[h] += double(value);
                return;
            }
            if (keys[h] < 0) break;
            h = (h + 1) & (kTable - 1);
        }
        if (held == kSpillAt) {
            spill();
            h = (unsigned(slot) * 2654435761u) >> 26;
        }
        keys[h] = slot;
        sums[h] = double(value);
        ++held;
    }
    RT_DEVICE void set_pixel(int) {}
    // Writes the table out in table order and empties it.
    RT_DEVICE void spill() {
        for (int i = 0; i < kTable; ++i) {
            if (keys[i] < 0) continue;
            if (count < stretch) {
                out_slots[count] = keys[i];
                out_values[count] = sums[i];
            }
            ++count;
            keys[i] = -1;
        }
        held = 0;
    }
};

struct NeverStop {
    RT_HOST_DEVICE bool operator()() const { return false; }
};

__global__ void probe_kernel(SceneView s, Probe* corners) {
    int i = int(blockIdx.x) * blockDim.x + int(threadIdx.x);
    int w = s.camera.width + 1, h = s.camera.height + 1;
    if (i >= w * h) return;
    corners[i] = bwd::probe(s, Real(i % w), Real(i / w));
}

// Pixels [first, first + count) of the interior kernel.
__global__ void interior_pixels_kernel(InteriorKernel k, int first, int count, int stretch, int* slots, double* values,
                                int* counts, int64_t* draws) {
    int i = int(blockIdx.x) * blockDim.x + int(threadIdx.x);
    if (i >= count) return;
    int pixel = first + i;
    DeviceAcc acc;
    acc.init(slots + size_t(i) * stretch, values + size_t(i) * stretch, stretch);
    bwd::Path path;
    int64_t n = 0;
    k.pixel(pixel % k.s.camera.width, pixel / k.s.camera.width, acc, path, &n, NeverStop());
    acc.spill();
    counts[i] = acc.count;
    draws[i] = n;
}

// Edge samples [first + kPrimarySamplesPerThread i, ...) of the primary-edge kernel, for thread i.
__global__ void primary_samples_kernel(PrimaryEdgeKernel k, int64_t first, int count, int stretch, int* slots,
                               double* values, int* counts) {
    int i = int(blockIdx.x) * blockDim.x + int(threadIdx.x);
    if (i >= count) return;
    DeviceAcc acc;
    acc.init(slots + size_t(i) * stretch, values + size_t(i) * stretch, stretch);
    int64_t begin = first + int64_t(i) * kPrimarySamplesPerThread;
    int64_t end = begin + kPrimarySamplesPerThread < k.num_samples ? begin + kPrimarySamplesPerThread : k.num_samples;
    for (int64_t j = begin; j < end; ++j) k.sample(j, acc);
    acc.spill();
    counts[i] = acc.count;
}

// Moves thread t's counts[t] records from its stretch to offsets[t] of the packed arrays.
__global__ void pack_kernel(int threads, int stretch, const int* counts, const int* offsets, const int* slots,
                            const double* values, int* packed_slots, double* packed_values) {
    int t = int(blockIdx.x) * blockDim.x + int(threadIdx.x);
    if (t >= threads) return;
    for (int k = 0; k < counts[t]; ++k) {
        packed_slots[offsets[t] + k] = slots[size_t(t) * stretch + k];
        packed_values[offsets[t] + k] = values[size_t(t) * stretch + k];
    }
}

struct IsHead {
    const int* keys;
    RT_HOST_DEVICE bool operator()(int i) const { return i == 0 || keys[i] != keys[i - 1]; }
};

// Segment j of the sorted records (heads[j] .. heads[j + 1]) summed in order into grad[its slot].
__global__ void segment_sum_kernel(int segments, int n, const int* heads, const int* keys, const double* values,
                                   double* grad) {
    int j = int(blockIdx.x) * blockDim.x + int(threadIdx.x);
    if (j >= segments) return;
    int begin = heads[j], end = j + 1 < segments ? heads[j + 1] : n;
    double sum = 0;
    for (int k = begin; k < end; ++k) sum += values[k];
    grad[keys[begin]] += sum;
}

int blocks_for(int64_t n) { return int((n + kBlock - 1) / kBlock); }

// The local memory a kernel's thread needs, made available (the interior kernel keeps a recorded
// path of kMaxPathVertices vertices).
template <typename Kernel>
void reserve_stack(Kernel kernel) {
    cudaFuncAttributes attr;
    check(cudaFuncGetAttributes(&attr, kernel), "cudaFuncGetAttributes");
    size_t current = 0;
    check(cudaDeviceGetLimit(&current, cudaLimitStackSize), "cudaDeviceGetLimit");
    size_t need = attr.localSizeBytes + 4096;
    if (current < need) check(cudaDeviceSetLimit(cudaLimitStackSize, need), "cudaDeviceSetLimit (stack size)");
}

// The records of a batch: each thread's stretch, then packed, sorted and summed into `grad`.
class Batches {
public:
    Batches(int device, cudaStream_t stream, double* grad) : device_(device), stream_(stream), grad_(grad) {}

    // Runs launch(stretch, slots, values, counts) for `threads` threads until every thread's
    // records fit its stretch, then adds them into the gradient.
    template <typename Launch>
    void run(int threads, const Launch& launch) {
        int stretch = kInitialStretch;
        for (;;) {
            int* slots = slots_.reserve(size_t(threads) * stretch, device_, "the gradient records");
            double* values = values_.reserve(size_t(threads) * stretch, device_, "the gradient records");
            int* counts = counts_.reserve(size_t(threads), device_, "the gradient records");
            launch(stretch, slots, values, counts);
            check(cudaGetLastError(), "backward kernel");
            int most = thrust::reduce(thrust::cuda::par.on(stream_), counts, counts + threads, 0,
                                      thrust::maximum<int>());
            check(cudaStreamSynchronize(stream_), "backward kernel");
            if (most <= stretch) break;
            stretch = most;  // again, with room for the longest (the records are the same)
        }
        add(threads, stretch);
    }

    // Threads per batch for records of the initial stretch.
    static int batch_threads() { return int(kBatchRecords / kInitialStretch); }

private:
    void add(int threads, int stretch) {
        auto policy = thrust::cuda::par.on(stream_);
        int* counts = counts_.data();
        int* offsets = offsets_.reserve(size_t(threads), device_, "the gradient records");
        thrust::exclusive_scan(policy, counts, counts + threads, offsets);
        int last_offset = 0, last_count = 0;
        check(cudaMemcpyAsync(&last_offset, offsets + threads - 1, sizeof(int), cudaMemcpyDeviceToHost, stream_),
              "gradient records");
        check(cudaMemcpyAsync(&last_count, counts + threads - 1, sizeof(int), cudaMemcpyDeviceToHost, stream_),
              "gradient records");
        check(cudaStreamSynchronize(stream_), "gradient records");
        int n = last_offset + last_count;
        if (n == 0) return;
        int* keys = keys_.reserve(size_t(n), device_, "the gradient records");
        double* vals = vals_.reserve(size_t(n), device_, "the gradient records");
        pack_kernel<<<blocks_for(threads), kBlock, 0, stream_>>>(threads, stretch, counts, offsets, slots_.data(),
                                                                 values_.data(), keys, vals);
        check(cudaGetLastError(), "pack_kernel");
        thrust::stable_sort_by_key(policy, keys, keys + n, vals);
        int* heads = heads_.reserve(size_t(n), device_, "the gradient records");
        int* heads_end = thrust::copy_if(policy, thrust::counting_iterator<int>(0), thrust::counting_iterator<int>(n),
                                         heads, IsHead{keys});
        int segments = int(heads_end - heads);
        segment_sum_kernel<<<blocks_for(segments), kBlock, 0, stream_>>>(segments, n, heads, keys, vals, grad_);
        check(cudaGetLastError(), "segment_sum_kernel");
        check(cudaStreamSynchronize(stream_), "summing the gradient");
    }

    int device_;
    cudaStream_t stream_;
    double* grad_;
    DeviceVector<int> slots_, counts_, offsets_, keys_, heads_;
    DeviceVector<double> values_, vals_;
};

// A device copy of an edge tree's view (tree: the host tree; arrays: which of its two).
struct DeviceTree {
    DeviceVector<EdgeTreeNode> nodes;
    DeviceVector<EdgeLeaf> leaves;
    DeviceVector<int> parent, node_of_leaf, leaf_of_edge;

    EdgeTreeView upload(const EdgeTreeView& host, const EdgeTree::Arrays& a, const EmitterBall* emitters, int device,
                        cudaStream_t stream) {
        EdgeTreeView v = host;
        v.nodes = nodes.upload(a.nodes.data(), a.nodes.size(), device, stream, "the edge tree");
        v.leaves = leaves.upload(a.leaves.data(), a.leaves.size(), device, stream, "the edge tree");
        v.parent = parent.upload(a.parent.data(), a.parent.size(), device, stream, "the edge tree");
        v.node_of_leaf = node_of_leaf.upload(a.node_of_leaf.data(), a.node_of_leaf.size(), device, stream,
                                             "the edge tree");
        v.leaf_of_edge = leaf_of_edge.upload(a.leaf_of_edge.data(), a.leaf_of_edge.size(), device, stream,
                                             "the edge tree");
        v.emitters = emitters;
        return v;
    }
};

struct DeviceTrees {
    DeviceVector<EmitterBall> emitters;
    DeviceTree all, emission;
    // Device views of tree.view() and tree.emission_view().
    void upload(const EdgeTree& tree, EdgeTreeView views[2], int device, cudaStream_t stream) {
        const EmitterBall* balls = emitters.upload(tree.emitters().data(), tree.emitters().size(), device, stream,
                                                   "the edge tree");
        views[0] = all.upload(tree.view(), tree.all_arrays(), balls, device, stream);
        views[1] = emission.upload(tree.emission_view(), tree.emission_arrays(), balls, device, stream);
    }
};

}  // namespace

void DeviceScene::backward(const SceneData& data, const std::vector<Edge>& edges, const GradLayout& layout,
                           const BackwardParams& params, const Real* d_image, double* grad, int device,
                           uintptr_t stream_handle, int64_t* primary_samples, int64_t* secondary_draws) {
    DeviceGuard guard(device);
    cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
    SceneView host = data.view();
    check_backward_params(host.camera, params);
    SceneView view = impl_->sync(data, device);
    const Camera& cam = host.camera;
    *primary_samples = 0;
    *secondary_draws = 0;

    // What the kernels read, on the device.
    DeviceVector<Edge> edges_dev;
    DeviceVector<uint8_t> vertex_grad_dev;
    BackwardParams p = params;
    p.stats = nullptr;
    p.num_threads = 0;
    const Edge* edges_ptr = edges_dev.upload(edges.data(), edges.size(), device, stream, "the edges");
    if (params.shape_vertex_grad) {
        p.shape_vertex_grad = vertex_grad_dev.upload(params.shape_vertex_grad, size_t(host.num_shapes), device,
                                                     stream, "the gradient flags");
    }
    BackwardContext host_context{host, data.camera_params(), layout, params, nullptr, edges.data(),
                                 int(edges.size())};
    BackwardContext context{view, data.camera_params(), layout, p, d_image, edges_ptr, int(edges.size())};
    Batches batches(device, stream, grad);
    const int64_t pixels = int64_t(cam.width) * cam.height;

    if (params.interior || params.secondary_edges + params.secondary_edges_traced > 0) {
        EdgeTree tree, grad_tree;
        bwd::build_edge_trees(host, edges, params, &tree, &grad_tree);
        const EdgeTree& second = params.shape_vertex_grad ? grad_tree : tree;
        InteriorKernel k = bwd::interior_kernel(host_context, tree, second);  // (host views, replaced below)
        static_cast<BackwardContext&>(k) = context;
        DeviceTrees trees_dev, grad_trees_dev;
        trees_dev.upload(tree, k.trees, device, stream);
        if (params.shape_vertex_grad) {
            grad_trees_dev.upload(grad_tree, k.grad_trees, device, stream);
        } else {
            k.grad_trees[0] = k.trees[0];
            k.grad_trees[1] = k.trees[1];
        }
        DeviceVector<Probe> corners;
        int64_t num_corners = int64_t(cam.width + 1) * (cam.height + 1);
        k.corners = corners.reserve(size_t(num_corners), device, "the probe rays");
        probe_kernel<<<blocks_for(num_corners), kBlock, 0, stream>>>(view, corners.data());
        check(cudaGetLastError(), "probe_kernel");
        reserve_stack(interior_pixels_kernel);
        DeviceVector<int64_t> draws;
        int per_batch = Batches::batch_threads();
        for (int64_t first = 0; first < pixels; first += per_batch) {
            throw_if_cancelled();
            int count = int(std::min<int64_t>(per_batch, pixels - first));
            int64_t* draws_ptr = draws.reserve(size_t(count), device, "the gradient records");
            batches.run(count, [&](int stretch, int* slots, double* values, int* counts) {
                interior_pixels_kernel<<<blocks_for(count), kBlock, 0, stream>>>(k, int(first), count, stretch, slots,
                                                                          values, counts, draws_ptr);
            });
            *secondary_draws += thrust::reduce(thrust::cuda::par.on(stream), draws_ptr, draws_ptr + count,
                                               int64_t(0));
        }
    }

    if (params.primary_edges && !edges.empty() && params.edge_spp > 0) {
        std::vector<Real> cdf;
        int64_t num_samples = bwd::primary_edge_distribution(host_context, &cdf);
        if (num_samples > 0) {
            DeviceVector<Real> cdf_dev;
            PrimaryEdgeKernel k;
            static_cast<BackwardContext&>(k) = context;
            k.choice = Distribution1D{cdf_dev.upload(cdf.data(), cdf.size(), device, stream, "the edge distribution"),
                                      int(edges.size())};
            k.num_samples = num_samples;
            *primary_samples = num_samples;
            reserve_stack(primary_samples_kernel);
            int64_t threads = (num_samples + kPrimarySamplesPerThread - 1) / kPrimarySamplesPerThread;
            int per_batch = Batches::batch_threads();
            for (int64_t first = 0; first < threads; first += per_batch) {
                throw_if_cancelled();
                int count = int(std::min<int64_t>(per_batch, threads - first));
                batches.run(count, [&](int stretch, int* slots, double* values, int* counts) {
                    primary_samples_kernel<<<blocks_for(count), kBlock, 0, stream>>>(
                        k, first * kPrimarySamplesPerThread, count, stretch, slots, values, counts);
                });
            }
        }
    }
    check(cudaStreamSynchronize(stream), "backward");
}

}  // namespace cuda
}  // namespace rt
