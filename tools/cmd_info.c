/* cmd_info.c - `trainyard info FILE`: what a model file holds. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void human_bytes(uint64_t b, char *out, size_t cap) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) { v /= 1024; u++; }
    snprintf(out, cap, u ? "%.2f %s" : "%.0f %s", v, unit[u]);
}

int cmd_info(int argc, char **argv) {
    cli_opts o;
    if (cli_parse(argc, argv, "-m --model", &o)) { cli_done(&o); return 2; }
    if (!o.model && o.n_pos > 0) o.model = o.pos[0];
    if (!o.model) {
        cli_done(&o);
        fprintf(stderr, "usage: trainyard info FILE\n");
        return 2;
    }
    o.n_threads = 1;
    ty_model *m;
    if (cli_open_model(&o, &m, NULL)) { cli_done(&o); return 1; }
    ty_model_info in;
    ty_model_get_info(m, &in);
    char fb[32], wb[32];
    human_bytes(in.file_bytes, fb, sizeof fb);
    human_bytes(in.weight_bytes, wb, sizeof wb);
    printf("file            %s (%s)\n", o.model, fb);
    printf("name            %s\n", in.name[0] ? in.name : "(none)");
    printf("architecture    %s\n", in.architecture);
    printf("file type       %s\n", in.file_type);
    printf("parameters      %llu (%.2f B), weights %s\n", (unsigned long long)in.n_params,
           (double)in.n_params / 1e9, wb);
    printf("context length  %lld (trained)\n", (long long)in.n_ctx_train);
    printf("embedding       %lld\n", (long long)in.n_embd);
    printf("layers          %lld\n", (long long)in.n_layer);
    printf("heads           %lld (KV heads %lld, head dim %lld, rotary dims %lld)\n",
           (long long)in.n_head, (long long)in.n_head_kv, (long long)in.head_dim, (long long)in.n_rot);
    printf("feed forward    %lld\n", (long long)in.n_ff);
    printf("rope freq base  %g\n", (double)in.rope_freq_base);
    printf("rms norm eps    %g\n", (double)in.rms_norm_eps);
    printf("tokenizer       %s, %lld tokens, BOS %d, EOS %d, add BOS %s, add EOS %s\n", in.tokenizer,
           (long long)in.n_vocab, ty_token_bos(m), ty_token_eos(m), in.add_bos ? "yes" : "no",
           in.add_eos ? "yes" : "no");
    printf("\n%-5s %-32s %-6s %-24s %12s %14s\n", "#", "tensor", "type", "shape", "bytes", "offset");
    for (int64_t i = 0; i < in.n_tensors; i++) {
        ty_tensor_info t;
        ty_model_tensor(m, i, &t);
        char shape[64] = "";
        size_t k = 0;
        for (int d = 0; d < t.n_dims; d++)
            k += (size_t)snprintf(shape + k, sizeof shape - k, d ? " x %lld" : "%lld", (long long)t.ne[d]);
        printf("%-5lld %-32s %-6s %-24s %12llu %14llu\n", (long long)i, t.name, t.type, shape,
               (unsigned long long)t.nbytes, (unsigned long long)t.offset);
    }
    ty_model_close(m);
    cli_done(&o);
    return 0;
}
