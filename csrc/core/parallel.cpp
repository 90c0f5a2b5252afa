#include "parallel.h"

#include <cstdlib>

namespace rt {

int default_num_threads() {
    if (const char* env = std::getenv("RT_NUM_THREADS")) {
        int n = std::atoi(env);
        if (n > 0) return n;
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : int(hw);
}

ThreadPool& ThreadPool::instance() {
    // Leaked on purpose: joining threads from a static destructor at interpreter exit
    // can deadlock, and the OS reclaims them anyway.
    static ThreadPool* pool = new ThreadPool();
    return *pool;
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
}

void ThreadPool::ensure_workers(int count) {
    while (int(workers_.size()) < count) {
        int index = int(workers_.size());
        workers_.emplace_back([this, index] { worker_loop(index); });
    }
}

void ThreadPool::worker_loop(int worker_index) {
    uint64_t seen = 0;
    for (;;) {
        const std::function<void(int64_t, int64_t)>* body;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] {
                return stop_ || (generation_ != seen && worker_index < active_workers_);
            });
            if (stop_) return;
            seen = generation_;
            body = body_;
        }
        for (;;) {
            int64_t begin = next_.fetch_add(grain_);
            if (begin >= n_) break;
            (*body)(begin, std::min(n_, begin + grain_));
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (--pending_ == 0) done_.notify_all();
        }
    }
}

void ThreadPool::run(int64_t n, int64_t grain, int num_threads,
                     const std::function<void(int64_t, int64_t)>& body) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    int helpers = num_threads - 1;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        ensure_workers(helpers);
        body_ = &body;
        n_ = n;
        grain_ = grain;
        next_.store(0);
        active_workers_ = helpers;
        pending_ = helpers;
        ++generation_;
    }
    wake_.notify_all();
    // The calling thread works too.
    for (;;) {
        int64_t begin = next_.fetch_add(grain);
        if (begin >= n) break;
        body(begin, std::min(n, begin + grain));
    }
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    body_ = nullptr;
}

}  // namespace rt
