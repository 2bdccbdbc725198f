/* quarry-prove ZKEY WTNS PROOF_JSON PUBLIC_JSON
 *
 * A Groth16 proof over BN254 from a snarkjs .zkey and a witness (.wtns),
 * written as snarkjs writes proof.json and public.json: the arguments of
 * rapidsnark's prover, so it drops in where that is used.  Threads: all
 * online CPUs, or QUARRY_PROVE_THREADS.  Exit status 0 on success, 1 when
 * proving fails, 2 for a usage error or a file that cannot be read or
 * written (a message on stderr names the file, section and offset). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "g16_json.h"
#include "prover.h"
#include "wtns.h"
#include "zkey.h"

static int s_usage(void)
{
    fprintf(stderr, "usage: quarry-prove ZKEY WTNS PROOF_JSON PUBLIC_JSON\n");
    return 2;
}

static int s_threads(void)
{
    const char *e = getenv("QUARRY_PROVE_THREADS");
    if (e && *e) {
        char *end;
        long n = strtol(e, &end, 10);
        if (*end == 0 && n > 0 && n <= 1024)
            return (int)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return s_usage();
    char err[512];
    int rc = 2;
    char *proof_json = NULL, *public_json = NULL;
    qr_wtns_t *w = NULL;
    qr_g16_pk_t *pk = qr_zkey_load(argv[1], 0, err, sizeof err);
    if (!pk || !(w = qr_wtns_load(argv[2], err, sizeof err))) {
        fprintf(stderr, "quarry-prove: %s\n", err);
        goto done;
    }
    if (w->n != pk->n_vars) {
        fprintf(stderr, "quarry-prove: %s has %u values, the circuit of %s has %u signals\n",
                argv[2], w->n, argv[1], pk->n_vars);
        goto done;
    }
    qr_g16_proof_t proof;
    if (qr_g16_prove(pk, w->values, w->n, s_threads(), &proof, err, sizeof err)) {
        fprintf(stderr, "quarry-prove: %s\n", err);
        rc = 1;
        goto done;
    }
    /* the public signals are the witness values right after the 1 */
    proof_json = qr_g16_proof_to_json(&proof);
    public_json = qr_g16_public_to_json(w->values + 1, pk->n_public);
    if (!proof_json || !public_json) {
        fprintf(stderr, "quarry-prove: out of memory\n");
        goto done;
    }
    if (qr_g16_write_text(argv[3], proof_json, err, sizeof err) ||
        qr_g16_write_text(argv[4], public_json, err, sizeof err)) {
        fprintf(stderr, "quarry-prove: %s\n", err);
        goto done;
    }
    rc = 0;
done:
    free(proof_json);
    free(public_json);
    qr_wtns_destroy(&w);
    qr_g16_pk_destroy(&pk);
    return rc;
}
