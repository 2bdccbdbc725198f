/* The two prime fields of BN254 (alt_bn128, the curve of EIP-196/197, circom
 * and snarkjs): Fp, the base field the curve points live over, and Fr, the
 * scalar field the circuits compute in.
 *
 * An element is four little-endian 64-bit limbs holding x * 2^256 mod m
 * (Montgomery form), always fully reduced into [0, m).  Full reduction costs
 * one conditional subtraction per operation and buys two things: equality is
 * a limb compare, and the raw limbs are exactly what snarkjs writes into a
 * .zkey (ffjavascript also uses R = 2^256 for 4-limb fields), so reading a
 * key is a copy.
 *
 * The per-element operations are inline and marked QR_ZK_HD so the CUDA
 * kernels compile the same definitions (one definition: the CPU tests cover
 * the numbers the GPU computes).  They take no branch on the values, only
 * masks, so timing does not depend on the operands; the slower routines in
 * bn254_field.c (inverse, sqrt, parsing) are declared at the end.
 *
 * Multiplication is CIOS Montgomery (Koc, Acar, Kaliski 1996) with the
 * "no final carry" shortcut: both moduli have their top limb below
 * (2^64 - 1) / 2 - 1, so the running sum never needs a fifth limb and the
 * result is below 2m before the last subtraction. */
#ifndef QR_ZK_BN254_FIELD_H
#define QR_ZK_BN254_FIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn254_consts.h"

#ifdef __CUDACC__
#define QR_ZK_HD __host__ __device__ __forceinline__
#else
#define QR_ZK_HD static inline
#endif

typedef struct {
    uint64_t l[4];
} qr_fp_t;

typedef struct {
    uint64_t l[4];
} qr_fr_t;

/* ---- 64-bit limb primitives ----
 * Written out limb by limb with the operands in scalars: GCC at -O2 neither
 * unrolls the 4-limb loops nor keeps arrays in registers, and the difference
 * is 30 ns against 21 ns per multiplication.  On x86-64 the carry chains use
 * the _addcarry_u64/_subborrow_u64 intrinsics, which compile to one adc/sbb
 * each; elsewhere a 128-bit sum does the same job less tidily. */

#if !defined(__CUDA_ARCH__)
__extension__ typedef unsigned __int128 qr_zk_u128;
#endif
#if defined(__x86_64__) && !defined(__CUDA_ARCH__)
#include <x86intrin.h>
#define QR_ZK_X86 1
#endif
/* MULX/ADX multiplication (fp_x86.h): host code built by GCC or Clang for
 * x86-64 with optimisation on (at -O0 both compilers give each memory
 * operand its own address register and run out), not nvcc's host pass; used
 * when qr_zk_adx says the CPU has it.  QR_ZK_NO_ASM turns it off. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__OPTIMIZE__) &&                          \
    !defined(__CUDACC__) && !defined(__CUDA_ARCH__) && !defined(QR_ZK_NO_ASM)
#define QR_ZK_ADX_ASM 1
#include "fp_x86.h"
#ifdef __cplusplus
extern "C" {
#endif
/* true when the multiplications take the MULX/ADX path: set before main()
 * from cpuid (BMI2 and ADX) unless QUARRY_ZK_FMUL=portable is in the
 * environment; see qr_zk_fmul_select */
extern bool qr_zk_adx;
#ifdef __cplusplus
}
#endif
#endif

/* a * b + c + d as (hi, lo); cannot overflow 128 bits:
 * (2^64 - 1)^2 + 2 (2^64 - 1) = 2^128 - 1. */
QR_ZK_HD uint64_t qr_zk_mac(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t *hi)
{
#ifdef __CUDA_ARCH__
    uint64_t lo = a * b, h = __umul64hi(a, b);
    lo += c;
    h += lo < c;
    lo += d;
    h += lo < d;
    *hi = h;
    return lo;
#else
    qr_zk_u128 t = (qr_zk_u128)a * b + c + d;
    *hi = (uint64_t)(t >> 64);
    return (uint64_t)t;
#endif
}

/* a + b + carry (carry in {0,1}), carry out through *carry */
QR_ZK_HD uint64_t qr_zk_adc(uint64_t a, uint64_t b, uint64_t *carry)
{
#if defined(QR_ZK_X86)
    unsigned long long r;
    *carry = _addcarry_u64((unsigned char)*carry, a, b, &r);
    return r;
#elif defined(__CUDA_ARCH__)
    uint64_t s = a + b, c1 = s < a;
    uint64_t t = s + *carry, c2 = t < s;
    *carry = c1 | c2;
    return t;
#else
    qr_zk_u128 t = (qr_zk_u128)a + b + *carry;
    *carry = (uint64_t)(t >> 64);
    return (uint64_t)t;
#endif
}

/* a - b - borrow (borrow in {0,1}), borrow out through *borrow */
QR_ZK_HD uint64_t qr_zk_sbb(uint64_t a, uint64_t b, uint64_t *borrow)
{
#if defined(QR_ZK_X86)
    unsigned long long r;
    *borrow = _subborrow_u64((unsigned char)*borrow, a, b, &r);
    return r;
#elif defined(__CUDA_ARCH__)
    uint64_t d = a - b, b1 = a < b;
    uint64_t e = d - *borrow, b2 = d < *borrow;
    *borrow = b1 | b2;
    return e;
#else
    qr_zk_u128 t = (qr_zk_u128)a - b - *borrow;
    *borrow = (uint64_t)(t >> 64) & 1;
    return (uint64_t)t;
#endif
}

/* r = t - m if t >= m else t, for t < 2m; by mask, no branch */
QR_ZK_HD void qr_zk_reduce_once(uint64_t r[4], uint64_t t0, uint64_t t1, uint64_t t2, uint64_t t3,
                                const uint64_t m[4])
{
    uint64_t b = 0;
    uint64_t s0 = qr_zk_sbb(t0, m[0], &b);
    uint64_t s1 = qr_zk_sbb(t1, m[1], &b);
    uint64_t s2 = qr_zk_sbb(t2, m[2], &b);
    uint64_t s3 = qr_zk_sbb(t3, m[3], &b);
    uint64_t keep = 0 - b; /* all ones when t < m */
    r[0] = (t0 & keep) | (s0 & ~keep);
    r[1] = (t1 & keep) | (s1 & ~keep);
    r[2] = (t2 & keep) | (s2 & ~keep);
    r[3] = (t3 & keep) | (s3 & ~keep);
}

/* a + b mod m; a, b < m < 2^255 so the sum fits in 256 bits */
QR_ZK_HD void qr_zk_add(uint64_t r[4], const uint64_t a[4], const uint64_t b[4],
                        const uint64_t m[4])
{
    uint64_t c = 0;
    uint64_t t0 = qr_zk_adc(a[0], b[0], &c);
    uint64_t t1 = qr_zk_adc(a[1], b[1], &c);
    uint64_t t2 = qr_zk_adc(a[2], b[2], &c);
    uint64_t t3 = qr_zk_adc(a[3], b[3], &c);
    qr_zk_reduce_once(r, t0, t1, t2, t3, m);
}

/* a - b mod m: subtract, then add m back under the borrow's mask */
QR_ZK_HD void qr_zk_sub(uint64_t r[4], const uint64_t a[4], const uint64_t b[4],
                        const uint64_t m[4])
{
    uint64_t bw = 0, c = 0;
    uint64_t t0 = qr_zk_sbb(a[0], b[0], &bw);
    uint64_t t1 = qr_zk_sbb(a[1], b[1], &bw);
    uint64_t t2 = qr_zk_sbb(a[2], b[2], &bw);
    uint64_t t3 = qr_zk_sbb(a[3], b[3], &bw);
    uint64_t mask = 0 - bw;
    r[0] = qr_zk_adc(t0, m[0] & mask, &c);
    r[1] = qr_zk_adc(t1, m[1] & mask, &c);
    r[2] = qr_zk_adc(t2, m[2] & mask, &c);
    r[3] = qr_zk_adc(t3, m[3] & mask, &c);
}

/* -a mod m (0 stays 0) */
QR_ZK_HD void qr_zk_neg(uint64_t r[4], const uint64_t a[4], const uint64_t m[4])
{
    uint64_t nz = a[0] | a[1] | a[2] | a[3], b = 0;
    uint64_t mask = 0 - (uint64_t)(nz != 0);
    uint64_t r0 = qr_zk_sbb(m[0] & mask, a[0], &b);
    uint64_t r1 = qr_zk_sbb(m[1] & mask, a[1], &b);
    uint64_t r2 = qr_zk_sbb(m[2] & mask, a[2], &b);
    uint64_t r3 = qr_zk_sbb(m[3] & mask, a[3], &b);
    r[0] = r0;
    r[1] = r1;
    r[2] = r2;
    r[3] = r3;
}

/* a * b * 2^-256 mod m (CIOS, no final carry; see the header comment).  r may
 * alias a or b.  One round per limb of b: add a * b_i, then add k * m with k
 * chosen to clear the low limb, and shift down a limb. */
QR_ZK_HD void qr_zk_mont_mul(uint64_t r[4], const uint64_t a[4], const uint64_t b[4],
                             const uint64_t m[4], uint64_t inv)
{
    const uint64_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    const uint64_t m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3];
    const uint64_t b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
    uint64_t t0 = 0, t1 = 0, t2 = 0, t3 = 0, A, C, k;
#define QR_ZK_CIOS_ROUND(bi)                                                                       \
    t0 = qr_zk_mac(a0, bi, t0, 0, &A);                                                             \
    k = t0 * inv;                                                                                  \
    (void)qr_zk_mac(k, m0, t0, 0, &C);                                                             \
    t1 = qr_zk_mac(a1, bi, t1, A, &A);                                                             \
    t0 = qr_zk_mac(k, m1, t1, C, &C);                                                              \
    t2 = qr_zk_mac(a2, bi, t2, A, &A);                                                             \
    t1 = qr_zk_mac(k, m2, t2, C, &C);                                                              \
    t3 = qr_zk_mac(a3, bi, t3, A, &A);                                                             \
    t2 = qr_zk_mac(k, m3, t3, C, &C);                                                              \
    t3 = C + A;
    QR_ZK_CIOS_ROUND(b0)
    QR_ZK_CIOS_ROUND(b1)
    QR_ZK_CIOS_ROUND(b2)
    QR_ZK_CIOS_ROUND(b3)
#undef QR_ZK_CIOS_ROUND
    qr_zk_reduce_once(r, t0, t1, t2, t3, m);
}

/* Montgomery multiplication as the per-field wrappers call it: the MULX/ADX
 * assembly when the CPU has it (one predictable branch on a flag read from
 * memory), the C above otherwise.  q names the table fp_x86.h reads
 * (qr_zk_adx_fp_q, qr_zk_adx_fr_q). */
#if defined(QR_ZK_ADX_ASM)
/* With the assembly in the build the C multiplication is called out of
 * line (qr_zk_mont_mul_c): the branch then costs a few bytes at each call
 * site, so qr_fp_mul stays small enough for GCC to inline everywhere, which
 * it declines to do with both bodies inside (measured: the MSM 10 % slower).
 * A CPU without ADX pays a call per multiplication instead. */
static __attribute__((noinline, unused)) void qr_zk_mont_mul_c(uint64_t r[4], const uint64_t a[4],
                                                              const uint64_t b[4],
                                                              const qr_zk_adx_q_t *q)
{
    qr_zk_mont_mul(r, a, b, q->m, q->inv);
}
#define QR_ZK_MONT(r, a, b, m, inv, q)                                                             \
    ((void)(m), (void)(inv),                                                                       \
     __builtin_expect(qr_zk_adx, 1) ? qr_zk_mont_mul_adx(r, a, b, &q)                              \
                                    : qr_zk_mont_mul_c(r, a, b, &q))
#define QR_ZK_MONT_SQR(r, a, m, inv, q)                                                            \
    ((void)(m), (void)(inv),                                                                       \
     __builtin_expect(qr_zk_adx, 1) ? qr_zk_mont_sqr_adx(r, a, &q) : qr_zk_mont_mul_c(r, a, a, &q))
/* addition and subtraction: baseline x86-64 instructions, no flag */
#define QR_ZK_ADD(r, a, b, m, q) ((void)(m), qr_zk_add_x86(r, a, b, &q))
#define QR_ZK_SUB(r, a, b, m, q) ((void)(m), qr_zk_sub_x86(r, a, b, &q))
#else
#define QR_ZK_MONT(r, a, b, m, inv, q) qr_zk_mont_mul(r, a, b, m, inv)
#define QR_ZK_MONT_SQR(r, a, m, inv, q) qr_zk_mont_sqr(r, a, m, inv)
#define QR_ZK_ADD(r, a, b, m, q) qr_zk_add(r, a, b, m)
#define QR_ZK_SUB(r, a, b, m, q) qr_zk_sub(r, a, b, m)
#endif

/* Squaring is the multiplication in C: a separate SOS squaring (cross
 * products once, doubled) measured slower with GCC, its extra carry handling
 * costing more than the three multiplications it saves.  The assembly has
 * one (fp_x86.h: 10 mulx against 16, 9 % more throughput). */
QR_ZK_HD void qr_zk_mont_sqr(uint64_t r[4], const uint64_t a[4], const uint64_t m[4], uint64_t inv)
{
    qr_zk_mont_mul(r, a, a, m, inv);
}

QR_ZK_HD bool qr_zk_is_zero(const uint64_t a[4])
{
    return (a[0] | a[1] | a[2] | a[3]) == 0;
}

QR_ZK_HD bool qr_zk_eq(const uint64_t a[4], const uint64_t b[4])
{
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
}

/* ---- the per-field operations ----
 * One macro writes both fields' wrappers so Fp and Fr cannot drift apart;
 * the modulus is a local array of literals so that, once inlined, the
 * compiler (and nvcc) sees immediates rather than a load from memory. */
#define QR_ZK_FIELD_OPS(T, F, MOD, INV, ONE, R2, Q)                                                \
    QR_ZK_HD void F##_zero(T *r)                                                                   \
    {                                                                                              \
        r->l[0] = r->l[1] = r->l[2] = r->l[3] = 0;                                                 \
    }                                                                                              \
    QR_ZK_HD void F##_one(T *r)                                                                    \
    {                                                                                              \
        const T one = {ONE};                                                                       \
        *r = one;                                                                                  \
    }                                                                                              \
    QR_ZK_HD void F##_add(T *r, const T *a, const T *b)                                            \
    {                                                                                              \
        const uint64_t m[4] = MOD;                                                                 \
        QR_ZK_ADD(r->l, a->l, b->l, m, Q);                                                         \
    }                                                                                              \
    QR_ZK_HD void F##_sub(T *r, const T *a, const T *b)                                            \
    {                                                                                              \
        const uint64_t m[4] = MOD;                                                                 \
        QR_ZK_SUB(r->l, a->l, b->l, m, Q);                                                         \
    }                                                                                              \
    QR_ZK_HD void F##_dbl(T *r, const T *a)                                                        \
    {                                                                                              \
        const uint64_t m[4] = MOD;                                                                 \
        QR_ZK_ADD(r->l, a->l, a->l, m, Q);                                                         \
    }                                                                                              \
    QR_ZK_HD void F##_neg(T *r, const T *a)                                                        \
    {                                                                                              \
        const uint64_t m[4] = MOD;                                                                 \
        qr_zk_neg(r->l, a->l, m);                                                                  \
    }                                                                                              \
    QR_ZK_HD void F##_mul(T *r, const T *a, const T *b)                                            \
    {                                                                                              \
        const uint64_t m[4] = MOD;                                                                 \
        QR_ZK_MONT(r->l, a->l, b->l, m, INV, Q);                                                   \
    }                                                                                              \
    QR_ZK_HD void F##_sqr(T *r, const T *a)                                                        \
    {                                                                                              \
        const uint64_t m[4] = MOD;                                                                 \
        QR_ZK_MONT_SQR(r->l, a->l, m, INV, Q);                                                     \
    }                                                                                              \
    QR_ZK_HD bool F##_is_zero(const T *a)                                                          \
    {                                                                                              \
        return qr_zk_is_zero(a->l);                                                                \
    }                                                                                              \
    QR_ZK_HD bool F##_eq(const T *a, const T *b)                                                   \
    {                                                                                              \
        return qr_zk_eq(a->l, b->l);                                                               \
    }                                                                                              \
    QR_ZK_HD bool F##_is_one(const T *a)                                                           \
    {                                                                                              \
        const uint64_t one[4] = ONE;                                                               \
        return qr_zk_eq(a->l, one);                                                                \
    }                                                                                              \
    /* Montgomery form of a small integer */                                                       \
    QR_ZK_HD void F##_from_u64(T *r, uint64_t x)                                                   \
    {                                                                                              \
        const uint64_t m[4] = MOD, r2[4] = R2, v[4] = {x, 0, 0, 0};                                \
        QR_ZK_MONT(r->l, v, r2, m, INV, Q);                                                        \
    }                                                                                              \
    /* canonical integer limbs (must be < m) into Montgomery form */                               \
    QR_ZK_HD void F##_from_canonical(T *r, const uint64_t v[4])                                    \
    {                                                                                              \
        const uint64_t m[4] = MOD, r2[4] = R2;                                                     \
        QR_ZK_MONT(r->l, v, r2, m, INV, Q);                                                        \
    }                                                                                              \
    /* Montgomery form out to canonical integer limbs */                                           \
    QR_ZK_HD void F##_to_canonical(uint64_t v[4], const T *a)                                      \
    {                                                                                              \
        const uint64_t m[4] = MOD, one[4] = {1, 0, 0, 0};                                          \
        QR_ZK_MONT(v, a->l, one, m, INV, Q);                                                       \
    }

QR_ZK_FIELD_OPS(qr_fp_t, qr_fp, QR_FP_MOD, QR_FP_INV, QR_FP_ONE, QR_FP_R2, qr_zk_adx_fp_q)
QR_ZK_FIELD_OPS(qr_fr_t, qr_fr, QR_FR_MOD, QR_FR_INV, QR_FR_ONE, QR_FR_R2, qr_zk_adx_fr_q)

#ifdef __cplusplus
extern "C" {
#endif

/* ---- bn254_field.c: the slower routines (out of line, host code only) ----
 *
 * Byte layouts (32 bytes per element):
 *   be32      canonical integer, big-endian: EIP-196/197 precompile input,
 *             Solidity verifiers.
 *   le32      canonical integer, little-endian: .wtns witness values and the
 *             prime fields in .zkey/.r1cs headers.
 *   mont_le32 Montgomery form, little-endian (the raw limbs): what snarkjs
 *             writes for points and field elements in .zkey sections
 *             (ffjavascript toRprLEM).
 * Every reader refuses a value >= m (returns -1) rather than reducing it: a
 * non-canonical encoding is a malformed file or a malleability attempt. */

int qr_fp_from_be32(qr_fp_t *r, const uint8_t in[32]);
void qr_fp_to_be32(uint8_t out[32], const qr_fp_t *a);
int qr_fp_from_le32(qr_fp_t *r, const uint8_t in[32]);
void qr_fp_to_le32(uint8_t out[32], const qr_fp_t *a);
int qr_fp_from_mont_le32(qr_fp_t *r, const uint8_t in[32]);
void qr_fp_to_mont_le32(uint8_t out[32], const qr_fp_t *a);
int qr_fr_from_be32(qr_fr_t *r, const uint8_t in[32]);
void qr_fr_to_be32(uint8_t out[32], const qr_fr_t *a);
int qr_fr_from_le32(qr_fr_t *r, const uint8_t in[32]);
void qr_fr_to_le32(uint8_t out[32], const qr_fr_t *a);
int qr_fr_from_mont_le32(qr_fr_t *r, const uint8_t in[32]);
void qr_fr_to_mont_le32(uint8_t out[32], const qr_fr_t *a);

/* Decimal, as snarkjs JSON writes field elements: digits only, no sign, no
 * leading '+', no spaces; leading zeros are accepted.  Returns -1 on an empty
 * string, a non-digit, or a value >= m. */
int qr_fp_from_dec(qr_fp_t *r, const char *s);
int qr_fr_from_dec(qr_fr_t *r, const char *s);
/* Writes the canonical value as decimal; out needs QR_ZK_DEC_MAX bytes
 * (77 digits and the NUL).  Returns out. */
#define QR_ZK_DEC_MAX 78
char *qr_fp_to_dec(char out[QR_ZK_DEC_MAX], const qr_fp_t *a);
char *qr_fr_to_dec(char out[QR_ZK_DEC_MAX], const qr_fr_t *a);

/* a^e for a 256-bit exponent given as canonical little-endian limbs; the
 * sequence of operations and the memory accesses depend only on e (a fixed
 * 4-bit window: 14 multiplications for a^2..a^15, then 256 squarings and 64
 * multiplications by the table entry each nibble of e picks). */
void qr_fp_pow(qr_fp_t *r, const qr_fp_t *a, const uint64_t e[4]);
void qr_fr_pow(qr_fr_t *r, const qr_fr_t *a, const uint64_t e[4]);
/* 1/a by Fermat (a^(m-2)): the same operations for every input, 334
 * multiplications and squarings.  The inverse of 0 is 0. */
void qr_fp_inv(qr_fp_t *r, const qr_fp_t *a);
void qr_fr_inv(qr_fr_t *r, const qr_fr_t *a);
/* Montgomery's trick: out[i] = 1/in[i] for n elements with one inversion and
 * 3(n-1) multiplications; zeros map to zero.  out may equal in.  scratch
 * holds n elements.  */
void qr_fp_batch_inv(qr_fp_t *out, const qr_fp_t *in, size_t n, qr_fp_t *scratch);
void qr_fr_batch_inv(qr_fr_t *out, const qr_fr_t *in, size_t n, qr_fr_t *scratch);
/* Square root in Fp (p = 3 mod 4, so a^((p+1)/4)).  Returns false, r
 * untouched, when a is not a square. */
bool qr_fp_sqrt(qr_fp_t *r, const qr_fp_t *a);
/* Legendre symbol: 1 for a non-zero square, -1 for a non-square, 0 for 0 */
int qr_fp_legendre(const qr_fp_t *a);

/* Which Montgomery multiplication the field operations run (every Fp and Fr
 * multiplication and squaring, hence the tower, curves, MSM and NTT).
 * Chosen before main(): the MULX/ADX assembly of fp_x86.h when the build has
 * it (GCC or Clang, x86-64) and cpuid reports BMI2 and ADX, unless the
 * environment has QUARRY_ZK_FMUL=portable; the portable C otherwise.
 * qr_zk_fmul_select switches it for tests and benchmarks (call it while no
 * other thread is computing): true asks for the assembly and returns -1,
 * changing nothing, where it is not available; false always succeeds.
 * qr_zk_fmul_name says which one runs: "mulx-adx" or "portable". */
bool qr_zk_fmul_adx_available(void);
int qr_zk_fmul_select(bool adx);
const char *qr_zk_fmul_name(void);

#ifdef __cplusplus
}
#endif

#endif
