// cancel.h: stopping a long call of the core from outside (Ctrl-C), with no Python in sight.
//
// The caller owns a CancelFlag and makes it the current flag of the thread that calls the core
// (CancelScope). parallel_for hands the flag of its calling thread to the pool's workers for the
// length of the parallel region; kernels poll cancel_requested() between units of work (pixels,
// samples, tiles) and simply return once it is set. A parallel region whose flag is set when it
// ends throws Cancelled, so partial results never leave the core: the call unwinds, and whatever
// it allocated is freed. Scene data is never written by a cancellable call, so the next call sees
// the scene as it was.
//
// Setting the flag is the only thing another thread does: a store to an atomic, safe from any
// thread (a signal handler included).
#pragma once

#include <atomic>
#include <stdexcept>

namespace rt {

using CancelFlag = std::atomic<bool>;

// Thrown by a call of the core whose CancelFlag was set before it finished.
struct Cancelled : std::runtime_error {
    Cancelled() : std::runtime_error("cancelled") {}
};

namespace detail {
// The flag of the call the current thread works for (null: none).
inline thread_local const CancelFlag* current_cancel_flag = nullptr;
}  // namespace detail

// Whether the call the current thread works for has been asked to stop.
inline bool cancel_requested() {
    const CancelFlag* f = detail::current_cancel_flag;
    return f && f->load(std::memory_order_relaxed);
}

// Throws Cancelled if the current call has been asked to stop.
inline void throw_if_cancelled() {
    if (cancel_requested()) throw Cancelled();
}

// Makes `flag` the current thread's flag for the lifetime of the scope (restores the previous
// one after).
class CancelScope {
public:
    explicit CancelScope(const CancelFlag* flag) : previous_(detail::current_cancel_flag) {
        detail::current_cancel_flag = flag;
    }
    ~CancelScope() { detail::current_cancel_flag = previous_; }
    CancelScope(const CancelScope&) = delete;
    CancelScope& operator=(const CancelScope&) = delete;

private:
    const CancelFlag* previous_;
};

}  // namespace rt
