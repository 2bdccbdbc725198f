/* Linear-probing hash map; see hmap.h.  Keys up to 16 bytes live inline,
 * longer ones are heap copies. */
#include "hmap.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;  /* 0 marks an empty slot (real hashes are forced non-zero) */
    size_t klen;    /* key length */
    union {
        uint8_t inl[16]; /* key when klen <= 16 */
        uint8_t *heap;   /* key copy otherwise */
    } key;
    void *value; /* borrowed */
} s_slot_t;

struct qr_hmap {
    s_slot_t *slots; /* cap entries */
    size_t cap;      /* power of two */
    size_t size;     /* used slots */
};

static uint64_t s_hash(const void *key, size_t len)
{
    /* FNV-1a with a final avalanche; inputs are ids and ZeroMQ identities,
     * not attacker-chosen floods of colliding strings. */
    const uint8_t *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

static const uint8_t *s_key(const s_slot_t *s)
{
    return s->klen <= 16 ? s->key.inl : s->key.heap;
}

qr_hmap_t *qr_hmap_new(void)
{
    qr_hmap_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = 64;
    self->slots = calloc(self->cap, sizeof(s_slot_t));
    if (!self->slots) {
        free(self);
        return NULL;
    }
    return self;
}

void qr_hmap_destroy(qr_hmap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_hmap_t *self = *self_p;
    for (size_t i = 0; i < self->cap; i++)
        if (self->slots[i].hash && self->slots[i].klen > 16)
            free(self->slots[i].key.heap);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

static size_t s_find(const qr_hmap_t *self, uint64_t h, const void *key, size_t klen)
{
    size_t mask = self->cap - 1, i = h & mask;
    for (;;) {
        const s_slot_t *s = &self->slots[i];
        if (!s->hash)
            return i;
        if (s->hash == h && s->klen == klen && memcmp(s_key(s), key, klen) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

static int s_grow(qr_hmap_t *self)
{
    size_t ncap = self->cap * 2;
    s_slot_t *ns = calloc(ncap, sizeof(s_slot_t));
    if (!ns)
        return -1;
    for (size_t i = 0; i < self->cap; i++) {
        s_slot_t *s = &self->slots[i];
        if (!s->hash)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].hash)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(self->slots);
    self->slots = ns;
    self->cap = ncap;
    return 0;
}

void *qr_hmap_get(const qr_hmap_t *self, const void *key, size_t klen)
{
    size_t i = s_find(self, s_hash(key, klen), key, klen);
    return self->slots[i].hash ? self->slots[i].value : NULL;
}

int qr_hmap_put(qr_hmap_t *self, const void *key, size_t klen, void *value)
{
    if ((self->size + 1) * 2 > self->cap && s_grow(self) < 0)
        return -1;
    uint64_t h = s_hash(key, klen);
    size_t i = s_find(self, h, key, klen);
    s_slot_t *s = &self->slots[i];
    if (s->hash) {
        s->value = value;
        return 0;
    }
    if (klen > 16) {
        s->key.heap = malloc(klen);
        if (!s->key.heap)
            return -1;
        memcpy(s->key.heap, key, klen);
    } else
        memcpy(s->key.inl, key, klen);
    s->hash = h;
    s->klen = klen;
    s->value = value;
    self->size++;
    return 0;
}

void *qr_hmap_del(qr_hmap_t *self, const void *key, size_t klen)
{
    size_t mask = self->cap - 1;
    size_t i = s_find(self, s_hash(key, klen), key, klen);
    s_slot_t *s = &self->slots[i];
    if (!s->hash)
        return NULL;
    void *value = s->value;
    if (s->klen > 16)
        free(s->key.heap);
    s->hash = 0;
    self->size--;
    /* Backward-shift: pull later members of the probe run into the hole. */
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & mask;
        s_slot_t *t = &self->slots[j];
        if (!t->hash)
            break;
        size_t home = t->hash & mask;
        /* t may move to hole when hole lies cyclically in [home, j). */
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            self->slots[hole] = *t;
            t->hash = 0;
            hole = j;
        }
    }
    return value;
}

size_t qr_hmap_size(const qr_hmap_t *self)
{
    return self->size;
}

void *qr_hmap_get_u64(const qr_hmap_t *self, uint64_t key)
{
    return qr_hmap_get(self, &key, sizeof key);
}

int qr_hmap_put_u64(qr_hmap_t *self, uint64_t key, void *value)
{
    return qr_hmap_put(self, &key, sizeof key, value);
}

void *qr_hmap_del_u64(qr_hmap_t *self, uint64_t key)
{
    return qr_hmap_del(self, &key, sizeof key);
}

void qr_hmap_each(const qr_hmap_t *self, void (*fn)(void *arg, void *value), void *arg)
{
    for (size_t i = 0; i < self->cap; i++)
        if (self->slots[i].hash)
            fn(arg, self->slots[i].value);
}
