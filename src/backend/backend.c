/* backend.c - choosing a device by name. */
#include "backend/backend.h"

#include <stdlib.h>
#include <string.h>

#ifdef TY_HAVE_CUDA
/* "cuda" -> 0, "cuda:N" -> N; -1 for anything else starting with "cuda" */
static int cuda_index(const char *device) {
    if (strcmp(device, "cuda") == 0) return 0;
    if (strncmp(device, "cuda:", 5) != 0) return -1;
    const char *p = device + 5;
    if (!*p || strlen(p) > 4) return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return -1;
    return atoi(p);
}
#endif

int ty_backend_new(const char *device, const ty_backend_config *cfg, ty_backend **out, ty_err *err) {
    if (!device || !*device || strcmp(device, "cpu") == 0) return ty_backend_cpu_new(cfg, out, err);
    if (strcmp(device, "auto") == 0) {
#ifdef TY_HAVE_CUDA
        ty_err ignore = {0};
        if (ty_backend_cuda_new(cfg, 0, out, &ignore) == TY_OK) return TY_OK;
#endif
        return ty_backend_cpu_new(cfg, out, err);
    }
#ifdef TY_HAVE_CUDA
    if (strncmp(device, "cuda", 4) == 0 && (device[4] == 0 || device[4] == ':')) {
        int idx = cuda_index(device);
        if (idx < 0)
            return ty_seterr(err, TY_ERR_INVALID_ARG, "unknown device '%s' (expected cpu, cuda, cuda:N or auto)", device);
        int rc = ty_backend_cuda_new(cfg, idx, out, err);
        if (rc) ty_preferr(err, "device '%s' is not available", device);
        return rc;
    }
    static const char *const later[] = {"vulkan", "metal"};
    static const char *const supported = "'cpu' and 'cuda'";
#else
    static const char *const later[] = {"cuda", "vulkan", "metal"};
    static const char *const supported = "only 'cpu'";
#endif
    for (size_t i = 0; i < sizeof later / sizeof later[0]; i++) {
        size_t n = strlen(later[i]);
        if (strncmp(device, later[i], n) == 0 && (device[n] == 0 || device[n] == ':'))
            return ty_seterr(err, TY_ERR_DEVICE,
                             "device '%s' is not available: this build supports %s "
                             "(use --device auto to pick the best available device)", device, supported);
    }
    return ty_seterr(err, TY_ERR_INVALID_ARG,
                     "unknown device '%s' (expected cpu, cuda, cuda:N, vulkan, metal or auto)", device);
}
