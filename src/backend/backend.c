/* backend.c - choosing a device by name. */
#include "backend/backend.h"

#include <string.h>

int ty_backend_new(const char *device, const ty_backend_config *cfg, ty_backend **out, ty_err *err) {
    if (!device || !*device || strcmp(device, "cpu") == 0 || strcmp(device, "auto") == 0)
        return ty_backend_cpu_new(cfg, out, err);
    static const char *const later[] = {"cuda", "vulkan", "metal"};
    for (size_t i = 0; i < sizeof later / sizeof later[0]; i++) {
        size_t n = strlen(later[i]);
        if (strncmp(device, later[i], n) == 0 && (device[n] == 0 || device[n] == ':'))
            return ty_seterr(err, TY_ERR_DEVICE,
                             "device '%s' is not available: this build supports only 'cpu' "
                             "(use --device auto to pick the best available device)", device);
    }
    return ty_seterr(err, TY_ERR_INVALID_ARG,
                     "unknown device '%s' (expected cpu, cuda, cuda:N, vulkan, metal or auto)", device);
}
