/* embed.c — backend dispatch. */
#include "embed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed_impl.h"

struct mb_embed_t {
    const mb_embed_ops_t *ops;
    void *state;
    int dim;
    char version[64];
};

mb_embed_t *mb_embed_new(const char *backend, int dim, mb_err_t *err) {
    if (dim < 8 || dim > 4096) {
        mb_err_set(err, MB_EBADREQ, "embedding dimension %d outside 8..4096", dim);
        return NULL;
    }
    if (!backend || strcmp(backend, "builtin") != 0) {
        mb_err_set(err, MB_EBADREQ, "unknown embedding backend '%s' (known: builtin)",
                   backend ? backend : "(null)");
        return NULL;
    }
    mb_embed_t *self = calloc(1, sizeof *self);
    self->ops = &mb_embed_hash_ops;
    self->state = mb_embed_hash_new(dim, err);
    if (!self->state) {
        free(self);
        return NULL;
    }
    self->dim = dim;
    snprintf(self->version, sizeof self->version, "%s-d%d", self->ops->name, dim);
    return self;
}

void mb_embed_destroy(mb_embed_t **self_p) {
    if (!self_p || !*self_p) return;
    (*self_p)->ops->destroy((*self_p)->state);
    free(*self_p);
    *self_p = NULL;
}

int mb_embed_dim(const mb_embed_t *self) {
    return self->dim;
}

const char *mb_embed_version(const mb_embed_t *self) {
    return self->version;
}

int mb_embed_batch(mb_embed_t *self, const char *const *texts, size_t n, float *out,
                   mb_err_t *err) {
    return self->ops->batch(self->state, texts, n, out, err);
}
