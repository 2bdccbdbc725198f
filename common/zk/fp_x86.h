/* Montgomery multiplication for the BN254 fields with MULX/ADCX/ADOX
 * (BMI2 + ADX, Intel Broadwell and AMD Zen on), and addition and
 * subtraction, as GCC extended inline assembly.  Included by bn254_field.h
 * on the host only: never under nvcc (neither pass), never off x86-64,
 * never at -O0, never with QR_ZK_NO_ASM defined.  The assembler accepts the
 * instructions whatever -march says; whether the multiplication may run is
 * decided at run time (qr_zk_adx, bn254_field.c), so one binary runs on
 * every x86-64 (the addition and subtraction use baseline instructions
 * only).
 *
 * The algorithm is the CIOS of qr_zk_mont_mul with the same "no final
 * carry" argument (both moduli have a top limb below (2^64 - 1)/2 - 1), laid
 * out as in gnark-crypto's generated amd64 code: per limb b_i,
 *
 *   t += a * b_i     low halves on the OF chain (adox), high halves on the
 *                    CF chain (adcx), so the two run side by side;
 *   k = t_0 * inv;  t = (t + k * m) / 2^64   the same two chains;
 *
 * then one conditional subtraction by cmov.  Ten registers (the operands
 * stay in memory, each mulx taking one limb from there), so it inlines into
 * the group laws without spilling much.  Nothing depends on the values: no
 * branch, cmov for the last step.
 *
 * q holds m and inv: a static const table, so once inlined the constants
 * are RIP-relative memory operands. */
#ifndef QR_ZK_FP_X86_H
#define QR_ZK_FP_X86_H

#include <stdint.h>
#include <x86intrin.h>

#include "bn254_consts.h"

/* one multiply-accumulate round for limb B (a byte offset into b) when t
 * already holds something: t += a * b_i, the carry-out word in A */
#define QR_ZK_ADX_MULROUND(B)                                                                      \
    "movq " B "(%[b]), %%rdx\n\t"                                                                  \
    "xorl %k[lo], %k[lo]\n\t"                                                                      \
    "mulxq 0(%[a]), %[lo], %[hi]\n\t"                                                              \
    "adoxq %[lo], %[t0]\n\t"                                                                       \
    "adcxq %[hi], %[t1]\n\t"                                                                       \
    "mulxq 8(%[a]), %[lo], %[hi]\n\t"                                                              \
    "adoxq %[lo], %[t1]\n\t"                                                                       \
    "adcxq %[hi], %[t2]\n\t"                                                                       \
    "mulxq 16(%[a]), %[lo], %[hi]\n\t"                                                             \
    "adoxq %[lo], %[t2]\n\t"                                                                       \
    "adcxq %[hi], %[t3]\n\t"                                                                       \
    "mulxq 24(%[a]), %[lo], %[A]\n\t"                                                              \
    "adoxq %[lo], %[t3]\n\t"                                                                       \
    "movl $0, %k[lo]\n\t"                                                                          \
    "adcxq %[lo], %[A]\n\t"                                                                        \
    "adoxq %[lo], %[A]\n\t"

/* t = (t + k m) / 2^64 + A 2^192 with k = t_0 inv: the low word cancels, only
 * its carry is kept */
#define QR_ZK_ADX_REDROUND                                                                         \
    "movq %[t0], %%rdx\n\t"                                                                        \
    "imulq %[inv], %%rdx\n\t"                                                                      \
    "xorl %k[lo], %k[lo]\n\t"                                                                      \
    "mulxq %[q0], %[lo], %[hi]\n\t"                                                                \
    "adcxq %[t0], %[lo]\n\t"                                                                       \
    "movq %[hi], %[t0]\n\t"                                                                        \
    "adcxq %[t1], %[t0]\n\t"                                                                       \
    "mulxq %[q1], %[lo], %[t1]\n\t"                                                                \
    "adoxq %[lo], %[t0]\n\t"                                                                       \
    "adcxq %[t2], %[t1]\n\t"                                                                       \
    "mulxq %[q2], %[lo], %[t2]\n\t"                                                                \
    "adoxq %[lo], %[t1]\n\t"                                                                       \
    "adcxq %[t3], %[t2]\n\t"                                                                       \
    "mulxq %[q3], %[lo], %[t3]\n\t"                                                                \
    "adoxq %[lo], %[t2]\n\t"                                                                       \
    "movl $0, %k[lo]\n\t"                                                                          \
    "adcxq %[lo], %[t3]\n\t"                                                                       \
    "adoxq %[A], %[t3]\n\t"

/* a * b * 2^-256 mod m, a, b < m; r may alias a or b (the result is stored
 * after the assembly has read both) */
typedef struct {
    uint64_t m[4], inv;
} qr_zk_adx_q_t;

static inline __attribute__((always_inline)) void
qr_zk_mont_mul_adx(uint64_t r[4], const uint64_t a[4], const uint64_t b[4], const qr_zk_adx_q_t *q)
{
    uint64_t t0, t1, t2, t3, A, lo, hi, dx;
    __asm__("movq 0(%[b]), %%rdx\n\t"
            "xorl %k[lo], %k[lo]\n\t"
            "mulxq 0(%[a]), %[t0], %[t1]\n\t"
            "mulxq 8(%[a]), %[lo], %[t2]\n\t"
            "adoxq %[lo], %[t1]\n\t"
            "mulxq 16(%[a]), %[lo], %[t3]\n\t"
            "adoxq %[lo], %[t2]\n\t"
            "mulxq 24(%[a]), %[lo], %[A]\n\t"
            "adoxq %[lo], %[t3]\n\t"
            "movl $0, %k[lo]\n\t"
            "adoxq %[lo], %[A]\n\t" /* round 0: t = a b_0 */
            QR_ZK_ADX_REDROUND QR_ZK_ADX_MULROUND("8") QR_ZK_ADX_REDROUND QR_ZK_ADX_MULROUND("16")
                QR_ZK_ADX_REDROUND QR_ZK_ADX_MULROUND("24") QR_ZK_ADX_REDROUND
            /* t < 2m: subtract m into (A, lo, hi, rdx), keep it unless it borrowed */
            "movq %[t0], %[A]\n\t"
            "subq %[q0], %[A]\n\t"
            "movq %[t1], %[lo]\n\t"
            "sbbq %[q1], %[lo]\n\t"
            "movq %[t2], %[hi]\n\t"
            "sbbq %[q2], %[hi]\n\t"
            "movq %[t3], %%rdx\n\t"
            "sbbq %[q3], %%rdx\n\t"
            "cmovncq %[A], %[t0]\n\t"
            "cmovncq %[lo], %[t1]\n\t"
            "cmovncq %[hi], %[t2]\n\t"
            "cmovncq %%rdx, %[t3]\n\t"
            : [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [A] "=&r"(A),
              [lo] "=&r"(lo), [hi] "=&r"(hi), "=&d"(dx)
            : [a] "r"(a), [b] "r"(b), "m"(*(const uint64_t(*)[4])a),
              "m"(*(const uint64_t(*)[4])b), [q0] "m"(q->m[0]), [q1] "m"(q->m[1]),
              [q2] "m"(q->m[2]), [q3] "m"(q->m[3]), [inv] "m"(q->inv)
            : "cc");
    r[0] = t0;
    r[1] = t1;
    r[2] = t2;
    r[3] = t3;
}

#undef QR_ZK_ADX_MULROUND
#undef QR_ZK_ADX_REDROUND

/* a^2 * 2^-256 mod m: the square first (six cross products once, doubled
 * on the CF chain while the four squares go in on the OF chain: 10 mulx
 * against 16), then the low half reduced by four Montgomery rounds and the
 * high half added: (T_hi R + T_lo + K m) / R = T_hi + (T_lo + K m) / R,
 * where (T_lo + K m) / R <= m and T_hi < m^2 / R < m / 4, so one
 * conditional subtraction.  r may alias a. */
#define QR_ZK_ADX_REDROUND0                                                                        \
    "movq %[t0], %%rdx\n\t"                                                                        \
    "imulq %[inv], %%rdx\n\t"                                                                      \
    "xorl %k[lo], %k[lo]\n\t"                                                                      \
    "mulxq %[q0], %[lo], %[hi]\n\t"                                                                \
    "adcxq %[t0], %[lo]\n\t"                                                                       \
    "movq %[hi], %[t0]\n\t"                                                                        \
    "adcxq %[t1], %[t0]\n\t"                                                                       \
    "mulxq %[q1], %[lo], %[t1]\n\t"                                                                \
    "adoxq %[lo], %[t0]\n\t"                                                                       \
    "adcxq %[t2], %[t1]\n\t"                                                                       \
    "mulxq %[q2], %[lo], %[t2]\n\t"                                                                \
    "adoxq %[lo], %[t1]\n\t"                                                                       \
    "adcxq %[t3], %[t2]\n\t"                                                                       \
    "mulxq %[q3], %[lo], %[t3]\n\t"                                                                \
    "adoxq %[lo], %[t2]\n\t"                                                                       \
    "movl $0, %k[lo]\n\t"                                                                          \
    "adcxq %[lo], %[t3]\n\t"                                                                       \
    "adoxq %[lo], %[t3]\n\t"

static inline __attribute__((always_inline)) void
qr_zk_mont_sqr_adx(uint64_t r[4], const uint64_t a[4], const qr_zk_adx_q_t *q)
{
    uint64_t t0, t1, t2, t3, t4, t5, t6, t7, lo, hi, dx;
    __asm__(/* cross products a_i a_j, i < j, into t1..t6 */
            "movq 0(%[a]), %%rdx\n\t"
            "mulxq 8(%[a]), %[t1], %[t2]\n\t"
            "mulxq 16(%[a]), %[lo], %[t3]\n\t"
            "addq %[lo], %[t2]\n\t"
            "mulxq 24(%[a]), %[lo], %[t4]\n\t"
            "adcq %[lo], %[t3]\n\t"
            "movq 8(%[a]), %%rdx\n\t"
            "mulxq 16(%[a]), %[lo], %[hi]\n\t"
            "adcq $0, %[t4]\n\t"
            "xorl %k[t5], %k[t5]\n\t"
            "adoxq %[lo], %[t3]\n\t"
            "adcxq %[hi], %[t4]\n\t"
            "mulxq 24(%[a]), %[lo], %[hi]\n\t"
            "adoxq %[lo], %[t4]\n\t"
            "adcxq %[hi], %[t5]\n\t"
            "movq 16(%[a]), %%rdx\n\t"
            "mulxq 24(%[a]), %[lo], %[t6]\n\t"
            "adoxq %[lo], %[t5]\n\t"
            "movl $0, %k[t7]\n\t"
            "adcxq %[t7], %[t6]\n\t"
            "adoxq %[t7], %[t6]\n\t"
            /* doubled (CF chain), plus the squares a_i^2 (OF chain) */
            "xorl %k[lo], %k[lo]\n\t"
            "movq 0(%[a]), %%rdx\n\t"
            "mulxq %%rdx, %[t0], %[hi]\n\t"
            "adcxq %[t1], %[t1]\n\t"
            "adoxq %[hi], %[t1]\n\t"
            "movq 8(%[a]), %%rdx\n\t"
            "mulxq %%rdx, %[lo], %[hi]\n\t"
            "adcxq %[t2], %[t2]\n\t"
            "adoxq %[lo], %[t2]\n\t"
            "adcxq %[t3], %[t3]\n\t"
            "adoxq %[hi], %[t3]\n\t"
            "movq 16(%[a]), %%rdx\n\t"
            "mulxq %%rdx, %[lo], %[hi]\n\t"
            "adcxq %[t4], %[t4]\n\t"
            "adoxq %[lo], %[t4]\n\t"
            "adcxq %[t5], %[t5]\n\t"
            "adoxq %[hi], %[t5]\n\t"
            "movq 24(%[a]), %%rdx\n\t"
            "mulxq %%rdx, %[lo], %[hi]\n\t"
            "adcxq %[t6], %[t6]\n\t"
            "adoxq %[lo], %[t6]\n\t"
            "adcxq %[t7], %[t7]\n\t"
            "adoxq %[hi], %[t7]\n\t"
            /* (t0..t3 + K m) / 2^256 */
            QR_ZK_ADX_REDROUND0 QR_ZK_ADX_REDROUND0 QR_ZK_ADX_REDROUND0 QR_ZK_ADX_REDROUND0
            /* + the high half, < 2m; then subtract m unless it borrows */
            "addq %[t4], %[t0]\n\t"
            "adcq %[t5], %[t1]\n\t"
            "adcq %[t6], %[t2]\n\t"
            "adcq %[t7], %[t3]\n\t"
            "movq %[t0], %[t4]\n\t"
            "subq %[q0], %[t4]\n\t"
            "movq %[t1], %[t5]\n\t"
            "sbbq %[q1], %[t5]\n\t"
            "movq %[t2], %[t6]\n\t"
            "sbbq %[q2], %[t6]\n\t"
            "movq %[t3], %[t7]\n\t"
            "sbbq %[q3], %[t7]\n\t"
            "cmovncq %[t4], %[t0]\n\t"
            "cmovncq %[t5], %[t1]\n\t"
            "cmovncq %[t6], %[t2]\n\t"
            "cmovncq %[t7], %[t3]\n\t"
            : [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [t4] "=&r"(t4),
              [t5] "=&r"(t5), [t6] "=&r"(t6), [t7] "=&r"(t7), [lo] "=&r"(lo), [hi] "=&r"(hi),
              "=&d"(dx)
            : [a] "r"(a), "m"(*(const uint64_t(*)[4])a), [q0] "m"(q->m[0]), [q1] "m"(q->m[1]),
              [q2] "m"(q->m[2]), [q3] "m"(q->m[3]), [inv] "m"(q->inv)
            : "cc");
    r[0] = t0;
    r[1] = t1;
    r[2] = t2;
    r[3] = t3;
}

/* The two halves of a Montgomery multiplication apart, for sums of
 * products reduced once (Fp2 with lazy reduction, msm.c):
 *
 * qr_zk_mul512_adx: t = a b, the full 512-bit product of two 4-limb
 * integers (any values below 2^256), schoolbook with the low halves on
 * the OF chain and the high halves on the CF chain. */
static inline __attribute__((always_inline)) void
qr_zk_mul512_adx(uint64_t t[8], const uint64_t a[4], const uint64_t b[4])
{
    uint64_t t0, t1, t2, t3, t4, lo, hi, dx;
    __asm__("movq 0(%[b]), %%rdx\n\t" /* row 0: a b_0 into t0..t4 */
            "mulxq 0(%[a]), %[t0], %[t1]\n\t"
            "mulxq 8(%[a]), %[lo], %[t2]\n\t"
            "addq %[lo], %[t1]\n\t"
            "mulxq 16(%[a]), %[lo], %[t3]\n\t"
            "adcq %[lo], %[t2]\n\t"
            "mulxq 24(%[a]), %[lo], %[t4]\n\t"
            "adcq %[lo], %[t3]\n\t"
            "adcq $0, %[t4]\n\t"
            "movq %[t0], 0(%[t])\n\t"
            /* rows 1..3: t_i.. += a b_i; the finished low limb goes out */
            "movq 8(%[b]), %%rdx\n\t"
            "xorl %k[t0], %k[t0]\n\t"
            "mulxq 0(%[a]), %[lo], %[hi]\n\t"
            "adoxq %[lo], %[t1]\n\t"
            "adcxq %[hi], %[t2]\n\t"
            "mulxq 8(%[a]), %[lo], %[hi]\n\t"
            "adoxq %[lo], %[t2]\n\t"
            "adcxq %[hi], %[t3]\n\t"
            "mulxq 16(%[a]), %[lo], %[hi]\n\t"
            "adoxq %[lo], %[t3]\n\t"
            "adcxq %[hi], %[t4]\n\t"
            "mulxq 24(%[a]), %[lo], %[hi]\n\t"
            "adoxq %[lo], %[t4]\n\t"
            "adcxq %[t0], %[hi]\n\t" /* t0 = 0: CF in */
            "adoxq %[t0], %[hi]\n\t"
            "movq %[t1], 8(%[t])\n\t"
            "movq %[hi], %[t1]\n\t" /* t2 t3 t4 t1 now hold limbs 2..5 */
            "movq 16(%[b]), %%rdx\n\t"
            "xorl %k[t0], %k[t0]\n\t"
            "mulxq 0(%[a]), %[lo], %[hi]\n\t"
            "adoxq %[lo], %[t2]\n\t"
            "adcxq %[hi], %[t3]\n\t"
            "mulxq 8(%[a]), %[lo], %[hi]\n\t"
            "adoxq %[lo], %[t3]\n\t"
            "adcxq %[hi], %[t4]\n\t"
            "mulxq 16(%[a]), %[lo], %[hi]\n\t"
            "adoxq %[lo], %[t4]\n\t"
            "adcxq %[hi], %[t1]\n\t"
            "mulxq 24(%[a]), %[lo], %[hi]\n\t"
            "adoxq %[lo], %[t1]\n\t"
            "adcxq %[t0], %[hi]\n\t"
            "adoxq %[t0], %[hi]\n\t"
            "movq %[t2], 16(%[t])\n\t"
            "movq %[hi], %[t2]\n\t" /* t3 t4 t1 t2: limbs 3..6 */
            "movq 24(%[b]), %%rdx\n\t"
            "xorl %k[t0], %k[t0]\n\t"
            "mulxq 0(%[a]), %[lo], %[hi]\n\t"
            "adoxq %[lo], %[t3]\n\t"
            "adcxq %[hi], %[t4]\n\t"
            "mulxq 8(%[a]), %[lo], %[hi]\n\t"
            "adoxq %[lo], %[t4]\n\t"
            "adcxq %[hi], %[t1]\n\t"
            "mulxq 16(%[a]), %[lo], %[hi]\n\t"
            "adoxq %[lo], %[t1]\n\t"
            "adcxq %[hi], %[t2]\n\t"
            "mulxq 24(%[a]), %[lo], %[hi]\n\t"
            "adoxq %[lo], %[t2]\n\t"
            "adcxq %[t0], %[hi]\n\t"
            "adoxq %[t0], %[hi]\n\t"
            "movq %[t3], 24(%[t])\n\t"
            "movq %[t4], 32(%[t])\n\t"
            "movq %[t1], 40(%[t])\n\t"
            "movq %[t2], 48(%[t])\n\t"
            "movq %[hi], 56(%[t])\n\t"
            : [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [t4] "=&r"(t4),
              [lo] "=&r"(lo), [hi] "=&r"(hi), "=&d"(dx), "=m"(*(uint64_t(*)[8])t)
            : [a] "r"(a), [b] "r"(b), [t] "r"(t), "m"(*(const uint64_t(*)[4])a),
              "m"(*(const uint64_t(*)[4])b)
            : "cc");
}

/* qr_zk_redc_adx: r = t 2^-256 mod m for t < m 2^256 (8 limbs): four
 * Montgomery rounds on the low half (QR_ZK_ADX_REDROUND0, the squaring's), then the
 * high half added: (T_lo + K m) / R <= m and T_hi < m, so the sum is below
 * 2m < 2^256 and one conditional subtraction finishes. */
static inline __attribute__((always_inline)) void qr_zk_redc_adx(uint64_t r[4], const uint64_t t[8],
                                                                 const qr_zk_adx_q_t *q)
{
    uint64_t t0, t1, t2, t3, s0, s1, s2, s3, lo, hi, dx;
    __asm__("movq 0(%[t]), %[t0]\n\t"
            "movq 8(%[t]), %[t1]\n\t"
            "movq 16(%[t]), %[t2]\n\t"
            "movq 24(%[t]), %[t3]\n\t" QR_ZK_ADX_REDROUND0 QR_ZK_ADX_REDROUND0 QR_ZK_ADX_REDROUND0
                QR_ZK_ADX_REDROUND0 "addq 32(%[t]), %[t0]\n\t"
            "adcq 40(%[t]), %[t1]\n\t"
            "adcq 48(%[t]), %[t2]\n\t"
            "adcq 56(%[t]), %[t3]\n\t"
            "movq %[t0], %[s0]\n\t"
            "subq %[q0], %[s0]\n\t"
            "movq %[t1], %[s1]\n\t"
            "sbbq %[q1], %[s1]\n\t"
            "movq %[t2], %[s2]\n\t"
            "sbbq %[q2], %[s2]\n\t"
            "movq %[t3], %[s3]\n\t"
            "sbbq %[q3], %[s3]\n\t"
            "cmovncq %[s0], %[t0]\n\t"
            "cmovncq %[s1], %[t1]\n\t"
            "cmovncq %[s2], %[t2]\n\t"
            "cmovncq %[s3], %[t3]\n\t"
            : [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [s0] "=&r"(s0),
              [s1] "=&r"(s1), [s2] "=&r"(s2), [s3] "=&r"(s3), [lo] "=&r"(lo), [hi] "=&r"(hi),
              "=&d"(dx)
            : [t] "r"(t), "m"(*(const uint64_t(*)[8])t), [q0] "m"(q->m[0]), [q1] "m"(q->m[1]),
              [q2] "m"(q->m[2]), [q3] "m"(q->m[3]), [inv] "m"(q->inv)
            : "cc");
    r[0] = t0;
    r[1] = t1;
    r[2] = t2;
    r[3] = t3;
}

#undef QR_ZK_ADX_REDROUND0

/* (r0 + r1 u) = (a0 + a1 u)(b0 + b1 u) in Fp2 = Fp[u]/(u^2 + 1), all in
 * Montgomery form below m: Karatsuba with lazy reduction.  The three
 * products a0 b0, a1 b1, (a0 + a1)(b0 + b1) in full (the sums unreduced,
 * below 2m < 2^255), then
 *   r1 = P2 - P0 - P1 = a0 b1 + a1 b0 < 2 m^2,
 *   r0 = P0 - P1, plus m 2^256 when that is negative: below m 2^256,
 * each reduced once by qr_zk_redc_adx: two Montgomery reductions instead
 * of Karatsuba's three, and no reductions of the sums.  The outputs may
 * alias the inputs (both are written after everything is read). */
static inline void qr_zk_fp2_mul_adx(uint64_t r0[4], uint64_t r1[4], const uint64_t a0[4],
                                     const uint64_t a1[4], const uint64_t b0[4],
                                     const uint64_t b1[4], const qr_zk_adx_q_t *q)
{
    uint64_t p0[8], p1[8], p2[8], sa[4], sb[4], d0[8];
    unsigned char c = 0, cb = 0;
    unsigned long long x;
    qr_zk_mul512_adx(p0, a0, b0);
    qr_zk_mul512_adx(p1, a1, b1);
    for (int i = 0; i < 4; i++) {
        c = _addcarry_u64(c, a0[i], a1[i], &x);
        sa[i] = x;
    }
    c = 0;
    for (int i = 0; i < 4; i++) {
        c = _addcarry_u64(c, b0[i], b1[i], &x);
        sb[i] = x;
    }
    qr_zk_mul512_adx(p2, sa, sb);
    c = 0;
    for (int i = 0; i < 8; i++) { /* p2 -= p0 + p1 (never negative) */
        c = _subborrow_u64(c, p2[i], p0[i], &x);
        cb = _subborrow_u64(cb, x, p1[i], &x);
        p2[i] = x;
    }
    c = 0;
    for (int i = 0; i < 8; i++) {
        c = _subborrow_u64(c, p0[i], p1[i], &x);
        d0[i] = x;
    }
    uint64_t mask = (uint64_t)0 - (uint64_t)c; /* borrowed: add m 2^256, no branch */
    cb = 0;
    for (int i = 0; i < 4; i++) {
        cb = _addcarry_u64(cb, d0[4 + i], q->m[i] & mask, &x);
        d0[4 + i] = x;
    }
    qr_zk_redc_adx(r0, d0, q);
    qr_zk_redc_adx(r1, p2, q);
}

/* a + b mod m and a - b mod m, a, b < m < 2^255.  Plain add/adc/sbb/cmov,
 * so no cpuid check: GCC compiles the C versions' masked selects to SSE
 * shuffles and re-materialises carries with setb (45 instructions for an
 * addition); these are 17-18.  r may alias a or b. */
static inline __attribute__((always_inline)) void
qr_zk_add_x86(uint64_t r[4], const uint64_t a[4], const uint64_t b[4], const qr_zk_adx_q_t *q)
{
    uint64_t t0, t1, t2, t3, s0, s1, s2, s3;
    __asm__("movq 0(%[a]), %[t0]\n\t"
            "addq 0(%[b]), %[t0]\n\t"
            "movq 8(%[a]), %[t1]\n\t"
            "adcq 8(%[b]), %[t1]\n\t"
            "movq 16(%[a]), %[t2]\n\t"
            "adcq 16(%[b]), %[t2]\n\t"
            "movq 24(%[a]), %[t3]\n\t"
            "adcq 24(%[b]), %[t3]\n\t" /* < 2m < 2^256: no carry out */
            "movq %[t0], %[s0]\n\t"
            "subq %[q0], %[s0]\n\t"
            "movq %[t1], %[s1]\n\t"
            "sbbq %[q1], %[s1]\n\t"
            "movq %[t2], %[s2]\n\t"
            "sbbq %[q2], %[s2]\n\t"
            "movq %[t3], %[s3]\n\t"
            "sbbq %[q3], %[s3]\n\t"
            "cmovcq %[t0], %[s0]\n\t" /* borrowed: the sum was below m */
            "cmovcq %[t1], %[s1]\n\t"
            "cmovcq %[t2], %[s2]\n\t"
            "cmovcq %[t3], %[s3]\n\t"
            : [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [s0] "=&r"(s0),
              [s1] "=&r"(s1), [s2] "=&r"(s2), [s3] "=&r"(s3)
            : [a] "r"(a), [b] "r"(b), "m"(*(const uint64_t(*)[4])a), "m"(*(const uint64_t(*)[4])b),
              [q0] "m"(q->m[0]), [q1] "m"(q->m[1]), [q2] "m"(q->m[2]), [q3] "m"(q->m[3])
            : "cc");
    r[0] = s0;
    r[1] = s1;
    r[2] = s2;
    r[3] = s3;
}

static inline __attribute__((always_inline)) void
qr_zk_sub_x86(uint64_t r[4], const uint64_t a[4], const uint64_t b[4], const qr_zk_adx_q_t *q)
{
    uint64_t t0, t1, t2, t3, s0, s1, s2, s3;
    __asm__("movq 0(%[a]), %[t0]\n\t"
            "subq 0(%[b]), %[t0]\n\t"
            "movq 8(%[a]), %[t1]\n\t"
            "sbbq 8(%[b]), %[t1]\n\t"
            "movq 16(%[a]), %[t2]\n\t"
            "sbbq 16(%[b]), %[t2]\n\t"
            "movq 24(%[a]), %[t3]\n\t"
            "sbbq 24(%[b]), %[t3]\n\t"
            "sbbq %[s3], %[s3]\n\t" /* all ones when a < b */
            "movq %[q0], %[s0]\n\t"
            "andq %[s3], %[s0]\n\t"
            "movq %[q1], %[s1]\n\t"
            "andq %[s3], %[s1]\n\t"
            "movq %[q2], %[s2]\n\t"
            "andq %[s3], %[s2]\n\t"
            "andq %[q3], %[s3]\n\t"
            "addq %[s0], %[t0]\n\t" /* add m back under the mask */
            "adcq %[s1], %[t1]\n\t"
            "adcq %[s2], %[t2]\n\t"
            "adcq %[s3], %[t3]\n\t"
            : [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [s0] "=&r"(s0),
              [s1] "=&r"(s1), [s2] "=&r"(s2), [s3] "=&r"(s3)
            : [a] "r"(a), [b] "r"(b), "m"(*(const uint64_t(*)[4])a), "m"(*(const uint64_t(*)[4])b),
              [q0] "m"(q->m[0]), [q1] "m"(q->m[1]), [q2] "m"(q->m[2]), [q3] "m"(q->m[3])
            : "cc");
    r[0] = t0;
    r[1] = t1;
    r[2] = t2;
    r[3] = t3;
}

/* the moduli and -m^-1 mod 2^64 as the assembly reads them */
static const qr_zk_adx_q_t qr_zk_adx_fp_q = {QR_FP_MOD, QR_FP_INV};
static const qr_zk_adx_q_t qr_zk_adx_fr_q = {QR_FR_MOD, QR_FR_INV};

#endif
