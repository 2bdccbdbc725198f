/* quarry-verify VK_JSON PUBLIC_JSON PROOF_JSON
 *
 * Checks a Groth16 proof over BN254 as `snarkjs groth16 verify` does, from
 * the same three snarkjs JSON files.  Exit status: 0 for a valid proof
 * only, 1 for an invalid one, 2 for a usage error or a file that cannot be
 * read or parsed (with a message on stderr naming the file and the
 * problem).  A malformed proof (a point off its curve or, for pi_b,
 * outside G2) counts as invalid input, hence 2: it cannot be a proof of
 * anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "g16_json.h"
#include "verify.h"

static int s_usage(void)
{
    fprintf(stderr, "usage: quarry-verify VK_JSON PUBLIC_JSON PROOF_JSON\n"
                    "exit 0: valid proof, 1: invalid proof, 2: usage or file error\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        s_usage();
        return 0;
    }
    if (argc != 4)
        return s_usage();
    char err[512];
    int rc = 2;
    qr_fr_t *pub = NULL;
    uint32_t n_pub = 0;
    qr_g16_proof_t proof;
    qr_g16_vk_t *vk = qr_g16_vk_load(argv[1], err, sizeof err);
    int e = 0;
    if (!vk || (e = qr_g16_public_load(&pub, &n_pub, argv[2], err, sizeof err)) ||
        (e = qr_g16_proof_load(&proof, argv[3], err, sizeof err))) {
        fprintf(stderr, "quarry-verify: %s\n", err);
        if (e == QR_G16_JSON_EINVALID) {
            printf("INVALID: the proof does not verify\n");
            rc = 1;
        }
        goto done;
    }
    if (n_pub != vk->n_public) {
        fprintf(stderr, "quarry-verify: %s has %u public signals, the key expects %u\n", argv[2],
                n_pub, vk->n_public);
        rc = 1;
        goto done;
    }
    if (qr_g16_verify(vk, pub, n_pub, &proof)) {
        printf("OK: valid proof\n");
        rc = 0;
    } else {
        printf("INVALID: the proof does not verify\n");
        rc = 1;
    }
done:
    free(pub);
    qr_g16_vk_destroy(&vk);
    return rc;
}
