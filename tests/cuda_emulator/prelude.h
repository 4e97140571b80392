// Host emulation of the CUDA built-ins used by src/descent/kernels/cuda.py's row kernels, so
// that their CUDA C++ can be compiled with g++ and run on a CPU (tests/cuda_emulator/README.md).
// One block at a time; one std::thread per CUDA thread; std::barrier for __syncthreads and a
// per-warp barrier around each __shfl_xor_sync exchange. _Float16 emulates float16 storage.
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

struct dim3e {
    unsigned x = 1, y = 1, z = 1;
};
inline thread_local dim3e threadIdx, blockIdx;
inline dim3e blockDim, gridDim;

inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline float __fmul_rn(float a, float b) { return a * b; }  // -std=c++20: no FMA contraction
inline float emu_h2f(unsigned short bits) {
    _Float16 h;
    std::memcpy(&h, &bits, 2);
    return (float)h;
}
inline unsigned short emu_f2h(float v) {
    _Float16 h = (_Float16)v;  // round to nearest even, as cvt.rn.f16.f32
    unsigned short bits;
    std::memcpy(&bits, &h, 2);
    return bits;
}

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static  // one block runs at a time: a static is that block's shared memory

inline std::barrier<>* g_block_bar = nullptr;
inline std::vector<float> g_xchg;
inline std::vector<std::unique_ptr<std::barrier<>>> g_warp_bar;

inline void __syncthreads() { g_block_bar->arrive_and_wait(); }

inline float __shfl_xor_sync(unsigned, float v, int o) {
    const int t = threadIdx.x, w = t >> 5;
    g_xchg[t] = v;
    g_warp_bar[w]->arrive_and_wait();
    const float r = g_xchg[t ^ o];
    g_warp_bar[w]->arrive_and_wait();
    return r;
}

// Run kernel body `f` over a (gx, gy) grid of blocks of bx threads (bx a multiple of 32). The
// bx threads are created once per launch and walk the blocks in order, meeting at a barrier
// between blocks (shared memory is one static per kernel: a block must finish before the next).
inline void launch(unsigned gx, unsigned gy, unsigned bx, const std::function<void()>& f) {
    blockDim = {bx, 1, 1};
    gridDim = {gx, gy, 1};
    std::barrier<> bb(bx);
    std::barrier<> between(bx);
    g_block_bar = &bb;
    g_xchg.assign(bx, 0.0f);
    g_warp_bar.clear();
    for (unsigned w = 0; w < bx / 32; ++w) g_warp_bar.emplace_back(new std::barrier<>(32));
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < bx; ++t)
        ts.emplace_back([&, t] {
            threadIdx = {t, 0, 0};
            for (unsigned y = 0; y < gy; ++y)
                for (unsigned x = 0; x < gx; ++x) {
                    blockIdx = {x, y, 0};
                    f();
                    between.arrive_and_wait();
                }
        });
    for (auto& th : ts) th.join();
}
