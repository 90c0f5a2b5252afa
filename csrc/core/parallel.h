// parallel.h: parallel_for over a persistent pool of CPU threads.
//
// A kernel is a small functor with `void operator()(int idx)`; parallel_for(kernel, n)
// calls it once for each idx in [0, n). Work is handed out in chunks from an atomic counter,
// so which thread runs which index varies between runs: kernels must write only to slots
// owned by their index (or reduce in a fixed order afterwards) to stay deterministic.
// A CUDA launch of the same functor comes later behind the same call.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rt {

// The number of threads used when a call asks for 0: RT_NUM_THREADS if set, else all cores.
int default_num_threads();

class ThreadPool {
public:
    static ThreadPool& instance();
    // Runs body(begin, end) over [0, n) in chunks of `grain`, on `num_threads` threads
    // (the calling thread included). Blocks until every chunk is done.
    void run(int64_t n, int64_t grain, int num_threads,
             const std::function<void(int64_t, int64_t)>& body);
    ~ThreadPool();

private:
    ThreadPool() = default;
    void ensure_workers(int count);
    void worker_loop(int worker_index);

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::mutex run_mutex_;  // one parallel region at a time
    std::condition_variable wake_, done_;
    // The current job.
    const std::function<void(int64_t, int64_t)>* body_ = nullptr;
    int64_t n_ = 0, grain_ = 1;
    int active_workers_ = 0;  // workers asked to take part in the current job
    std::atomic<int64_t> next_{0};
    int pending_ = 0;         // workers still running the current job
    uint64_t generation_ = 0;
    bool stop_ = false;
};

// Calls kernel(idx) for idx in [0, n) on `num_threads` threads (0: the default).
template <typename Kernel>
void parallel_for(const Kernel& kernel, int64_t n, int num_threads = 0, int64_t grain = 0) {
    if (n <= 0) return;
    if (num_threads <= 0) num_threads = default_num_threads();
    if (grain <= 0) grain = std::max<int64_t>(1, n / (int64_t(num_threads) * 16));
    if (num_threads == 1 || n <= grain) {
        for (int64_t i = 0; i < n; ++i) kernel(int(i));
        return;
    }
    std::function<void(int64_t, int64_t)> body = [&kernel](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) kernel(int(i));
    };
    ThreadPool::instance().run(n, grain, num_threads, body);
}

}  // namespace rt
