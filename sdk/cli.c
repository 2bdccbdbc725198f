/* quarry: the command-line client, a thin layer over libquarry (quarry.h only).
 *
 *   quarry [GLOBAL FLAGS] COMMAND [ARGS] [FLAGS]
 *
 * Global flags may come before or after the command; a flag the command
 * defines itself (submit --timeout-ms is the job's deadline, wait
 * --timeout-ms its limit) takes that meaning after the command.  Output is an
 * aligned table or summary for people, or one JSON document with --json.
 * Errors go to stderr as "quarry: <message>"; the exit code says what kind
 * (see s_usage and docs/cli.md). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ctype.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <jansson.h>

#include "quarry.h"

#include "g16_json.h"
/* proof and claim: the chain library and the mirror's record format */
#include "err.h"
#include "ethutil.h"
#include "merkle.h"
#include "mirror_core.h"
#include "rpc.h"
#include "tx.h"

enum {
    EXIT_OK = 0,      /* success (and for wait/submit --wait: the job settled) */
    EXIT_JOB = 1,     /* the job ended failed, expired, cancelled or rejected */
    EXIT_USAGE = 2,   /* unknown command or flag, missing or bad argument */
    EXIT_UNAVAIL = 3, /* broker unreachable, no answer in time, or wait timed out */
    EXIT_REFUSED = 4, /* the broker refused the request */
    EXIT_LOCAL = 5,   /* local failure: file I/O, out of memory */
};

/* ---- settings ----------------------------------------------------------- */

typedef struct {
    const char *broker;   /* endpoint */
    const char *account;  /* account name */
    bool json;            /* JSON output */
    int64_t timeout_ms;   /* per-request timeout */
    const char *server_key; /* broker public key (Z85 or file); NULL = plain text */
    const char *key;      /* own secret key file; NULL = throwaway pair */
    /* command flags */
    const char *state;    /* jobs --state */
    uint64_t limit;       /* jobs --limit */
    bool all;             /* jobs --all */
    uint64_t m, n, k;     /* submit shape */
    const char *a_file, *b_file, *out_file;
    bool have_seed;       /* --random given */
    uint64_t seed;
    uint64_t max_price, min_mem_mb, max_attempts;
    int64_t priority;
    int64_t cmd_timeout_ms; /* submit: deadline, wait: limit; -1 = unset */
    bool gpu, wait;
    const char *idem;
    uint64_t head;          /* result: elements shown */
    /* checked before connecting */
    uint64_t job_id;        /* JOB argument */
    uint64_t amount;        /* deposit AMOUNT */
    float *A, *B;           /* submit inputs, owned */
    const char *weights, *graph, *input_file; /* infer */
    const char *zkey, *wtns_file;             /* prove */
    const char *proof_file, *public_file;     /* prove, result: snarkjs JSON out */
    uint64_t rows;          /* infer: input rows */
    float *X;               /* infer input, owned */
    size_t nx;              /* its floats */
    /* proof, claim: the settlement mirror and the chain */
    const char *mirror;     /* quarry-mirror's HTTP address */
    const char *rpc;        /* Ethereum JSON-RPC endpoint */
    const char *eth_key;    /* claim: the operator's Ethereum key file */
    const char *operator_;  /* claim: whose records (default: the key's address) */
    int64_t receipt_ms;     /* claim: how long to wait for receipts */
} cli_t;

typedef enum { F_STR, F_U64, F_I64, F_BOOL } ftype_t;

typedef struct {
    const char *name; /* without dashes */
    ftype_t type;
    size_t off;       /* offset in cli_t */
    const char *arg;  /* value name for help */
    const char *help;
} flag_t;

#define F(name, type, field, arg, help) {name, type, offsetof(cli_t, field), arg, help}

static const flag_t s_global[] = {
    F("broker", F_STR, broker, "URL", "broker client endpoint [$QUARRY_BROKER, tcp://127.0.0.1:5555]"),
    F("account", F_STR, account, "NAME", "account to act as [$QUARRY_ACCOUNT, default]"),
    F("json", F_BOOL, json, NULL, "print JSON instead of tables"),
    F("timeout-ms", F_I64, timeout_ms, "MS", "per-request timeout [$QUARRY_TIMEOUT_MS, 5000]"),
    F("server-key", F_STR, server_key, "KEY",
      "broker public key, Z85 text or .pub file [$QUARRY_SERVER_KEY; unset = plain text]"),
    F("key", F_STR, key, "FILE",
      "own secret key file PREFIX.key [$QUARRY_KEY; unset = throwaway key]"),
};
#define NGLOBAL (sizeof s_global / sizeof s_global[0])

static const flag_t s_submit_flags[] = {
    F("m", F_U64, m, "N", "rows of A and C"),
    F("n", F_U64, n, "N", "columns of B and C"),
    F("k", F_U64, k, "N", "columns of A, rows of B"),
    F("a", F_STR, a_file, "FILE", "A, m*k raw little-endian fp32"),
    F("b", F_STR, b_file, "FILE", "B, k*n raw little-endian fp32"),
    F("random", F_U64, seed, "SEED", "generate A and B from SEED instead of files"),
    F("input", F_STR, input_file, "FILE|SHA",
      "A then B in one file (uploaded once; jobs name "
      "it) or the SHA-256 `quarry upload` printed for it"),
    F("max-price", F_U64, max_price, "UNITS", "cap on the price, reserved at submit"),
    F("timeout-ms", F_I64, cmd_timeout_ms, "MS", "job deadline after acceptance (0 = none)"),
    F("deadline-ms", F_I64, cmd_timeout_ms, "MS", "same as --timeout-ms after submit"),
    F("priority", F_I64, priority, "N", "higher runs first"),
    F("gpu", F_BOOL, gpu, NULL, "run on a GPU worker only"),
    F("min-mem-mb", F_U64, min_mem_mb, "MB", "device memory the job needs"),
    F("max-attempts", F_U64, max_attempts, "N", "runs before it fails (0 = broker default)"),
    F("idem", F_STR, idem, "KEY", "idempotency key: resubmits return the first job"),
    F("wait", F_BOOL, wait, NULL, "wait for the job to end (progress on a terminal)"),
    F("out", F_STR, out_file, "FILE", "with --wait: write C there (raw fp32)"),
};
static const flag_t s_infer_flags[] = {
    F("weights", F_STR, weights, "FILE|SHA", "model weights: a safetensors file (uploaded if "
      "the broker lacks it) or the SHA-256 `quarry upload` printed"),
    F("graph", F_STR, graph, "FILE|SHA", "model graph: a JSON file or its SHA-256"),
    F("input", F_STR, input_file, "FILE", "input rows, raw little-endian fp32 (token ids for "
      "an embedding model)"),
    F("rows", F_U64, rows, "N", "rows in the input (its floats / input width)"),
    F("max-price", F_U64, max_price, "UNITS", "cap on the price, reserved at submit"),
    F("timeout-ms", F_I64, cmd_timeout_ms, "MS", "job deadline after acceptance (0 = none)"),
    F("priority", F_I64, priority, "N", "higher runs first"),
    F("gpu", F_BOOL, gpu, NULL, "run on a GPU worker only"),
    F("max-attempts", F_U64, max_attempts, "N", "runs before it fails (0 = broker default)"),
    F("idem", F_STR, idem, "KEY", "idempotency key: resubmits return the first job"),
    F("wait", F_BOOL, wait, NULL, "wait for the job to end (progress on a terminal)"),
    F("out", F_STR, out_file, "FILE", "with --wait: write the output there (raw fp32)"),
};
static const flag_t s_wait_flags[] = {
    F("timeout-ms", F_I64, cmd_timeout_ms, "MS", "give up after MS (default: no limit)"),
};
static const flag_t s_result_flags[] = {
    F("out", F_STR, out_file, "FILE", "write C there (raw little-endian fp32; zk.groth16: the raw proof bytes)"),
    F("head", F_U64, head, "N", "elements shown in the summary (default 8)"),
    F("proof", F_STR, proof_file, "FILE", "zk.groth16: write the proof as snarkjs's proof.json"),
    F("public", F_STR, public_file, "FILE", "zk.groth16: write the public signals as snarkjs's public.json"),
};
static const flag_t s_prove_flags[] = {
    F("zkey", F_STR, zkey, "FILE|SHA", "the Groth16 proving key: a snarkjs .zkey file (uploaded if "
      "the broker lacks it) or the SHA-256 `quarry upload` printed"),
    F("wtns", F_STR, wtns_file, "FILE", "the witness, a .wtns file (snarkjs wtns calculate, circom)"),
    F("max-price", F_U64, max_price, "UNITS", "cap on the price, reserved at submit"),
    F("timeout-ms", F_I64, cmd_timeout_ms, "MS", "job deadline after acceptance (0 = none)"),
    F("priority", F_I64, priority, "N", "higher runs first"),
    F("max-attempts", F_U64, max_attempts, "N", "runs before it fails (0 = broker default)"),
    F("idem", F_STR, idem, "KEY", "idempotency key: resubmits return the first job"),
    F("wait", F_BOOL, wait, NULL, "wait for the proof (progress on a terminal)"),
    F("proof", F_STR, proof_file, "FILE", "with --wait: write the proof as snarkjs's proof.json"),
    F("public", F_STR, public_file, "FILE", "with --wait: write public.json"),
};
static const flag_t s_jobs_flags[] = {
    F("state", F_STR, state, "STATE", "only jobs in STATE"),
    F("limit", F_U64, limit, "N", "at most N jobs (default: broker's)"),
    F("all", F_BOOL, all, NULL, "every account's jobs (admin)"),
};
static const flag_t s_proof_flags[] = {
    F("mirror", F_STR, mirror, "URL", "quarry-mirror's HTTP address [$QUARRY_MIRROR, "
      "http://127.0.0.1:9108]"),
    F("rpc", F_STR, rpc, "URL", "also check the proof with the contract (verifySettlement) "
      "through this node [$QUARRY_RPC]"),
};
static const flag_t s_claim_flags[] = {
    F("mirror", F_STR, mirror, "URL", "quarry-mirror's HTTP address [$QUARRY_MIRROR, "
      "http://127.0.0.1:9108]"),
    F("rpc", F_STR, rpc, "URL", "Ethereum JSON-RPC endpoint [$QUARRY_RPC, http://127.0.0.1:8545]"),
    F("eth-key", F_STR, eth_key, "FILE", "the operator's Ethereum key, 64 hex digits, mode 0600"),
    F("operator", F_STR, operator_, "ACCOUNT", "claim ACCOUNT's records (default: those of "
      "the key's address)"),
    F("receipt-timeout-ms", F_I64, receipt_ms, "MS", "wait this long for the receipts "
      "(default 120000)"),
};

typedef int (*cmd_fn)(cli_t *cli, quarry_client_t *c, int argc, char **argv);
/* Checks arguments and loads inputs before any connection; returns an exit code. */
typedef int (*check_fn)(cli_t *cli, int argc, char **argv);

typedef struct {
    const char *name;
    const char *args; /* positional arguments for help */
    int min_args, max_args;
    const flag_t *flags;
    size_t nflags;
    check_fn check; /* may be NULL */
    cmd_fn fn;
    const char *help;
    bool offline; /* runs without a broker connection (fn gets c = NULL) */
} command_t;

/* ---- output helpers --------------------------------------------------------- */

static void s_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("quarry: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Exit code for a library error. */
static int s_exit_for(quarry_err_t rc)
{
    switch (rc) {
    case QUARRY_OK:
        return EXIT_OK;
    case QUARRY_EUNAVAIL:
    case QUARRY_ETIMEOUT:
    case QUARRY_EPROTO:
        return EXIT_UNAVAIL;
    case QUARRY_ENOMEM:
    case QUARRY_EIO:
        return EXIT_LOCAL;
    case QUARRY_EFAILED:
    case QUARRY_EEXPIRED:
    case QUARRY_ECANCELLED:
        return EXIT_JOB;
    default:
        return EXIT_REFUSED;
    }
}

/* Reports a failed library call and returns its exit code. */
static int s_fail(quarry_client_t *c, quarry_err_t rc)
{
    const char *msg = quarry_client_last_error(c);
    s_err("%s", msg && *msg ? msg : quarry_strerror(rc));
    return s_exit_for(rc);
}

static void s_json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", stdout);
            break;
        case '\\':
            fputs("\\\\", stdout);
            break;
        case '\n':
            fputs("\\n", stdout);
            break;
        case '\r':
            fputs("\\r", stdout);
            break;
        case '\t':
            fputs("\\t", stdout);
            break;
        default:
            if (*p < 0x20)
                printf("\\u%04x", *p);
            else
                putchar(*p);
        }
    }
    putchar('"');
}

static void s_json_num(double v)
{
    if (isfinite(v))
        printf("%.9g", v);
    else
        fputs("null", stdout);
}

static void s_json_job(const quarry_job_info_t *j)
{
    printf("{\"job_id\":%" PRIu64 ",\"kind\":", j->job_id);
    s_json_str(j->kind);
    fputs(",\"state\":", stdout);
    s_json_str(j->state_name);
    printf(",\"attempts\":%u,\"worker_id\":%" PRIu64 ",\"max_price\":%" PRIu64
           ",\"price\":%" PRIu64 ",\"fee\":%" PRIu64 ",\"units\":%" PRIu64
           ",\"created_ms\":%" PRId64 ",\"updated_ms\":%" PRId64
           ",\"progress\":%u,\"m\":%u,\"n\":%u,\"k\":%u,\"detail\":",
           j->attempts, j->worker_id, j->max_price, j->price, j->fee, j->units, j->created_ms,
           j->updated_ms, j->progress, j->m, j->n, j->k);
    s_json_str(j->detail);
    putchar('}');
}

static void s_time(char *buf, size_t cap, int64_t wall_ms)
{
    if (wall_ms <= 0) {
        snprintf(buf, cap, "-");
        return;
    }
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M:%SZ", &tm);
}

/* A table of strings printed with aligned columns. */
typedef struct {
    int ncols;
    const char *const *head;
    const bool *right; /* right-align column (numbers) */
    char **cells;      /* rows * ncols strings */
    size_t rows, cap;
} table_t;

static int s_table_add(table_t *t, ...)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **cells = realloc(t->cells, cap * (size_t)t->ncols * sizeof *cells);
        if (!cells)
            return -1;
        t->cells = cells;
        t->cap = cap;
    }
    va_list ap;
    va_start(ap, t);
    int rc = 0;
    for (int i = 0; i < t->ncols; i++) {
        const char *s = va_arg(ap, const char *);
        char *d = strdup(s ? s : "");
        if (!d)
            rc = -1;
        t->cells[t->rows * (size_t)t->ncols + (size_t)i] = d;
    }
    va_end(ap);
    t->rows++;
    return rc;
}

static void s_table_print(table_t *t)
{
    size_t w[16] = {0};
    for (int i = 0; i < t->ncols; i++)
        w[i] = strlen(t->head[i]);
    for (size_t r = 0; r < t->rows; r++)
        for (int i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)i];
            size_t l = s ? strlen(s) : 0;
            if (l > w[i])
                w[i] = l;
        }
    for (size_t r = 0; r <= t->rows; r++) {
        for (int i = 0; i < t->ncols; i++) {
            const char *s = r == 0 ? t->head[i] : t->cells[(r - 1) * (size_t)t->ncols + (size_t)i];
            bool last = i + 1 == t->ncols;
            if (t->right[i])
                printf("%*s%s", (int)w[i], s ? s : "", last ? "" : "  ");
            else if (last)
                printf("%s", s ? s : "");
            else
                printf("%-*s  ", (int)w[i], s ? s : "");
        }
        putchar('\n');
    }
    for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->rows = t->cap = 0;
}

static void s_print_job(const cli_t *cli, const quarry_job_info_t *j)
{
    if (cli->json) {
        s_json_job(j);
        putchar('\n');
        return;
    }
    char created[32], updated[32];
    s_time(created, sizeof created, j->created_ms);
    s_time(updated, sizeof updated, j->updated_ms);
    printf("job        %" PRIu64 "\n", j->job_id);
    printf("kind       %s\n", j->kind);
    printf("state      %s\n", j->state_name);
    if (j->m)
        printf("shape      %ux%ux%u (m x n x k)\n", j->m, j->n, j->k);
    printf("progress   %.1f%%\n", j->progress / 10.0);
    printf("attempts   %u\n", j->attempts);
    if (j->worker_id)
        printf("worker     %" PRIu64 "\n", j->worker_id);
    printf("max price  %" PRIu64 "\n", j->max_price);
    if (j->price || j->fee)
        printf("price      %" PRIu64 " (fee %" PRIu64 ")\n", j->price, j->fee);
    if (j->units)
        printf("units      %" PRIu64 "\n", j->units);
    printf("created    %s\n", created);
    printf("updated    %s\n", updated);
    if (j->detail[0])
        printf("detail     %s\n", j->detail);
}

/* ---- argument parsing --------------------------------------------------------- */

static int s_parse_u64(const char *flag, const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!v || !*v || *v == '-' || *v == '+') {
        s_err("%s: '%s' is not a non-negative integer", flag, v ? v : "");
        return -1;
    }
    unsigned long long x = strtoull(v, &end, 10);
    if (*end || errno) {
        s_err("%s: '%s' is not a non-negative integer", flag, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int s_parse_i64(const char *flag, const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = v && *v ? strtoll(v, &end, 10) : 0;
    if (!v || !*v || *end || errno) {
        s_err("%s: '%s' is not an integer", flag, v ? v : "");
        return -1;
    }
    *out = x;
    return 0;
}

static const flag_t *s_find(const flag_t *t, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(t[i].name) == len && strncmp(t[i].name, name, len) == 0)
            return &t[i];
    return NULL;
}

/* Applies one flag; *i advances past a separate value.  Returns 0 or -1. */
static int s_apply(cli_t *cli, const flag_t *f, const char *val, int argc, char **argv, int *i)
{
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", f->name);
    if (f->type == F_BOOL) {
        if (val && strcmp(val, "true") && strcmp(val, "1") && strcmp(val, "false") &&
            strcmp(val, "0")) {
            s_err("%s: '%s' is not true or false", flag, val);
            return -1;
        }
        *(bool *)((char *)cli + f->off) = !val || !strcmp(val, "true") || !strcmp(val, "1");
        return 0;
    }
    if (!val) {
        if (*i + 1 >= argc) {
            s_err("%s needs a value", flag);
            return -1;
        }
        val = argv[++*i];
    }
    void *p = (char *)cli + f->off;
    switch (f->type) {
    case F_STR:
        *(const char **)p = val;
        return 0;
    case F_U64:
        if (f->off == offsetof(cli_t, seed))
            cli->have_seed = true;
        return s_parse_u64(flag, val, p);
    case F_I64:
        return s_parse_i64(flag, val, p);
    default:
        return -1;
    }
}

/* ---- file helpers ------------------------------------------------------------ */

static bool s_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static void s_swap32(float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t *b = (uint8_t *)&v[i], t;
        t = b[0], b[0] = b[3], b[3] = t;
        t = b[1], b[1] = b[2], b[2] = t;
    }
}

/* Reads exactly count fp32 values from path.  Returns 0, or an exit code. */
static int s_read_matrix(const char *path, const char *what, size_t count, float **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        s_err("%s: cannot open %s: %s", what, path, strerror(errno));
        return EXIT_LOCAL;
    }
    float *v = malloc(count ? count * sizeof(float) : 1);
    if (!v) {
        fclose(f);
        s_err("%s: out of memory", what);
        return EXIT_LOCAL;
    }
    size_t got = fread(v, sizeof(float), count, f);
    int extra = fgetc(f);
    bool err = ferror(f);
    fclose(f);
    if (err) {
        free(v);
        s_err("%s: cannot read %s", what, path);
        return EXIT_LOCAL;
    }
    if (got != count || extra != EOF) {
        free(v);
        s_err("%s: %s must hold exactly %zu fp32 values (%zu bytes)", what, path, count,
              count * sizeof(float));
        return EXIT_USAGE;
    }
    if (!s_little_endian())
        s_swap32(v, count);
    *out = v;
    return 0;
}

static int s_write_matrix(const char *path, float *v, size_t count)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        s_err("cannot create %s: %s", path, strerror(errno));
        return EXIT_LOCAL;
    }
    if (!s_little_endian())
        s_swap32(v, count);
    size_t put = fwrite(v, sizeof(float), count, f);
    if (!s_little_endian())
        s_swap32(v, count);
    if (fclose(f) != 0 || put != count) {
        s_err("cannot write %s: %s", path, strerror(errno));
        return EXIT_LOCAL;
    }
    return 0;
}

/* splitmix64: deterministic inputs for --random, the same on every host. */
static uint64_t s_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float *s_random_matrix(uint64_t *state, size_t count)
{
    float *v = malloc(count ? count * sizeof(float) : 1);
    for (size_t i = 0; v && i < count; i++) /* uniform in [-1, 1) */
        v[i] = (float)((double)(s_next(state) >> 40) / (double)(1ull << 23) - 1.0);
    return v;
}

/* ---- commands ----------------------------------------------------------------- */

static int s_progress(const quarry_job_info_t *j, void *ud)
{
    (void)ud;
    fprintf(stderr, "\r\033[Kjob %" PRIu64 "  %-9s  %5.1f%%  attempt %u", j->job_id,
            j->state_name, j->progress / 10.0, j->attempts);
    fflush(stderr);
    return 0;
}

/* Waits for id and prints the final state; used by wait and submit --wait. */
static int s_wait_and_report(cli_t *cli, quarry_client_t *c, uint64_t id, int64_t limit,
                             quarry_job_info_t *info)
{
    bool tty = isatty(STDERR_FILENO) && !cli->json;
    quarry_err_t rc = quarry_job_wait(c, id, limit, tty ? s_progress : NULL, NULL, info);
    if (tty) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    if (rc == QUARRY_OK || info->state != QUARRY_JOB_UNKNOWN) {
        if (quarry_job_state_final(info->state) || rc == QUARRY_OK) {
            if (cli->json) {
                s_json_job(info);
                putchar('\n');
            } else {
                printf("job %" PRIu64 " %s", id, info->state_name);
                if (info->price || info->fee)
                    printf("  price %" PRIu64 "  fee %" PRIu64, info->price, info->fee);
                if (info->units)
                    printf("  units %" PRIu64, info->units);
                if (info->detail[0])
                    printf("  (%s)", info->detail);
                putchar('\n');
            }
        }
    }
    if (rc == QUARRY_OK)
        return EXIT_OK;
    if (quarry_job_state_final(info->state)) {
        s_err("%s", quarry_client_last_error(c));
        return EXIT_JOB; /* rejected included */
    }
    return s_fail(c, rc);
}

static int s_fetch_result(cli_t *cli, quarry_client_t *c, uint64_t id, bool summary)
{
    float *C = NULL;
    size_t count = 0;
    quarry_job_info_t info;
    quarry_err_t rc = quarry_job_result_alloc(c, id, &C, &count, &info);
    if (rc)
        return s_fail(c, rc);
    int ex = EXIT_OK;
    if (cli->out_file)
        ex = s_write_matrix(cli->out_file, C, count);
    if (ex == EXIT_OK && summary) {
        double sum = 0, asum = 0;
        for (size_t i = 0; i < count; i++) {
            sum += C[i];
            asum += fabs((double)C[i]);
        }
        size_t head = cli->head < count ? (size_t)cli->head : count;
        if (cli->json) {
            printf("{\"job_id\":%" PRIu64 ",\"state\":", id);
            s_json_str(info.state_name);
            printf(",\"m\":%u,\"n\":%u,\"count\":%zu,\"sum\":", info.m, info.n, count);
            s_json_num(sum);
            fputs(",\"abs_sum\":", stdout);
            s_json_num(asum);
            fputs(",\"first\":[", stdout);
            for (size_t i = 0; i < head; i++) {
                if (i)
                    putchar(',');
                s_json_num(C[i]);
            }
            fputs("],\"out\":", stdout);
            if (cli->out_file)
                s_json_str(cli->out_file);
            else
                fputs("null", stdout);
            puts("}");
        } else {
            printf("job      %" PRIu64 " (%s)\n", id, info.state_name);
            printf("shape    %u x %u (%zu floats)\n", info.m, info.n, count);
            printf("sum      %.9g\n", sum);
            printf("abs sum  %.9g\n", asum);
            printf("first   ");
            for (size_t i = 0; i < head; i++)
                printf(" %.6g", C[i]);
            printf("%s\n", head < count ? " ..." : "");
            if (cli->out_file)
                printf("written  %s\n", cli->out_file);
        }
    }
    quarry_free(C);
    return ex;
}

static int check_job(cli_t *cli, int argc, char **argv)
{
    (void)argc;
    if (s_parse_u64("JOB", argv[0], &cli->job_id) < 0)
        return EXIT_USAGE;
    if (cli->job_id == 0) {
        s_err("JOB: job ids start at 1");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* The option ranges every submit command checks; 0, or -1 with a message. */
static int s_check_ranges(const cli_t *cli)
{
    if (cli->priority < INT32_MIN || cli->priority > INT32_MAX || cli->max_attempts > UINT32_MAX) {
        s_err("--priority or --max-attempts out of range");
        return -1;
    }
    return 0;
}

static int check_submit(cli_t *cli, int argc, char **argv)
{
    (void)argc, (void)argv;
    if (!cli->m || !cli->n || !cli->k) {
        s_err("submit needs --m, --n and --k (positive)");
        return EXIT_USAGE;
    }
    if (cli->m > QUARRY_GEMM_MAX_DIM || cli->n > QUARRY_GEMM_MAX_DIM ||
        cli->k > QUARRY_GEMM_MAX_DIM) {
        s_err("dimensions are limited to %u", QUARRY_GEMM_MAX_DIM);
        return EXIT_USAGE;
    }
    bool files = cli->a_file || cli->b_file;
    if ((cli->have_seed + files + (cli->input_file != NULL)) != 1 ||
        (files && (!cli->a_file || !cli->b_file))) {
        s_err("submit needs one of --a FILE and --b FILE, --random SEED, or --input FILE|SHA");
        return EXIT_USAGE;
    }
    if (cli->out_file && !cli->wait) {
        s_err("--out needs --wait (or use 'quarry result JOB --out FILE')");
        return EXIT_USAGE;
    }
    if (s_check_ranges(cli))
        return EXIT_USAGE;
    size_t na = (size_t)cli->m * cli->k, nb = (size_t)cli->k * cli->n;
    if (cli->input_file)
        return EXIT_OK; /* the broker checks the artifact's size */
    if (cli->have_seed) {
        uint64_t st = cli->seed;
        cli->A = s_random_matrix(&st, na);
        cli->B = s_random_matrix(&st, nb);
        if (!cli->A || !cli->B) {
            s_err("out of memory for the inputs");
            return EXIT_LOCAL;
        }
        return EXIT_OK;
    }
    int ex = s_read_matrix(cli->a_file, "--a", na, &cli->A);
    if (!ex)
        ex = s_read_matrix(cli->b_file, "--b", nb, &cli->B);
    return ex;
}

/* The job options the submit commands share, from their flags. */
static void s_opts(const cli_t *cli, quarry_job_opts_t *o)
{
    quarry_job_opts_init(o);
    o->max_price = cli->max_price;
    o->timeout_ms = cli->cmd_timeout_ms > 0 ? cli->cmd_timeout_ms : 0;
    o->need_gpu = cli->gpu;
    o->min_mem_mb = cli->min_mem_mb;
    o->priority = (int32_t)cli->priority;
    o->max_attempts = (uint32_t)cli->max_attempts;
    o->idem_key = cli->idem;
}

/* After a submit: without --wait, prints the job and returns; with it,
 * announces the job and waits for its end (returns the exit code). */
static int s_submitted(cli_t *cli, quarry_client_t *c, uint64_t id, uint64_t reserved, bool dup)
{
    if (!cli->wait) {
        if (cli->json)
            printf("{\"job_id\":%" PRIu64 ",\"reserved\":%" PRIu64 ",\"duplicate\":%s}\n", id,
                   reserved, dup ? "true" : "false");
        else
            printf("job %" PRIu64 " submitted%s  reserved %" PRIu64 "\n", id,
                   dup ? " (duplicate of an earlier submit)" : "", reserved);
        return EXIT_OK;
    }
    if (!cli->json)
        fprintf(isatty(STDERR_FILENO) ? stderr : stdout, "job %" PRIu64 " submitted%s\n", id,
                dup ? " (duplicate)" : "");
    quarry_job_info_t info;
    return s_wait_and_report(cli, c, id, -1, &info);
}

static bool s_is_sha(const char *s)
{
    size_t n = 0;
    for (; s && s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n == QUARRY_SHA_HEX;
}

static int cmd_upload(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    (void)argc;
    char sha[QUARRY_SHA_HEX + 1];
    uint64_t size = 0;
    quarry_err_t rc = quarry_upload(c, argv[0], sha, &size);
    if (rc)
        return s_fail(c, rc);
    if (cli->json) {
        printf("{\"sha256\":\"%s\",\"bytes\":%" PRIu64 ",\"file\":", sha, size);
        s_json_str(argv[0]);
        puts("}");
    } else
        printf("%s  %s (%" PRIu64 " bytes)\n", sha, argv[0], size);
    return EXIT_OK;
}

static int check_infer(cli_t *cli, int argc, char **argv)
{
    (void)argc, (void)argv;
    if (!cli->weights || !cli->graph || !cli->input_file || !cli->rows) {
        s_err("infer needs --weights, --graph, --input and --rows");
        return EXIT_USAGE;
    }
    if (cli->rows > 65536) {
        s_err("--rows is limited to 65536 per job");
        return EXIT_USAGE;
    }
    if (cli->out_file && !cli->wait) {
        s_err("--out needs --wait (or use 'quarry result JOB --out FILE')");
        return EXIT_USAGE;
    }
    if (s_check_ranges(cli))
        return EXIT_USAGE;
    struct stat st;
    if (stat(cli->input_file, &st) < 0) {
        s_err("--input: cannot open %s: %s", cli->input_file, strerror(errno));
        return EXIT_LOCAL;
    }
    if (st.st_size <= 0 || st.st_size % (off_t)sizeof(float) ||
        (uint64_t)(st.st_size / (off_t)sizeof(float)) % cli->rows) {
        s_err("--input: %s has %lld bytes, not %" PRIu64 " equal rows of fp32 values",
              cli->input_file, (long long)st.st_size, cli->rows);
        return EXIT_USAGE;
    }
    cli->nx = (size_t)st.st_size / sizeof(float);
    return s_read_matrix(cli->input_file, "--input", cli->nx, &cli->X);
}

/* A model part named by SHA-256 or by a file to upload. */
static int s_artifact(cli_t *cli, quarry_client_t *c, const char *arg, char *sha)
{
    struct stat st;
    if (s_is_sha(arg) && stat(arg, &st) < 0) {
        memcpy(sha, arg, QUARRY_SHA_HEX + 1);
        return EXIT_OK;
    }
    quarry_err_t rc = quarry_upload(c, arg, sha, NULL);
    if (rc)
        return s_fail(c, rc);
    if (!cli->json)
        fprintf(stderr, "%s is %s in the broker's store\n", arg, sha);
    return EXIT_OK;
}

/* After an ai.gemm or ai.infer submit: the refusal, or the job announced
 * (and with --wait followed, and with --out its result written). */
static int s_after_submit(cli_t *cli, quarry_client_t *c, quarry_err_t rc, uint64_t id,
                          uint64_t reserved, bool dup)
{
    if (rc)
        return s_fail(c, rc);
    int ex = s_submitted(cli, c, id, reserved, dup); /* --out etc. need --wait */
    if (ex == EXIT_OK && cli->out_file)
        ex = s_fetch_result(cli, c, id, false);
    return ex;
}

static int cmd_submit(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    int ex = EXIT_OK;
    quarry_job_opts_t o;
    s_opts(cli, &o);
    uint64_t id = 0, reserved = 0;
    bool dup = false;
    quarry_err_t rc;
    if (cli->input_file) {
        char sha[QUARRY_SHA_HEX + 1];
        if ((ex = s_artifact(cli, c, cli->input_file, sha)) != EXIT_OK)
            return ex;
        rc = quarry_gemm_submit_ref(c, (uint32_t)cli->m, (uint32_t)cli->n, (uint32_t)cli->k, sha,
                                    &o, &id, &reserved, &dup);
    } else {
        rc = quarry_gemm_submit(c, (uint32_t)cli->m, (uint32_t)cli->n, (uint32_t)cli->k, cli->A,
                                cli->B, &o, &id, &reserved, &dup);
    }
    free(cli->A);
    free(cli->B);
    cli->A = cli->B = NULL;
    return s_after_submit(cli, c, rc, id, reserved, dup);
}

static int cmd_infer(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    (void)argc, (void)argv;
    char wsha[QUARRY_SHA_HEX + 1], gsha[QUARRY_SHA_HEX + 1];
    int ex = s_artifact(cli, c, cli->weights, wsha);
    if (!ex)
        ex = s_artifact(cli, c, cli->graph, gsha);
    if (ex) {
        free(cli->X);
        cli->X = NULL;
        return ex;
    }
    quarry_job_opts_t o;
    s_opts(cli, &o);
    uint64_t id = 0, reserved = 0;
    bool dup = false;
    quarry_err_t rc = quarry_infer_submit(c, wsha, gsha, (uint32_t)cli->rows, cli->X, cli->nx,
                                          &o, &id, &reserved, &dup);
    free(cli->X);
    cli->X = NULL;
    return s_after_submit(cli, c, rc, id, reserved, dup);
}

/* A zk.groth16 result: summary, and proof.json / public.json as snarkjs
 * writes them (sdk/quarry.h, quarry_job_result_bytes, has the layout). */
static int s_zk_result(cli_t *cli, quarry_client_t *c, uint64_t id, bool summary)
{
    void *data = NULL;
    size_t len = 0;
    quarry_job_info_t info;
    quarry_err_t rc = quarry_job_result_bytes(c, id, &data, &len, &info);
    if (rc)
        return s_fail(c, rc);
    const uint8_t *r = data;
    int ex = EXIT_OK;
    qr_g16_proof_t p;
    uint32_t npub = len >= 256 ? (uint32_t)((len - 256) / 32) : 0;
    qr_fr_t *pub = calloc(npub ? npub : 1, sizeof *pub);
    if (len < 256 || (len - 256) % 32 || !pub || qr_g1_from_be64(&p.a, r) != QR_ZK_OK ||
        qr_g2_from_be128(&p.b, r + 64) != QR_ZK_OK || qr_g1_from_be64(&p.c, r + 192) != QR_ZK_OK) {
        s_err("job %" PRIu64 ": the result (%zu bytes) is not a Groth16 proof", id, len);
        ex = EXIT_LOCAL;
        goto done;
    }
    for (uint32_t i = 0; i < npub; i++)
        if (qr_fr_from_be32(&pub[i], r + 256 + (size_t)i * 32) != 0) {
            s_err("job %" PRIu64 ": public signal %u is not a field element", id, i);
            ex = EXIT_LOCAL;
            goto done;
        }
    char err[256];
    if (cli->proof_file) {
        char *j = qr_g16_proof_to_json(&p);
        if (!j || qr_g16_write_text(cli->proof_file, j, err, sizeof err) != 0) {
            s_err("--proof: %s", j ? err : "out of memory");
            ex = EXIT_LOCAL;
        }
        free(j);
    }
    if (!ex && cli->public_file) {
        char *j = qr_g16_public_to_json(pub, npub);
        if (!j || qr_g16_write_text(cli->public_file, j, err, sizeof err) != 0) {
            s_err("--public: %s", j ? err : "out of memory");
            ex = EXIT_LOCAL;
        }
        free(j);
    }
    if (!ex && cli->out_file) {
        FILE *f = fopen(cli->out_file, "wb");
        if (!f || fwrite(data, 1, len, f) != len) {
            s_err("--out: cannot write %s", cli->out_file);
            ex = EXIT_LOCAL;
        }
        if (f)
            fclose(f);
    }
    if (!ex && summary) {
        if (cli->json) {
            char *pj = qr_g16_proof_to_json(&p), *uj = qr_g16_public_to_json(pub, npub);
            printf("{\"job_id\":%" PRIu64 ",\"state\":", id);
            s_json_str(info.state_name);
            printf(",\"proof\":%s,\"public\":%s}\n", pj ? pj : "null", uj ? uj : "null");
            free(pj);
            free(uj);
        } else {
            printf("job      %" PRIu64 " (%s)\n", id, info.state_name);
            printf("proof    Groth16 over BN254, verified by the broker\n");
            printf("public   %u signal%s\n", npub, npub == 1 ? "" : "s");
            if (cli->proof_file)
                printf("written  %s\n", cli->proof_file);
            if (cli->public_file)
                printf("written  %s\n", cli->public_file);
        }
    }
done:
    free(pub);
    quarry_free(data);
    return ex;
}

static int check_prove(cli_t *cli, int argc, char **argv)
{
    (void)argc, (void)argv;
    if (!cli->zkey || !cli->wtns_file) {
        s_err("prove needs --zkey and --wtns");
        return EXIT_USAGE;
    }
    if ((cli->proof_file || cli->public_file) && !cli->wait) {
        s_err("--proof and --public need --wait (or use 'quarry result JOB --proof FILE')");
        return EXIT_USAGE;
    }
    if (s_check_ranges(cli))
        return EXIT_USAGE;
    return EXIT_OK;
}

static int cmd_prove(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    (void)argc, (void)argv;
    char zsha[QUARRY_SHA_HEX + 1];
    int ex = s_artifact(cli, c, cli->zkey, zsha);
    if (ex)
        return ex;
    FILE *f = fopen(cli->wtns_file, "rb");
    if (!f) {
        s_err("--wtns: cannot open %s: %s", cli->wtns_file, strerror(errno));
        return EXIT_LOCAL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *w = n > 0 ? malloc((size_t)n) : NULL;
    bool ok = w && fread(w, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    if (!ok) {
        free(w);
        s_err("--wtns: cannot read %s", cli->wtns_file);
        return EXIT_LOCAL;
    }
    quarry_job_opts_t o;
    s_opts(cli, &o);
    uint64_t id = 0, reserved = 0;
    bool dup = false;
    quarry_err_t rc = quarry_zk_submit(c, zsha, w, (size_t)n, &o, &id, &reserved, &dup);
    free(w);
    if (rc)
        return s_fail(c, rc);
    ex = s_submitted(cli, c, id, reserved, dup); /* --out etc. need --wait */
    if (ex == EXIT_OK && (cli->proof_file || cli->public_file))
        ex = s_zk_result(cli, c, id, false);
    return ex;
}

static int cmd_status(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    uint64_t id = cli->job_id;
    quarry_job_info_t info;
    quarry_err_t rc = quarry_job_status(c, id, &info);
    if (rc)
        return s_fail(c, rc);
    s_print_job(cli, &info);
    return EXIT_OK;
}

static int cmd_wait(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    uint64_t id = cli->job_id;
    quarry_job_info_t info;
    return s_wait_and_report(cli, c, id, cli->cmd_timeout_ms >= 0 ? cli->cmd_timeout_ms : -1,
                             &info);
}

static int cmd_result(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    uint64_t id = cli->job_id;
    quarry_job_info_t info;
    quarry_err_t rc = quarry_job_status(c, id, &info);
    if (rc)
        return s_fail(c, rc);
    if (strcmp(info.kind, "zk.groth16") == 0)
        return s_zk_result(cli, c, id, true);
    if (cli->proof_file || cli->public_file) {
        s_err("--proof and --public are for zk.groth16 jobs; job %" PRIu64 " is %s", id,
              info.kind);
        return EXIT_USAGE;
    }
    return s_fetch_result(cli, c, id, true);
}

static int cmd_cancel(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    uint64_t id = cli->job_id;
    quarry_job_info_t info;
    quarry_err_t rc = quarry_job_cancel(c, id, &info);
    if (rc)
        return s_fail(c, rc);
    if (cli->json) {
        s_json_job(&info);
        putchar('\n');
    } else {
        printf("job %" PRIu64 " %s\n", id, info.state_name);
    }
    return EXIT_OK;
}

static int check_jobs(cli_t *cli, int argc, char **argv)
{
    if (cli->state && quarry_job_state_parse(cli->state) == QUARRY_JOB_UNKNOWN) {
        s_err("--state: unknown state '%s'", cli->state);
        return EXIT_USAGE;
    }
    if (cli->limit > UINT32_MAX) {
        s_err("--limit: too large");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int cmd_jobs(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    quarry_job_info_t *jobs = NULL;
    size_t n = 0;
    quarry_err_t rc = quarry_job_list(c, cli->state, (uint32_t)cli->limit, cli->all, &jobs, &n);
    if (rc)
        return s_fail(c, rc);
    if (cli->json) {
        putchar('[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                putchar(',');
            s_json_job(&jobs[i]);
        }
        puts("]");
    } else {
        static const char *const head[] = {"ID",    "STATE",    "KIND",  "SHAPE",
                                           "TRIES", "PROGRESS", "PRICE", "MAX_PRICE",
                                           "UPDATED"};
        static const bool right[] = {true, false, false, false, true, true, true, true, false};
        table_t t = {9, head, right, NULL, 0, 0};
        for (size_t i = 0; i < n; i++) {
            const quarry_job_info_t *j = &jobs[i];
            char id[24], shape[48], tries[16], prog[16], price[24], maxp[24], upd[32];
            snprintf(id, sizeof id, "%" PRIu64, j->job_id);
            snprintf(shape, sizeof shape, "%ux%ux%u", j->m, j->n, j->k);
            snprintf(tries, sizeof tries, "%u", j->attempts);
            snprintf(prog, sizeof prog, "%.1f%%", j->progress / 10.0);
            snprintf(price, sizeof price, "%" PRIu64, j->price);
            snprintf(maxp, sizeof maxp, "%" PRIu64, j->max_price);
            s_time(upd, sizeof upd, j->updated_ms);
            if (s_table_add(&t, id, j->state_name, j->kind, shape, tries, prog, price, maxp,
                            upd) < 0) {
                s_table_print(&t);
                quarry_job_list_free(&jobs);
                s_err("out of memory");
                return EXIT_LOCAL;
            }
        }
        s_table_print(&t);
    }
    quarry_job_list_free(&jobs);
    return EXIT_OK;
}

static int cmd_workers(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    quarry_worker_info_t *w = NULL;
    size_t n = 0;
    quarry_err_t rc = quarry_workers(c, &w, &n);
    if (rc)
        return s_fail(c, rc);
    if (cli->json) {
        putchar('[');
        for (size_t i = 0; i < n; i++) {
            printf("%s{\"worker_id\":%" PRIu64 ",\"name\":", i ? "," : "", w[i].worker_id);
            s_json_str(w[i].name);
            fputs(",\"operator\":", stdout);
            s_json_str(w[i].operator_);
            fputs(",\"state\":", stdout);
            s_json_str(w[i].state);
            printf(",\"slots\":%u,\"busy\":%u,\"ask_price\":%" PRIu64 ",\"reputation\":%d"
                   ",\"cpu_cores\":%u,\"mem_mb\":%" PRIu64 ",\"gpus\":%u,\"jobs_done\":%" PRIu64
                   ",\"earned\":%" PRIu64 "}",
                   w[i].slots, w[i].busy, w[i].ask_price, w[i].reputation, w[i].cpu_cores,
                   w[i].mem_mb, w[i].gpus, w[i].jobs_done, w[i].earned);
        }
        puts("]");
    } else {
        static const char *const head[] = {"ID",  "NAME",  "OPERATOR", "STATE", "BUSY",
                                           "ASK", "REP",   "CPUS",     "GPUS",  "MEM_MB",
                                           "DONE", "EARNED"};
        static const bool right[] = {true, false, false, false, true, true,
                                     true, true,  true,  true,  true, true};
        table_t t = {12, head, right, NULL, 0, 0};
        for (size_t i = 0; i < n; i++) {
            char id[24], busy[32], ask[24], rep[16], cpus[16], gpus[16], mem[24], done[24],
                earned[24];
            snprintf(id, sizeof id, "%" PRIu64, w[i].worker_id);
            snprintf(busy, sizeof busy, "%u/%u", w[i].busy, w[i].slots);
            snprintf(ask, sizeof ask, "%" PRIu64, w[i].ask_price);
            snprintf(rep, sizeof rep, "%d", w[i].reputation);
            snprintf(cpus, sizeof cpus, "%u", w[i].cpu_cores);
            snprintf(gpus, sizeof gpus, "%u", w[i].gpus);
            snprintf(mem, sizeof mem, "%" PRIu64, w[i].mem_mb);
            snprintf(done, sizeof done, "%" PRIu64, w[i].jobs_done);
            snprintf(earned, sizeof earned, "%" PRIu64, w[i].earned);
            s_table_add(&t, id, w[i].name, w[i].operator_, w[i].state, busy, ask, rep, cpus,
                        gpus, mem, done, earned);
        }
        s_table_print(&t);
    }
    quarry_workers_free(&w);
    return EXIT_OK;
}

static void s_print_balance(const cli_t *cli, const quarry_balance_t *b)
{
    if (cli->json) {
        fputs("{\"account\":", stdout);
        s_json_str(b->account);
        printf(",\"available\":%" PRId64 ",\"reserved\":%" PRId64 ",\"earned\":%" PRId64 "}\n",
               b->available, b->reserved, b->earned);
    } else {
        printf("account    %s\n", b->account);
        printf("available  %" PRId64 "\n", b->available);
        printf("reserved   %" PRId64 "\n", b->reserved);
        printf("earned     %" PRId64 "\n", b->earned);
    }
}

static int cmd_balance(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    quarry_balance_t b;
    quarry_err_t rc = quarry_balance(c, argc > 0 ? argv[0] : NULL, &b);
    if (rc)
        return s_fail(c, rc);
    s_print_balance(cli, &b);
    return EXIT_OK;
}

static int check_deposit(cli_t *cli, int argc, char **argv)
{
    if (!argv[0][0]) {
        s_err("deposit: ACCOUNT must not be empty");
        return EXIT_USAGE;
    }
    if (s_parse_u64("AMOUNT", argv[1], &cli->amount) < 0)
        return EXIT_USAGE;
    if (!cli->amount) {
        s_err("AMOUNT must be positive");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int cmd_deposit(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    quarry_balance_t b;
    quarry_err_t rc = quarry_deposit(c, argv[0], cli->amount, &b);
    if (rc)
        return s_fail(c, rc);
    s_print_balance(cli, &b);
    return EXIT_OK;
}

static int cmd_dash(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    quarry_dash_t *d = NULL;
    quarry_err_t rc = quarry_dash(c, &d);
    if (rc)
        return s_fail(c, rc);
    if (cli->json) {
        fputs("{\"kinds\":[", stdout);
        for (size_t i = 0; i < d->nkinds; i++) {
            fputs(i ? ",{\"kind\":" : "{\"kind\":", stdout);
            s_json_str(d->kinds[i].kind);
            printf(",\"queued\":%" PRIu64 ",\"running\":%" PRIu64 "}", d->kinds[i].queued,
                   d->kinds[i].running);
        }
        printf("],\"workers\":%u,\"utilisation\":", d->workers);
        s_json_num(d->utilisation);
        fputs(",\"jobs_per_s\":", stdout);
        s_json_num(d->jobs_per_s);
        fputs(",\"p50_ms\":", stdout);
        s_json_num(d->p50_ms);
        fputs(",\"p99_ms\":", stdout);
        s_json_num(d->p99_ms);
        fputs(",\"operators\":[", stdout);
        for (size_t i = 0; i < d->noperators; i++) {
            fputs(i ? ",{\"operator\":" : "{\"operator\":", stdout);
            s_json_str(d->operators[i].operator_);
            printf(",\"jobs\":%" PRIu64 ",\"earned\":%" PRId64 "}", d->operators[i].jobs,
                   d->operators[i].earned);
        }
        printf("],\"settled_total\":%" PRIu64 ",\"ledger_sum\":%" PRId64 "}\n", d->settled_total,
               d->ledger_sum);
    } else {
        printf("workers        %u  (utilisation %.1f%%)\n", d->workers, d->utilisation * 100.0);
        printf("throughput     %.2f jobs/s  (%" PRIu64 " settled in all)\n", d->jobs_per_s,
               d->settled_total);
        printf("latency        p50 %.1f ms  p99 %.1f ms\n", d->p50_ms, d->p99_ms);
        printf("ledger sum     %" PRId64 "%s\n", d->ledger_sum,
               d->ledger_sum ? "  (UNBALANCED)" : "  (balanced)");
        printf("\nqueues\n");
        static const char *const kh[] = {"KIND", "QUEUED", "RUNNING"};
        static const bool kr[] = {false, true, true};
        table_t t = {3, kh, kr, NULL, 0, 0};
        for (size_t i = 0; i < d->nkinds; i++) {
            char q[24], r[24];
            snprintf(q, sizeof q, "%" PRIu64, d->kinds[i].queued);
            snprintf(r, sizeof r, "%" PRIu64, d->kinds[i].running);
            s_table_add(&t, d->kinds[i].kind, q, r);
        }
        s_table_print(&t);
        printf("\nearnings\n");
        static const char *const oh[] = {"OPERATOR", "JOBS", "EARNED"};
        table_t o = {3, oh, kr, NULL, 0, 0};
        for (size_t i = 0; i < d->noperators; i++) {
            char j[24], e[24];
            snprintf(j, sizeof j, "%" PRIu64, d->operators[i].jobs);
            snprintf(e, sizeof e, "%" PRId64, d->operators[i].earned);
            s_table_add(&o, d->operators[i].operator_, j, e);
        }
        s_table_print(&o);
    }
    quarry_dash_free(&d);
    return EXIT_OK;
}

/* keygen PREFIX: no broker involved. */
static int check_keygen(cli_t *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    if (!argv[0][0]) {
        s_err("keygen: PREFIX must not be empty");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int cmd_keygen(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    (void)c;
    (void)argc;
    char path[4096];
    snprintf(path, sizeof path, "%s.key", argv[0]);
    if (access(path, F_OK) == 0) {
        s_err("%s exists; not overwriting a secret key", path);
        return EXIT_LOCAL;
    }
    char pub[41];
    quarry_err_t rc = quarry_keygen(argv[0], pub);
    if (rc == QUARRY_EIO) {
        s_err("cannot write %s.key / %s.pub: %s", argv[0], argv[0], strerror(errno));
        return EXIT_LOCAL;
    }
    if (rc) {
        s_err("cannot generate a key pair: %s (does this libzmq support CURVE?)",
              quarry_strerror(rc));
        return EXIT_LOCAL;
    }
    if (cli->json) {
        fputs("{\"public_key\":", stdout);
        s_json_str(pub);
        fputs(",\"secret_file\":", stdout);
        s_json_str(path);
        printf(",\"public_file\":");
        snprintf(path, sizeof path, "%s.pub", argv[0]);
        s_json_str(path);
        fputs("}\n", stdout);
    } else {
        printf("%s\n", pub);
    }
    return EXIT_OK;
}

/* True when s is 40 characters of the Z85 alphabet (a CurveZMQ key). */
static bool s_z85_key(const char *s)
{
    static const char z85[] =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if (strlen(s) != 40)
        return false;
    for (; *s; s++)
        if (!strchr(z85, *s))
            return false;
    return true;
}

/* admin OP KEY [ACCOUNT]: checked before connecting. */
static int check_admin(cli_t *cli, int argc, char **argv)
{
    (void)cli;
    const char *op = argv[0];
    bool remove_op = !strcmp(op, "remove");
    if (strcmp(op, "add-client") && strcmp(op, "add-operator") && strcmp(op, "add-admin") &&
        !remove_op) {
        s_err("admin: unknown operation '%s' (add-client, add-operator, add-admin, remove)", op);
        return EXIT_USAGE;
    }
    if (argc < 2 || (!remove_op && argc < 3) || (remove_op && argc > 2)) {
        s_err("usage: quarry admin %s", remove_op ? "remove KEY" : "add-client|add-operator|add-admin KEY ACCOUNT");
        return EXIT_USAGE;
    }
    if (!remove_op && !argv[2][0]) {
        s_err("admin: ACCOUNT must not be empty");
        return EXIT_USAGE;
    }
    /* KEY: 40 characters of Z85 text, or a file whose first line is */
    char line[128];
    snprintf(line, sizeof line, "%s", argv[1]);
    if (!s_z85_key(line)) {
        FILE *f = fopen(argv[1], "r");
        if (!f) {
            s_err("admin: KEY '%s' is neither a 40-character Z85 key nor a readable file",
                  argv[1]);
            return EXIT_USAGE;
        }
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        fclose(f);
        line[strcspn(line, " \t\r\n")] = '\0';
        if (!s_z85_key(line)) {
            s_err("admin: %s does not hold a 40-character Z85 public key", argv[1]);
            return EXIT_USAGE;
        }
    }
    return EXIT_OK;
}

static int cmd_admin(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    quarry_err_t rc = quarry_admin_key(c, argv[0], argv[1], argc > 2 ? argv[2] : NULL);
    if (rc)
        return s_fail(c, rc);
    if (cli->json) {
        fputs("{\"ok\":true,\"op\":", stdout);
        s_json_str(argv[0]);
        fputs("}\n", stdout);
    } else {
        printf("%s: done\n", argv[0]);
    }
    return EXIT_OK;
}

/* ---- proof, claim: the settlement mirror and the chain ------------------------ */

/* GET base + path from quarry-mirror (plain HTTP/1.0, which is what it
 * serves).  The body goes to a malloc'd *body; returns the HTTP status, or
 * -1 with a message on stderr when nothing answered. */
static int s_http_get(const char *base, const char *path, char **body)
{
    *body = NULL;
    const char *p = base;
    if (!strncmp(p, "http://", 7))
        p += 7;
    else if (strstr(p, "://")) {
        s_err("--mirror: only http:// addresses are served by quarry-mirror ('%s')", base);
        return -1;
    }
    char host[256], port[16] = "80", prefix[256] = "";
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof host) {
        s_err("--mirror: no host in '%s'", base);
        return -1;
    }
    memcpy(host, p, hl);
    host[hl] = '\0';
    p += hl;
    if (*p == ':') {
        size_t pl = strcspn(++p, "/");
        if (pl == 0 || pl >= sizeof port) {
            s_err("--mirror: bad port in '%s'", base);
            return -1;
        }
        memcpy(port, p, pl);
        port[pl] = '\0';
        p += pl;
    }
    snprintf(prefix, sizeof prefix, "%s", p);
    size_t plen = strlen(prefix);
    if (plen && prefix[plen - 1] == '/')
        prefix[plen - 1] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
        s_err("mirror at %s: cannot resolve %s", base, host);
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        s_err("mirror at %s is not reachable: %s", base, strerror(errno));
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s%s HTTP/1.0\r\nHost: %s\r\n\r\n", prefix, path, host);
    if (n < 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        s_err("mirror at %s: cannot send the request", base);
        return -1;
    }
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (got + 1 == cap) {
            char *q = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!q) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = q;
            cap *= 2;
        }
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 30000) <= 0) {
            free(buf);
            buf = NULL;
            break;
        }
        ssize_t r = recv(fd, buf + got, cap - got - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf) {
        s_err("mirror at %s: no complete answer", base);
        return -1;
    }
    buf[got] = '\0';
    int status = -1;
    char *sep = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || !sep) {
        free(buf);
        s_err("mirror at %s: not an HTTP answer", base);
        return -1;
    }
    memmove(buf, sep + 4, strlen(sep + 4) + 1);
    *body = buf;
    return status;
}

/* GETs a JSON document; *doc on 200, else a message from the body's "error"
 * and an exit code. */
static int s_mirror_json(const cli_t *cli, const char *path, json_t **doc)
{
    char *body = NULL;
    *doc = NULL;
    int status = s_http_get(cli->mirror, path, &body);
    if (status < 0)
        return EXIT_UNAVAIL;
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    free(body);
    if (status == 200 && j) {
        *doc = j;
        return EXIT_OK;
    }
    json_t *e = json_object_get(j, "error");
    s_err("mirror: %s (HTTP %d)", json_is_string(e) ? json_string_value(e) : "bad answer", status);
    json_decref(j);
    return status == 404 || status == 400 ? EXIT_REFUSED : EXIT_UNAVAIL;
}

static void s_set_chain_defaults(cli_t *cli, bool rpc_default)
{
    if (!cli->mirror || !*cli->mirror) {
        cli->mirror = getenv("QUARRY_MIRROR");
        if (!cli->mirror || !*cli->mirror)
            cli->mirror = "http://127.0.0.1:9108";
    }
    if (!cli->rpc || !*cli->rpc) {
        cli->rpc = getenv("QUARRY_RPC");
        if ((!cli->rpc || !*cli->rpc) && rpc_default)
            cli->rpc = "http://127.0.0.1:8545";
    }
}

/* eth_call of calldata (freed) at contract; one return word into *word. */
static int s_eth_call(qr_rpc_t *rpc, const uint8_t contract[QR_ADDR_LEN], const uint8_t *from,
                      uint8_t *cd, size_t len, uint8_t word[32])
{
    qr_call_t call = {.has_to = 1, .data = cd, .data_len = len};
    memcpy(call.to, contract, QR_ADDR_LEN);
    if (from) {
        call.has_from = 1;
        memcpy(call.from, from, QR_ADDR_LEN);
    }
    uint8_t *out = NULL;
    size_t olen = 0;
    int rc = qr_rpc_call(rpc, &call, NULL, &out, &olen);
    free(cd);
    if (rc == QR_OK && olen < 32)
        rc = QR_EPROTO;
    if (rc == QR_OK)
        memcpy(word, out, 32);
    free(out);
    return rc;
}

/* The leaf of a record hashed up its proof gives the root. */
static bool s_proof_holds(const qr_mirror_rec_t *rec, const uint8_t root[32],
                          const uint8_t (*proof)[32], size_t n)
{
    qr_settlement_t s;
    s.job_id = rec->job_id;
    memcpy(s.client, rec->client, QR_ADDR_LEN);
    memcpy(s.operator_, rec->operator_, QR_ADDR_LEN);
    s.amount = rec->amount;
    uint8_t leaf[32];
    qr_settlement_leaf(&s, leaf);
    return qr_merkle_verify(leaf, proof, n, root);
}

static const char *s_jstr(const json_t *doc, const char *key)
{
    const char *v = json_string_value(json_object_get(doc, key));
    return v ? v : "";
}

static long long s_jint(const json_t *doc, const char *key)
{
    return (long long)json_integer_value(json_object_get(doc, key));
}

static int cmd_proof(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    (void)c;
    (void)argc;
    s_set_chain_defaults(cli, false);
    char path[64];
    snprintf(path, sizeof path, "/proof/%" PRIu64, cli->job_id);
    json_t *doc;
    int ex = s_mirror_json(cli, path, &doc);
    if (ex != EXIT_OK)
        return ex;
    qr_mirror_rec_t rec;
    uint64_t batch;
    uint8_t root[32], proof[QR_MERKLE_MAX_DEPTH][32];
    size_t np = 0;
    char err[160];
    if (qr_mirror_proof_parse(doc, &rec, &batch, root, proof, &np, err, sizeof err) < 0 ||
        rec.job_id != cli->job_id) {
        s_err("mirror: malformed proof document: %s", err);
        json_decref(doc);
        return EXIT_UNAVAIL;
    }
    bool local = s_proof_holds(&rec, root, (const uint8_t(*)[32])proof, np);
    int onchain = -1; /* -1: not asked */
    if (cli->rpc && *cli->rpc) {
        uint8_t contract[QR_ADDR_LEN], *cd, word[32];
        size_t len;
        qr_rpc_t *rpc = qr_rpc_new(cli->rpc, (int)cli->timeout_ms, err, sizeof err);
        if (!rpc || qr_address_from_text(s_jstr(doc, "contract"), contract) < 0 ||
            qr_mirror_verify_calldata(batch, &rec, (const uint8_t(*)[32])proof, np, &cd, &len) <
                0) {
            s_err("--rpc: %s", rpc ? "bad contract address from the mirror" : err);
            qr_rpc_destroy(&rpc);
            json_decref(doc);
            return EXIT_USAGE;
        }
        if (s_eth_call(rpc, contract, NULL, cd, len, word) != QR_OK) {
            s_err("verifySettlement: %s", qr_rpc_last_error(rpc)->message);
            qr_rpc_destroy(&rpc);
            json_decref(doc);
            return EXIT_UNAVAIL;
        }
        onchain = word[31] == 1;
        qr_rpc_destroy(&rpc);
    }
    if (cli->json) {
        json_object_set_new(doc, "verified_locally", json_boolean(local));
        if (onchain >= 0)
            json_object_set_new(doc, "verified_on_chain", json_boolean(onchain));
        char *s = json_dumps(doc, JSON_COMPACT);
        if (s)
            printf("%s\n", s);
        free(s);
    } else {
        printf("job        %" PRIu64 "\n", rec.job_id);
        printf("batch      %" PRIu64 " (%s; leaf %lld of %lld)\n", batch, s_jstr(doc, "state"),
               s_jint(doc, "leaf_index"), s_jint(doc, "count"));
        printf("client     %s  %s\n", s_jstr(doc, "client"), s_jstr(doc, "client_account"));
        printf("operator   %s  %s\n", s_jstr(doc, "operator"), s_jstr(doc, "operator_account"));
        printf("amount     %s wei  (price %lld - fee %lld, %lld units)\n", s_jstr(doc, "amount"),
               s_jint(doc, "price"), s_jint(doc, "fee"), s_jint(doc, "units"));
        printf("leaf       %s\n", s_jstr(doc, "leaf"));
        printf("root       %s\n", s_jstr(doc, "root"));
        json_t *pr = json_object_get(doc, "proof");
        for (size_t i = 0; i < json_array_size(pr); i++)
            printf("%s %s\n", i ? "          " : "proof     ",
                   json_string_value(json_array_get(pr, i)));
        if (!json_array_size(pr))
            printf("proof      (empty: the only record of its batch)\n");
        printf("tx         %s", s_jstr(doc, "tx_hash"));
        if (s_jint(doc, "block"))
            printf("  block %lld  gas %lld", s_jint(doc, "block"), s_jint(doc, "gas_used"));
        printf("\ncontract   %s on chain %lld\n", s_jstr(doc, "contract"), s_jint(doc, "chain_id"));
        printf("check      %s\n", local ? "the proof hashes to the root" : "PROOF DOES NOT HOLD");
        if (onchain >= 0)
            printf("on chain   verifySettlement: %s\n", onchain ? "true" : "false");
    }
    json_decref(doc);
    if (!local || onchain == 0) {
        s_err("job %" PRIu64 ": the proof does not hold%s", cli->job_id,
              local ? " on chain (batch not posted yet?)" : "");
        return EXIT_REFUSED;
    }
    return EXIT_OK;
}

static int check_claim(cli_t *cli, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (!cli->eth_key || !*cli->eth_key) {
        s_err("claim: --eth-key FILE is required (the operator's Ethereum key)");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* One record to claim and what became of it. */
typedef struct {
    qr_mirror_rec_t rec;
    uint64_t batch;
    uint8_t hash[32];
    uint8_t *cd; /* claim calldata until sent (malloc'd) */
    size_t cd_len;
    bool sent;
    char note[600]; /* why skipped or failed */
    int outcome;    /* 0 skipped, 1 sent, 2 failed */
    uint64_t block, gas;
    bool ok;
} claim_t;

static int cmd_claim(cli_t *cli, quarry_client_t *c, int argc, char **argv)
{
    (void)c;
    (void)argc;
    (void)argv;
    s_set_chain_defaults(cli, true);
    char err[256];
    qr_ethkey_t *key = qr_ethkey_load(cli->eth_key, err, sizeof err);
    if (!key) {
        s_err("claim: %s", err);
        return EXIT_USAGE;
    }
    const uint8_t *me = qr_ethkey_address(key);
    char mytext[43];
    qr_address_to_text(me, mytext);
    qr_rpc_t *rpc = qr_rpc_new(cli->rpc, (int)(cli->timeout_ms > 10000 ? cli->timeout_ms : 10000),
                               err, sizeof err);
    claim_t *cl = NULL;
    size_t n = 0, cap = 0;
    int ex = EXIT_OK;
    uint8_t contract[QR_ADDR_LEN];
    bool have_contract = false;
    if (!rpc) {
        s_err("--rpc: %s", err);
        ex = EXIT_USAGE;
        goto done;
    }
    /* the operator's confirmed records, a page at a time */
    char who[400];
    if (cli->operator_ && *cli->operator_) {
        size_t k = 0;
        for (const unsigned char *p = (const unsigned char *)cli->operator_; *p && k + 4 < sizeof who;
             p++) {
            if (isalnum(*p) || strchr("-_.~", *p))
                who[k++] = (char)*p;
            else
                k += (size_t)snprintf(who + k, sizeof who - k, "%%%02X", *p);
        }
        who[k] = '\0';
    }
    for (uint64_t after = 0;;) {
        char path[512];
        if (cli->operator_ && *cli->operator_)
            snprintf(path, sizeof path, "/records/account/%s/after/%" PRIu64, who, after);
        else
            snprintf(path, sizeof path, "/records/address/%s/after/%" PRIu64, mytext, after);
        json_t *doc;
        if ((ex = s_mirror_json(cli, path, &doc)) != EXIT_OK)
            goto done;
        uint8_t op[QR_ADDR_LEN];
        if (qr_address_from_text(s_jstr(doc, "operator"), op) < 0 ||
            memcmp(op, me, QR_ADDR_LEN) != 0) {
            s_err("claim: %s's records name operator %s, not this key's address %s: the contract "
                  "pays only the record's operator",
                  cli->operator_, s_jstr(doc, "operator"), mytext);
            json_decref(doc);
            ex = EXIT_USAGE;
            goto done;
        }
        json_t *recs = json_object_get(doc, "records");
        for (size_t i = 0; i < json_array_size(recs); i++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                claim_t *q = realloc(cl, cap * sizeof *cl);
                if (!q) {
                    json_decref(doc);
                    ex = EXIT_LOCAL;
                    goto done;
                }
                cl = q;
            }
            claim_t *x = &cl[n];
            memset(x, 0, sizeof *x);
            uint8_t root[32], proof[QR_MERKLE_MAX_DEPTH][32];
            size_t np;
            json_t *r = json_array_get(recs, i);
            if (qr_mirror_proof_parse(r, &x->rec, &x->batch, root, proof, &np, err, sizeof err) < 0) {
                s_err("mirror: malformed record: %s", err);
                json_decref(doc);
                ex = EXIT_UNAVAIL;
                goto done;
            }
            if (!have_contract && qr_address_from_text(s_jstr(r, "contract"), contract) == 0)
                have_contract = true;
            n++;
            if (!s_proof_holds(&x->rec, root, (const uint8_t(*)[32])proof, np)) {
                x->outcome = 2;
                snprintf(x->note, sizeof x->note, "the mirror's proof does not hash to its root");
                continue;
            }
            x->outcome = 1;
            if (qr_mirror_claim_calldata(x->batch, &x->rec, (const uint8_t(*)[32])proof, np,
                                         &x->cd, &x->cd_len) < 0) {
                json_decref(doc);
                ex = EXIT_LOCAL;
                goto done;
            }
        }
        json_t *next = json_object_get(doc, "next_after");
        bool more = json_is_integer(next);
        if (more)
            after = (uint64_t)json_integer_value(next);
        json_decref(doc);
        if (!more)
            break;
    }
    /* sign and send, one nonce after another */
    uint64_t chain = 0, nonce = 0;
    qr_u256_t tip, max_fee;
    if (n && (qr_rpc_chain_id(rpc, &chain) != QR_OK || qr_rpc_nonce(rpc, me, &nonce) != QR_OK ||
              qr_rpc_fees(rpc, &tip, &max_fee) != QR_OK)) {
        s_err("node: %s", qr_rpc_last_error(rpc)->message);
        ex = EXIT_UNAVAIL;
    }
    for (size_t i = 0; i < n; i++) {
        claim_t *x = &cl[i];
        if (x->outcome != 1)
            continue;
        uint8_t *cd = x->cd;
        size_t len = x->cd_len;
        x->cd = NULL;
        if (ex != EXIT_OK) {
            free(cd);
            x->outcome = 2;
            snprintf(x->note, sizeof x->note, "not sent: the node is unavailable");
            continue;
        }
        uint8_t *icd, word[32];
        size_t ilen;
        if (qr_mirror_simple_calldata("isClaimed(uint64)", 1, x->rec.job_id, &icd, &ilen) == 0 &&
            s_eth_call(rpc, contract, NULL, icd, ilen, word) == QR_OK && word[31] == 1) {
            free(cd);
            x->outcome = 0;
            snprintf(x->note, sizeof x->note, "already claimed");
            continue;
        }
        qr_call_t call = {.has_from = 1, .has_to = 1, .data = cd, .data_len = len};
        memcpy(call.from, me, QR_ADDR_LEN);
        memcpy(call.to, contract, QR_ADDR_LEN);
        uint64_t gas;
        if (qr_rpc_estimate_gas(rpc, &call, &gas) != QR_OK) {
            /* a claim that would revert (deposit short, unknown batch) */
            free(cd);
            x->outcome = 2;
            snprintf(x->note, sizeof x->note, "%s", qr_rpc_last_error(rpc)->message);
            continue;
        }
        qr_tx_t tx = {.chain_id = chain, .nonce = nonce, .max_priority_fee = tip,
                      .max_fee = max_fee, .gas = gas + gas / 5, .has_to = 1, .data = cd,
                      .data_len = len};
        memcpy(tx.to, contract, QR_ADDR_LEN);
        qr_signed_tx_t st;
        int sr = qr_tx_sign(&tx, key, &st, err, sizeof err);
        free(cd);
        if (sr < 0) {
            x->outcome = 2;
            snprintf(x->note, sizeof x->note, "%s", err);
            continue;
        }
        uint8_t hash[32];
        if (qr_rpc_send_raw(rpc, st.raw, st.raw_len, hash) != QR_OK) {
            x->outcome = 2;
            snprintf(x->note, sizeof x->note, "%s", qr_rpc_last_error(rpc)->message);
            qr_signed_tx_free(&st);
            continue;
        }
        memcpy(x->hash, st.hash, 32);
        qr_signed_tx_free(&st);
        x->sent = true;
        nonce++;
    }
    int64_t wait_ms = cli->receipt_ms > 0 ? cli->receipt_ms : 120000;
    int64_t t0 = (int64_t)time(NULL) * 1000;
    for (size_t i = 0; i < n; i++) {
        claim_t *x = &cl[i];
        if (!x->sent)
            continue;
        int64_t left = wait_ms - ((int64_t)time(NULL) * 1000 - t0);
        qr_receipt_t r;
        if (left <= 0 || qr_rpc_wait_receipt(rpc, x->hash, (int)(left > 0 ? left : 1), 200, &r) !=
                             QR_OK) {
            x->outcome = 2;
            snprintf(x->note, sizeof x->note, "sent, no receipt yet: look up the tx later");
            continue;
        }
        x->ok = r.status == 1;
        x->block = r.block_number;
        x->gas = r.gas_used;
        if (!x->ok) {
            x->outcome = 2;
            snprintf(x->note, sizeof x->note, "reverted");
        }
        qr_receipt_free(&r);
    }
    /* report */
    qr_u256_t total = qr_u256_from_u64(0);
    uint64_t gas_total = 0;
    size_t nok = 0, nskip = 0, nfail = 0;
    for (size_t i = 0; i < n; i++) {
        if (cl[i].sent && cl[i].ok) {
            qr_u256_add(&total, &cl[i].rec.amount, &total);
            nok++;
        }
        gas_total += cl[i].gas;
        nskip += cl[i].outcome == 0;
        nfail += cl[i].outcome == 2;
    }
    char tot[80];
    qr_u256_to_dec(&total, tot, sizeof tot);
    if (cli->json) {
        printf("{\"operator\":\"%s\",\"claimed\":[", mytext);
        bool first = true;
        for (size_t i = 0; i < n; i++) {
            if (!(cl[i].sent && cl[i].ok))
                continue;
            char amt[80], h[67];
            qr_u256_to_dec(&cl[i].rec.amount, amt, sizeof amt);
            qr_hex_encode(cl[i].hash, 32, h);
            printf("%s{\"job_id\":%" PRIu64 ",\"batch_id\":%" PRIu64 ",\"amount\":\"%s\","
                   "\"tx_hash\":\"%s\",\"block\":%" PRIu64 ",\"gas_used\":%" PRIu64 "}",
                   first ? "" : ",", cl[i].rec.job_id, cl[i].batch, amt, h, cl[i].block,
                   cl[i].gas);
            first = false;
        }
        for (int o = 0; o <= 2; o += 2) {
            printf("],\"%s\":[", o ? "failed" : "skipped");
            first = true;
            for (size_t i = 0; i < n; i++) {
                if (cl[i].outcome != o)
                    continue;
                printf("%s{\"job_id\":%" PRIu64 ",\"reason\":", first ? "" : ",", cl[i].rec.job_id);
                s_json_str(cl[i].note);
                putchar('}');
                first = false;
            }
        }
        printf("],\"total_amount\":\"%s\",\"gas_used\":%" PRIu64 "}\n", tot, gas_total);
    } else {
        for (size_t i = 0; i < n; i++) {
            char amt[80], h[67];
            qr_u256_to_dec(&cl[i].rec.amount, amt, sizeof amt);
            qr_hex_encode(cl[i].hash, 32, h);
            if (cl[i].sent && cl[i].ok)
                printf("job %-10" PRIu64 " batch %-6" PRIu64 " %s wei  tx %s\n", cl[i].rec.job_id,
                       cl[i].batch, amt, h);
            else
                printf("job %-10" PRIu64 " batch %-6" PRIu64 " %s: %s\n", cl[i].rec.job_id,
                       cl[i].batch, cl[i].outcome ? "FAILED" : "skipped", cl[i].note);
        }
        printf("claimed %zu record(s), %s wei, gas %" PRIu64 "; %zu already claimed, %zu failed\n",
               nok, tot, gas_total, nskip, nfail);
    }
    if (ex == EXIT_OK && nfail)
        ex = EXIT_REFUSED;
done:
    for (size_t i = 0; cl && i < n; i++)
        free(cl[i].cd); /* calldata never sent (an early exit) */
    free(cl);
    qr_rpc_destroy(&rpc);
    qr_ethkey_destroy(&key);
    return ex;
}

#define CMD(name, args, lo, hi, flags, check, fn, help)                                           \
    {name, args, lo, hi, flags, sizeof flags / sizeof flags[0], check, fn, help, false}
#define CMD0(name, args, lo, hi, check, fn, help) {name, args, lo, hi, NULL, 0, check, fn, help, false}

static const command_t s_commands[] = {
    CMD("submit", "", 0, 0, s_submit_flags, check_submit, cmd_submit,
        "submit an ai.gemm job C = A * B"),
    CMD0("upload", "FILE", 1, 1, NULL, cmd_upload,
         "store a model file (weights or graph) with the broker; prints its SHA-256"),
    CMD("infer", "", 0, 0, s_infer_flags, check_infer, cmd_infer,
        "submit an ai.infer job: input rows through a model (uploaded as needed)"),
    CMD("prove", "", 0, 0, s_prove_flags, check_prove, cmd_prove,
        "submit a zk.groth16 job: a proof of a witness under a snarkjs .zkey (uploaded as needed)"),
    CMD0("status", "JOB", 1, 1, check_job, cmd_status, "show a job"),
    CMD("wait", "JOB", 1, 1, s_wait_flags, check_job, cmd_wait, "wait until a job is final"),
    CMD("result", "JOB", 1, 1, s_result_flags, check_job, cmd_result,
        "fetch a settled job's result (summary: shape, sums, first values)"),
    CMD0("cancel", "JOB", 1, 1, check_job, cmd_cancel, "cancel a job"),
    CMD("jobs", "", 0, 0, s_jobs_flags, check_jobs, cmd_jobs, "list jobs, newest first"),
    CMD0("workers", "", 0, 0, NULL, cmd_workers, "list connected workers"),
    CMD0("balance", "[ACCOUNT]", 0, 1, NULL, cmd_balance, "show balances (default: own account)"),
    CMD0("deposit", "ACCOUNT AMOUNT", 2, 2, check_deposit, cmd_deposit,
         "credit an account (admin)"),
    CMD0("dash", "", 0, 0, NULL, cmd_dash,
         "queues, workers, utilisation, jobs/s, latency, earnings, ledger sum"),
    {.name = "keygen", .args = "PREFIX", .min_args = 1, .max_args = 1, .check = check_keygen,
     .fn = cmd_keygen, .offline = true,
     .help = "make a key pair PREFIX.key (secret, 0600) + PREFIX.pub; prints the public key"},
    CMD0("admin", "OP KEY [ACCOUNT]", 2, 3, check_admin, cmd_admin,
         "register a key (admin): add-client|add-operator|add-admin KEY ACCOUNT, remove KEY"),
    {.name = "proof", .args = "JOB", .min_args = 1, .max_args = 1, .flags = s_proof_flags,
     .nflags = sizeof s_proof_flags / sizeof s_proof_flags[0], .check = check_job,
     .fn = cmd_proof, .offline = true,
     .help = "a settlement's on-chain record and Merkle proof, from quarry-mirror"},
    {.name = "claim", .args = "", .min_args = 0, .max_args = 0, .flags = s_claim_flags,
     .nflags = sizeof s_claim_flags / sizeof s_claim_flags[0], .check = check_claim,
     .fn = cmd_claim, .offline = true,
     .help = "claim an operator's mirrored earnings from the contract (one tx per record)"},
};
#define NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

static void s_flags_help(FILE *out, const flag_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", f[i].name, f[i].arg ? " " : "",
                 f[i].arg ? f[i].arg : "");
        fprintf(out, "    %-22s %s\n", left, f[i].help);
    }
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: quarry [GLOBAL FLAGS] COMMAND [ARGS] [FLAGS]\n"
            "\n"
            "Client of the Quarry compute marketplace (libquarry %s).\n"
            "\n"
            "Global flags (before or after the command):\n",
            quarry_version());
    s_flags_help(out, s_global, NGLOBAL);
    fprintf(out, "    %-22s %s\n    %-22s %s\n", "--help", "show this help", "--version",
            "show the version");
    fprintf(out, "\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s %s", s_commands[i].name, s_commands[i].args);
        fprintf(out, "  %-24s %s\n", left, s_commands[i].help);
        s_flags_help(out, s_commands[i].flags, s_commands[i].nflags);
    }
    fprintf(out,
            "\nExit codes:\n"
            "  0  success (wait, submit --wait: the job settled)\n"
            "  1  the job ended failed, expired, cancelled or rejected\n"
            "  2  usage error: unknown command or flag, missing or bad argument\n"
            "  3  broker unavailable, no answer in time, or wait --timeout-ms passed\n"
            "  4  the broker refused the request (funds, not found, permission, bad input,\n"
            "     result not ready); its message is printed as 'quarry: <message>'\n"
            "  5  local error: cannot read or write a file (keygen: PREFIX.key exists),\n"
            "     out of memory\n"
            "\nSecurity: a broker not in --insecure mode admits only CurveZMQ clients whose\n"
            "key an admin registered; give --server-key and --key.  With an unknown key the\n"
            "broker does not answer at all: exit 3, 'broker unreachable, or your key is not\n"
            "admitted'.\n");
}

/* ---- main -------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    cli_t cli;
    memset(&cli, 0, sizeof cli);
    cli.broker = getenv("QUARRY_BROKER");
    if (!cli.broker || !*cli.broker)
        cli.broker = QUARRY_DEFAULT_ENDPOINT;
    cli.account = getenv("QUARRY_ACCOUNT");
    if (!cli.account || !*cli.account)
        cli.account = "default";
    cli.timeout_ms = QUARRY_DEFAULT_TIMEOUT_MS;
    cli.server_key = getenv("QUARRY_SERVER_KEY");
    cli.key = getenv("QUARRY_KEY");
    const char *tenv = getenv("QUARRY_TIMEOUT_MS");
    if (tenv && *tenv && s_parse_i64("QUARRY_TIMEOUT_MS", tenv, &cli.timeout_ms) < 0)
        return EXIT_USAGE;
    cli.cmd_timeout_ms = -1;
    cli.head = 8;

    const command_t *cmd = NULL;
    char *pos[4];
    int npos = 0;
    bool help = false, only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            if (len == 4 && !strncmp(name, "help", 4)) {
                help = true;
                continue;
            }
            if (len == 7 && !strncmp(name, "version", 7)) {
                printf("quarry %s\n", quarry_version());
                return EXIT_OK;
            }
            const flag_t *f = cmd ? s_find(cmd->flags, cmd->nflags, name, len) : NULL;
            if (!f)
                f = s_find(s_global, NGLOBAL, name, len);
            if (!f) {
                s_err("unknown flag '--%.*s'%s%s (see quarry --help)", (int)len, name,
                      cmd ? " for " : "", cmd ? cmd->name : "");
                return EXIT_USAGE;
            }
            if (s_apply(&cli, f, eq ? eq + 1 : NULL, argc, argv, &i) < 0)
                return EXIT_USAGE;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9')) {
            if (!strcmp(a, "-h")) {
                help = true;
                continue;
            }
            s_err("unknown flag '%s' (flags are --long; see quarry --help)", a);
            return EXIT_USAGE;
        }
        if (!cmd) {
            if (!strcmp(a, "help")) {
                help = true;
                continue;
            }
            for (size_t c = 0; c < NCOMMANDS; c++)
                if (!strcmp(a, s_commands[c].name))
                    cmd = &s_commands[c];
            if (!cmd) {
                s_err("unknown command '%s' (see quarry --help)", a);
                return EXIT_USAGE;
            }
            continue;
        }
        if (npos == (int)(sizeof pos / sizeof pos[0]) || npos >= cmd->max_args) {
            s_err("%s: unexpected argument '%s'", cmd->name, a);
            return EXIT_USAGE;
        }
        pos[npos++] = argv[i];
    }
    if (help) {
        s_usage(stdout);
        return EXIT_OK;
    }
    if (!cmd) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    if (npos < cmd->min_args) {
        s_err("usage: quarry %s %s", cmd->name, cmd->args);
        return EXIT_USAGE;
    }
    if (cli.timeout_ms <= 0) {
        s_err("--timeout-ms must be positive");
        return EXIT_USAGE;
    }

    if (cmd->check) {
        int ex = cmd->check(&cli, npos, pos);
        if (ex != EXIT_OK) {
            free(cli.A);
            free(cli.B);
            return ex;
        }
    }

    if (cmd->offline) {
        int ex = cmd->fn(&cli, NULL, npos, pos);
        fflush(stdout);
        return ex;
    }

    quarry_client_t *c = NULL;
    char why[512] = "";
    quarry_client_opts_t o;
    quarry_client_opts_init(&o);
    o.endpoint = cli.broker;
    o.account = cli.account;
    o.timeout_ms = cli.timeout_ms;
    o.server_key = cli.server_key;
    o.key_file = cli.key;
    o.err_buf = why;
    o.err_len = sizeof why;
    quarry_err_t rc = quarry_client_new_opts(&o, &c);
    if (rc) {
        free(cli.A);
        free(cli.B);
        bool secure = cli.server_key && *cli.server_key;
        if (rc == QUARRY_EUNAVAIL)
            s_err("broker at %s did not answer within %" PRId64 " ms%s", cli.broker,
                  cli.timeout_ms,
                  secure ? " (broker unreachable, or your key is not admitted)" : "");
        else if (rc == QUARRY_EINVAL && why[0])
            s_err("%s", why);
        else
            s_err("cannot connect to %s as %s: %s", cli.broker, cli.account,
                  why[0] ? why : quarry_strerror(rc));
        return rc == QUARRY_EINVAL ? EXIT_USAGE : s_exit_for(rc);
    }
    int ex = cmd->fn(&cli, c, npos, pos);
    quarry_client_destroy(&c);
    free(cli.A);
    free(cli.B);
    fflush(stdout);
    if (ferror(stdout) && ex == EXIT_OK) {
        s_err("cannot write to standard output");
        ex = EXIT_LOCAL;
    }
    return ex;
}
