/* Settings from defaults, a config file, environment variables and flags.
 *
 * Each program describes its settings in a table of qr_opt_t.  A setting named
 * "heartbeat-ms" is read, later sources winning, from:
 *   1. its default;
 *   2. the config file (--config FILE, or PREFIX_CONFIG): "heartbeat-ms = 2500",
 *      '#' starts a comment;
 *   3. the environment: PREFIX_HEARTBEAT_MS (prefix e.g. "QUARRY_BROKER");
 *   4. the command line: --heartbeat-ms 2500 or --heartbeat-ms=2500; a bool
 *      flag alone means true.
 * Not thread-safe; call from main(). */
#ifndef QR_CONFIG_H
#define QR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { QR_OPT_STR, QR_OPT_INT, QR_OPT_BOOL } qr_opt_type_t;

typedef struct {
    const char *name;   /* long flag name without dashes */
    qr_opt_type_t type; /* what target points to */
    void *target;       /* char ** (owned, strdup'd), int64_t * or bool * */
    const char *def;    /* default as text; NULL for an empty string */
    const char *help;   /* one line for --help */
} qr_opt_t;

/* Fills every target.  Stops at the first argument that is not a flag (or
 * after "--") and stores its index in *argi.  Returns 0, or -1 with a message
 * in err naming the bad flag, value or file line.  "--help" sets *help. */
int qr_config_parse(const qr_opt_t *opts, size_t n, const char *env_prefix, int argc,
                    char **argv, int *argi, bool *help, char *err, size_t errlen);

/* Prints the settings table: flag, environment variable, default, help. */
void qr_config_usage(FILE *out, const qr_opt_t *opts, size_t n, const char *env_prefix);

/* Frees the strings the parse stored in QR_OPT_STR targets. */
void qr_config_free(const qr_opt_t *opts, size_t n);

#endif
