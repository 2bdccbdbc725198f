/* Open-addressing hash map from byte-string keys to pointers.
 *
 * Used for the broker's indexes (jobs by id, peers by ZeroMQ identity).  Keys
 * are copied into the map; values are borrowed.  Lookups, inserts and removals
 * are O(1) on average; the table doubles at 50% load and removal uses
 * backward-shift deletion, so there are no tombstones to age.  Not
 * thread-safe. */
#ifndef QR_HMAP_H
#define QR_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct qr_hmap qr_hmap_t;

/* Returns a new empty map (caller owns; qr_hmap_destroy), or NULL on OOM. */
qr_hmap_t *qr_hmap_new(void);
/* Frees the map and its key copies, not the values; NULL-safe, nulls *self_p. */
void qr_hmap_destroy(qr_hmap_t **self_p);

/* Value for key, or NULL. */
void *qr_hmap_get(const qr_hmap_t *self, const void *key, size_t klen);
/* Inserts or replaces.  Returns 0, or -1 on OOM (map unchanged). */
int qr_hmap_put(qr_hmap_t *self, const void *key, size_t klen, void *value);
/* Removes key; returns its value or NULL when absent. */
void *qr_hmap_del(qr_hmap_t *self, const void *key, size_t klen);
/* Number of entries. */
size_t qr_hmap_size(const qr_hmap_t *self);

/* Convenience wrappers for 64-bit integer keys. */
void *qr_hmap_get_u64(const qr_hmap_t *self, uint64_t key);
int qr_hmap_put_u64(qr_hmap_t *self, uint64_t key, void *value);
void *qr_hmap_del_u64(qr_hmap_t *self, uint64_t key);

/* Calls fn(arg, value) for every entry, in no particular order.  fn must not
 * change the map. */
void qr_hmap_each(const qr_hmap_t *self, void (*fn)(void *arg, void *value), void *arg);

#endif
