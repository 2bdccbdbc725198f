/* A FIFO of pointers in a growable circular array.
 *
 * Embedded by value (zero-initialised is empty), so a cache can keep its
 * eviction order without an allocation per entry.  Holds pointers only; what
 * they point to belongs to the caller.  Not thread-safe. */
#ifndef QR_RING_H
#define QR_RING_H

#include <stddef.h>

typedef struct {
    void **items; /* cap slots */
    size_t head;  /* index of the oldest */
    size_t n;     /* items held */
    size_t cap;   /* slots allocated */
} qr_ring_t;

/* Appends item as the newest.  Returns 0, or -1 when out of memory (ring
 * unchanged). */
int qr_ring_push(qr_ring_t *r, void *item);
/* Removes and returns the oldest item, NULL when empty. */
void *qr_ring_pop(qr_ring_t *r);
/* The i-th item, oldest first (i < r->n). */
void *qr_ring_at(const qr_ring_t *r, size_t i);
/* Empties the ring and frees its array (not the items). */
void qr_ring_free(qr_ring_t *r);

#endif
