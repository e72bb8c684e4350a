/* emu.cpp - host emulation of CUDA kernels for scripts/cuda_emu/run.sh: every CUDA thread of a block
 * is a fiber (switched by the few lines of x86-64 assembly below); blocks run one after another; __syncthreads / __syncwarp are barriers over the live fibers of the
 * block / warp; shuffles exchange through a slot array between two warp barriers. */
#include "cuda_runtime.h"

#include <cstdio>
#include <cstdlib>
#include <sys/mman.h>
#include <vector>

extern "C" void emu_switch(void **save_sp, void *new_sp);
asm(R"(
.text
.globl emu_switch
.type emu_switch,@function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
)");

namespace emu {
enum { READY, WAIT_BLOCK, WAIT_WARP, DONE };
struct Fiber {
    void *sp;
    dim3 tid;
    int lin, state;
    char *stack;
};
Fiber *cur;
dim3 g_blockIdx, g_blockDim, g_gridDim;
static void *sched_sp;
static const std::function<void()> *g_body;
static std::vector<Fiber> fibers;
static std::vector<unsigned char> dyn;
static unsigned long long slots[1024];
static const size_t STACK = 512 * 1024;
static cudaError_t last_err = cudaSuccess;

const dim3 &thread_idx() { return cur->tid; }
void *dyn_smem() { return dyn.data(); }

static void yield(int st) {
    cur->state = st;
    emu_switch(&cur->sp, sched_sp);
}
void syncthreads() { yield(WAIT_BLOCK); }
void syncwarp() { yield(WAIT_WARP); }
unsigned long long *shfl_slot(int off, unsigned long long v) {
    slots[cur->lin] = v;
    syncwarp();
    int partner = (cur->lin & ~31) | ((cur->lin & 31) ^ off);
    if (partner >= (int)fibers.size() || fibers[partner].state == DONE) {
        fprintf(stderr, "emu: shuffle with an exited or missing lane\n");
        abort();
    }
    return &slots[partner];
}

static void fiber_start() {
    (*g_body)();
    cur->state = DONE;
    emu_switch(&cur->sp, sched_sp);
    abort();
}

static void run_block(unsigned nth) {
    if (fibers.size() < nth) {
        size_t old = fibers.size();
        fibers.resize(nth);
        for (size_t i = old; i < nth; i++) {
            void *m = mmap(nullptr, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) abort();
            fibers[i].stack = (char *)m;
        }
    }
    for (unsigned i = 0; i < nth; i++) {
        Fiber &f = fibers[i];
        f.lin = (int)i;
        f.tid = dim3(i % g_blockDim.x, (i / g_blockDim.x) % g_blockDim.y, i / (g_blockDim.x * g_blockDim.y));
        f.state = READY;
        uintptr_t base = ((uintptr_t)(f.stack + STACK)) & ~(uintptr_t)15;
        void **sp = (void **)(base - 16);
        *sp = (void *)fiber_start; /* return address of emu_switch's ret */
        sp -= 6;
        for (int k = 0; k < 6; k++) sp[k] = nullptr;
        f.sp = sp;
    }
    for (unsigned i = nth; i < fibers.size(); i++) fibers[i].state = DONE;
    for (;;) {
        bool ran = false;
        for (unsigned i = 0; i < nth; i++) {
            if (fibers[i].state != READY) continue;
            cur = &fibers[i];
            emu_switch(&sched_sp, cur->sp);
            ran = true;
        }
        bool all_done = true, released = false;
        for (unsigned i = 0; i < nth; i++) all_done &= fibers[i].state == DONE;
        if (all_done) break;
        for (unsigned w = 0; w < (nth + 31) / 32; w++) {
            bool any = false, all = true;
            for (unsigned i = 32 * w; i < nth && i < 32 * w + 32; i++) {
                if (fibers[i].state == DONE) continue;
                any = true;
                all &= fibers[i].state == WAIT_WARP;
            }
            if (any && all) {
                for (unsigned i = 32 * w; i < nth && i < 32 * w + 32; i++)
                    if (fibers[i].state == WAIT_WARP) fibers[i].state = READY;
                released = true;
            }
        }
        bool any = false, all = true;
        for (unsigned i = 0; i < nth; i++) {
            if (fibers[i].state == DONE) continue;
            any = true;
            all &= fibers[i].state == WAIT_BLOCK;
        }
        if (any && all) {
            for (unsigned i = 0; i < nth; i++)
                if (fibers[i].state == WAIT_BLOCK) fibers[i].state = READY;
            released = true;
        }
        if (!ran && !released) {
            fprintf(stderr, "emu: deadlock in block (%u,%u,%u): mismatched barriers\n", g_blockIdx.x, g_blockIdx.y, g_blockIdx.z);
            abort();
        }
    }
}

void launch(dim3 grid, dim3 block, size_t smem, cudaStream_t, const std::function<void()> &body) {
    unsigned nth = block.x * block.y * block.z;
    if (nth == 0 || nth > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 ||
        smem > 48 * 1024) {
        fprintf(stderr, "emu: invalid launch configuration grid (%u,%u,%u) block (%u,%u,%u) smem %zu\n", grid.x, grid.y,
                grid.z, block.x, block.y, block.z, smem);
        last_err = cudaErrorInvalidConfiguration;
        return;
    }
    g_body = &body;
    g_gridDim = grid;
    g_blockDim = block;
    dyn.assign(smem ? smem : 1, 0xFF); /* garbage, like real shared memory */
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                g_blockIdx = dim3(x, y, z);
                run_block(nth);
            }
}
}  // namespace emu

/* ---- runtime API: device memory is host memory, copies and streams are synchronous ---- */
static int no_device() { return getenv("EMU_NO_DEVICE") != nullptr; }
cudaError_t cudaGetDeviceCount(int *n) {
    *n = no_device() ? 0 : 1;
    return no_device() ? cudaErrorNoDevice : cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    strcpy(p->name, "emulated H100");
    p->major = 9;
    p->multiProcessorCount = 132;
    return cudaSuccess;
}
static int stream_dummy, event_dummy;
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { *s = (cudaStream_t)&stream_dummy; return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
/* Default: one heap block per allocation, of the exact size (so ASan sees overruns). EMU_ADJACENT=1:
 * allocations follow each other in one arena at 512-byte granularity, as cudaMalloc often places
 * them (a one-past-the-end pointer of one buffer is then the start of the next); never freed. */
static uint8_t *arena;
static size_t arena_used;
static const size_t ARENA = (size_t)8 << 30;
static bool in_arena(const void *p) { return arena && (const uint8_t *)p >= arena && (const uint8_t *)p < arena + ARENA; }
cudaError_t cudaMalloc(void **p, size_t n) {
    if (getenv("EMU_ADJACENT")) {
        if (!arena) {
            void *m = mmap(nullptr, ARENA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (m == MAP_FAILED) return cudaErrorMemoryAllocation;
            arena = (uint8_t *)m;
        }
        size_t sz = (n + 511) / 512 * 512;
        if (arena_used + sz > ARENA) return cudaErrorMemoryAllocation;
        *p = arena + arena_used;
        arena_used += sz;
    } else if (posix_memalign(p, 256, n ? n : 1)) {
        return cudaErrorMemoryAllocation;
    }
    memset(*p, 0xA5, n); /* garbage */
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (!in_arena(p)) free(p);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) { memset(p, v, n); return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) { memmove(d, s, n); return cudaSuccess; }
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) { memmove(d, s, n); return cudaSuccess; }
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = (size_t)16 << 30; *t = (size_t)80 << 30; return cudaSuccess; }
cudaError_t cudaHostAlloc(void **p, size_t n, unsigned) { *p = malloc(n); return *p ? cudaSuccess : cudaErrorMemoryAllocation; }
cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { *e = (cudaEvent_t)&event_dummy; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaGetLastError(void) { cudaError_t e = emu::last_err; emu::last_err = cudaSuccess; return e; }
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    default: return "emulated error";
    }
}
const char *cudaGetErrorName(cudaError_t e) { return e == cudaErrorNoDevice ? "cudaErrorNoDevice" : "cudaError"; }
