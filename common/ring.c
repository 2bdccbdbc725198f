/* Pointer FIFO; see ring.h. */
#include "ring.h"

#include <stdlib.h>

int qr_ring_push(qr_ring_t *r, void *item)
{
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 64;
        void **ni = malloc(ncap * sizeof *ni);
        if (!ni)
            return -1;
        for (size_t i = 0; i < r->n; i++)
            ni[i] = r->items[(r->head + i) % r->cap];
        free(r->items);
        r->items = ni;
        r->cap = ncap;
        r->head = 0;
    }
    r->items[(r->head + r->n) % r->cap] = item;
    r->n++;
    return 0;
}

void *qr_ring_pop(qr_ring_t *r)
{
    if (!r->n)
        return NULL;
    void *item = r->items[r->head];
    r->head = (r->head + 1) % r->cap;
    r->n--;
    return item;
}

void *qr_ring_at(const qr_ring_t *r, size_t i)
{
    return r->items[(r->head + i) % r->cap];
}

void qr_ring_free(qr_ring_t *r)
{
    free(r->items);
    r->items = NULL;
    r->head = r->n = r->cap = 0;
}
