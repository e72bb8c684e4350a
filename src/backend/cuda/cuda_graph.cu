/* cuda_graph.cu - decode steps recorded once and replayed as CUDA graphs.
 *
 * A decode step is ~450 kernels (a small draft model's ~170), each a few microseconds long: launched
 * one by one, the host's launch calls and the gaps between kernels cost about as much as the work.
 * The first one-token step (ty_forward_batch calls step_begin, the ops, step_end) is recorded into a
 * graph with stream capture, and later steps replay it with one launch.
 *
 * What changes from step to step is data, not launch arguments: the token id and the position sit in
 * step_dev, copied from pinned memory before each replay; get_rows, rope_store and the split-KV
 * attention read them there while recording (c->capturing). The attention's grid is a bound: one
 * recording per power-of-two number of key splits; the blocks of splits past the position return at
 * once and the combine reads only the others (an empty split would add nothing: weight 0, so the
 * bits are those of an exact grid). An op that takes the position by value while recording
 * (a path without device-side position: unfused rope, kv_store, other attention kernels) marks the
 * recording as bad: it is replayed once, for the step it was made for, and recording stops.
 *
 * Every buffer a recording names must outlive it: reserve, buffer_free, kv_free and a new RoPE table
 * drop the recordings (cu_graphs_clear). */
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

void cu_graphs_clear(cuda_backend *c) {
    for (int i = 0; i < c->n_graphs; i++) cudaGraphExecDestroy(c->graph[i]);
    c->n_graphs = 0;
}

static int pow2_at_least(int64_t x) {
    int p = 1;
    while (p < x && p < (1 << 30)) p <<= 1;
    return p;
}

int cu_step_begin(ty_backend *be, int32_t token, int64_t pos) {
    cuda_backend *c = cu_be(be);
    if (!c->graphs_on || c->failed || c->capturing || pos < 0 || pos >= INT32_MAX || !cu_enter(c)) return 0;
    cu_mv_flush(c);
    if (!c->step_host) {
        if (cudaHostAlloc((void **)&c->step_host, 2 * sizeof(int32_t), cudaHostAllocDefault) != cudaSuccess ||
            cudaMalloc((void **)&c->step_dev, 2 * sizeof(int32_t)) != cudaSuccess) {
            cudaGetLastError();
            c->graphs_on = 0; /* decode without recordings */
            return 0;
        }
    }
    /* The stream is idle: every forward step ends with a download that waits for it, so the pinned
     * values of the previous step have been copied. */
    c->step_host[0] = token;
    c->step_host[1] = (int32_t)pos;
    if (!CU_OK(c, cudaMemcpyAsync(c->step_dev, c->step_host, 2 * sizeof(int32_t), cudaMemcpyHostToDevice, c->stream)))
        return 0;
    const int splits = pow2_at_least(pos / CU_ATTN_SPLIT_KEYS + 1);
    for (int i = 0; i < c->n_graphs; i++)
        if (c->graph_splits[i] == splits) {
            c->xq_src = NULL; /* the host's view of xq is that of before the step */
            if (!CU_OK(c, cudaGraphLaunch(c->graph[i], c->stream))) return 1; /* the failure shows in download */
            c->n_replays++;
            return 1;
        }
    if (c->n_graphs == CU_MAX_GRAPHS) return 0;
    if (cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();
        c->graphs_on = 0;
        return 0;
    }
    c->capturing = 1;
    c->capture_bad = 0;
    c->cap_splits = splits;
    return 0;
}

int cu_step_end(ty_backend *be) {
    cuda_backend *c = cu_be(be);
    if (!c->capturing) return 0;
    cu_mv_flush(c); /* the output matmul may still be kept */
    c->capturing = 0;
    cudaGraph_t g = NULL;
    cudaGraphExec_t exec = NULL;
    cudaError_t e = cudaStreamEndCapture(c->stream, &g);
    if (e == cudaSuccess && !c->failed) e = cudaGraphInstantiate(&exec, g, 0);
    if (g) cudaGraphDestroy(g);
    if (e != cudaSuccess || c->failed) {
        /* nothing of the step ran: the forward issues it again without recording */
        cudaGetLastError();
        if (exec) cudaGraphExecDestroy(exec);
        c->graphs_on = 0;
        c->failed = 0; /* a failure inside the recording is found again when the ops run */
        c->errmsg[0] = 0;
        c->xq_src = NULL; /* xq holds nothing the recording promised */
        return 1;
    }
    CU_OK(c, cudaGraphLaunch(exec, c->stream)); /* the recording has not run yet: this is the step */
    if (c->capture_bad) { /* right for this step only */
        cudaGraphExecDestroy(exec); /* destruction waits for nothing: the launch keeps what it needs */
        c->graphs_on = 0;
        return 0;
    }
    c->graph[c->n_graphs] = exec;
    c->graph_splits[c->n_graphs] = c->cap_splits;
    c->n_graphs++;
    return 0;
}
