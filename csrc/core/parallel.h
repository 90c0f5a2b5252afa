// parallel.h: parallel_for over a pool of CPU threads.
//
// A kernel is a small functor with `void operator()(int idx)`; parallel_for(kernel, n)
// calls it once for each idx in [0, n). Work is handed out in chunks from an atomic counter,
// so which thread runs which index varies between runs: kernels must write only to slots
// owned by their index (or reduce in a fixed order afterwards) to stay deterministic.
// A CUDA launch of the same functor comes later behind the same call.
//
// Stopping (cancel.h): the pool hands out no more chunks once the calling thread's CancelFlag
// is set, and the region then throws Cancelled. An exception thrown by a kernel on any thread
// likewise stops the region and is rethrown on the calling thread (never std::terminate).
//
// Threads: a call asks for at most kMaxThreads (limits.h). The pool keeps only as many idle
// workers as the default thread count needs; workers started for a larger request are joined
// when its region ends.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cancel.h"
#include "limits.h"

namespace rt {

// The number of threads used when a call asks for 0: RT_NUM_THREADS if set, else all cores;
// at most kMaxThreads.
int default_num_threads();

// A request (0: the default) as a thread count in [1, kMaxThreads].
inline int resolve_num_threads(int64_t requested) {
    if (requested <= 0) return default_num_threads();
    return int(std::min<int64_t>(requested, kMaxThreads));
}

class ThreadPool {
public:
    static ThreadPool& instance();
    // Runs body(begin, end) over [0, n) in chunks of `grain`, on `num_threads` threads
    // (the calling thread included). Blocks until every chunk is done, or until `cancel`
    // (may be null) is set or a chunk throws: then the chunks not yet started are skipped
    // and it throws (the chunk's exception, else Cancelled).
    void run(int64_t n, int64_t grain, int num_threads, const CancelFlag* cancel,
             const std::function<void(int64_t, int64_t)>& body);
    // Worker threads alive now (the calling thread not counted).
    int num_workers();
    ~ThreadPool();

private:
    ThreadPool() = default;
    void start_workers(int count);
    void retire_workers(int keep);
    void worker_loop(int worker_index);
    void work();

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::mutex run_mutex_;  // one parallel region at a time
    std::condition_variable wake_, done_;
    // The current job.
    const std::function<void(int64_t, int64_t)>* body_ = nullptr;
    const CancelFlag* cancel_ = nullptr;
    int64_t n_ = 0, grain_ = 1;
    int active_workers_ = 0;  // workers asked to take part in the current job
    std::atomic<int64_t> next_{0};
    std::atomic<bool> abort_{false};  // a chunk threw: hand out no more
    std::exception_ptr error_;        // the first exception a chunk threw
    int pending_ = 0;         // workers still running the current job
    uint64_t generation_ = 0;
    int retire_from_ = 1 << 30;  // workers with this index or above leave
};

// Calls kernel(idx) for idx in [0, n) on `num_threads` threads (0: the default). Throws
// Cancelled when the calling thread's CancelFlag is set before the region ends, and
// std::length_error when n does not fit the kernels' int index.
template <typename Kernel>
void parallel_for(const Kernel& kernel, int64_t n, int num_threads = 0, int64_t grain = 0) {
    if (n <= 0) return;
    if (n > kMaxIndex) throw std::length_error("parallel_for: " + std::to_string(n) + " items exceed 2^31 - 1");
    num_threads = resolve_num_threads(num_threads);
    if (grain <= 0) grain = std::max<int64_t>(1, n / (int64_t(num_threads) * 16));
    if (num_threads == 1 || n <= grain) {
        for (int64_t i = 0; i < n; ++i) {
            throw_if_cancelled();
            kernel(int(i));
        }
        throw_if_cancelled();
        return;
    }
    std::function<void(int64_t, int64_t)> body = [&kernel](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) kernel(int(i));
    };
    ThreadPool::instance().run(n, grain, num_threads, detail::current_cancel_flag, body);
}

}  // namespace rt
