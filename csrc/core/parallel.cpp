#include "parallel.h"

#include <cstdlib>

namespace rt {

int default_num_threads() {
    if (const char* env = std::getenv("RT_NUM_THREADS")) {
        long n = std::atol(env);
        if (n > 0) return int(std::min<long>(n, long(kMaxThreads)));
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : int(std::min<int64_t>(hw, kMaxThreads));
}

ThreadPool& ThreadPool::instance() {
    // Leaked on purpose: joining threads from a static destructor at interpreter exit
    // can deadlock, and the OS reclaims them anyway.
    static ThreadPool* pool = new ThreadPool();
    return *pool;
}

ThreadPool::~ThreadPool() { retire_workers(0); }

int ThreadPool::num_workers() {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    return int(workers_.size());
}

void ThreadPool::start_workers(int count) {
    while (int(workers_.size()) < count) {
        int index = int(workers_.size());
        workers_.emplace_back([this, index] { worker_loop(index); });
    }
}

// Joins the workers with index >= keep (none is running a job: run_mutex_ is held).
void ThreadPool::retire_workers(int keep) {
    if (int(workers_.size()) <= keep) return;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        retire_from_ = keep;
    }
    wake_.notify_all();
    for (size_t i = size_t(keep); i < workers_.size(); ++i) workers_[i].join();
    workers_.resize(size_t(keep));
    std::lock_guard<std::mutex> lock(mutex_);
    retire_from_ = 1 << 30;
}

// Takes chunks of the current job until none is left, the job is cancelled or a chunk threw.
void ThreadPool::work() {
    CancelScope scope(cancel_);  // kernels poll the job's flag (cancel_requested())
    for (;;) {
        if (abort_.load(std::memory_order_relaxed) || cancel_requested()) break;
        int64_t begin = next_.fetch_add(grain_);
        if (begin >= n_) break;
        try {
            (*body_)(begin, std::min(n_, begin + grain_));
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
            abort_.store(true);
            break;
        }
    }
}

void ThreadPool::worker_loop(int worker_index) {
    uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] {
                return worker_index >= retire_from_ || (generation_ != seen && worker_index < active_workers_);
            });
            if (worker_index >= retire_from_) return;
            seen = generation_;
        }
        work();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (--pending_ == 0) done_.notify_all();
        }
    }
}

void ThreadPool::run(int64_t n, int64_t grain, int num_threads, const CancelFlag* cancel,
                     const std::function<void(int64_t, int64_t)>& body) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    int helpers = std::max(0, std::min(num_threads, int(kMaxThreads)) - 1);
    start_workers(helpers);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        body_ = &body;
        cancel_ = cancel;
        n_ = n;
        grain_ = grain;
        next_.store(0);
        abort_.store(false);
        error_ = nullptr;
        active_workers_ = helpers;
        pending_ = helpers;
        ++generation_;
    }
    wake_.notify_all();
    work();  // the calling thread works too
    std::exception_ptr error;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return pending_ == 0; });
        body_ = nullptr;
        cancel_ = nullptr;
        error = error_;
        error_ = nullptr;
    }
    // Workers beyond what the default thread count needs are not kept idle.
    retire_workers(default_num_threads() - 1);
    if (error) std::rethrow_exception(error);
    if (cancel && cancel->load()) throw Cancelled();
}

}  // namespace rt
