/* Layered settings; see config.h. */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void s_env_name(char *out, size_t len, const char *prefix, const char *name)
{
    size_t j = 0;
    for (const char *p = prefix; *p && j + 1 < len; p++)
        out[j++] = *p;
    if (j + 1 < len)
        out[j++] = '_';
    for (const char *p = name; *p && j + 1 < len; p++)
        out[j++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[j] = '\0';
}

static int s_set(const qr_opt_t *o, const char *val, const char *where, char *err, size_t errlen)
{
    switch (o->type) {
    case QR_OPT_STR: {
        char **t = o->target;
        char *v = strdup(val ? val : "");
        if (!v) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(*t);
        *t = v;
        return 0;
    }
    case QR_OPT_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(val ? val : "", &end, 10);
        if (!val || !*val || *end || errno) {
            snprintf(err, errlen, "%s: '%s' needs an integer, got '%s'", where, o->name,
                     val ? val : "");
            return -1;
        }
        *(int64_t *)o->target = v;
        return 0;
    }
    case QR_OPT_BOOL: {
        bool *t = o->target;
        if (!val || !strcmp(val, "1") || !strcasecmp(val, "true") || !strcasecmp(val, "yes") ||
            !strcasecmp(val, "on"))
            *t = true;
        else if (!strcmp(val, "0") || !strcasecmp(val, "false") || !strcasecmp(val, "no") ||
                 !strcasecmp(val, "off"))
            *t = false;
        else {
            snprintf(err, errlen, "%s: '%s' needs true or false, got '%s'", where, o->name, val);
            return -1;
        }
        return 0;
    }
    }
    return -1;
}

static const qr_opt_t *s_find(const qr_opt_t *opts, size_t n, const char *name, size_t nlen)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == nlen && strncmp(opts[i].name, name, nlen) == 0)
            return &opts[i];
    return NULL;
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int s_file(const qr_opt_t *opts, size_t n, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "config file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = s_trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        char where[256];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!eq) {
            snprintf(err, errlen, "%s: expected 'name = value'", where);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = s_trim(s), *val = s_trim(eq + 1);
        const qr_opt_t *o = s_find(opts, n, key, strlen(key));
        if (!o) {
            snprintf(err, errlen, "%s: unknown setting '%s'", where, key);
            rc = -1;
            break;
        }
        rc = s_set(o, val, where, err, errlen);
    }
    fclose(f);
    return rc;
}

int qr_config_parse(const qr_opt_t *opts, size_t n, const char *env_prefix, int argc,
                    char **argv, int *argi, bool *help, char *err, size_t errlen)
{
    *help = false;
    for (size_t i = 0; i < n; i++) {
        const char *def = opts[i].def ? opts[i].def : opts[i].type == QR_OPT_STR ? "" : "0";
        if (s_set(&opts[i], def, "default", err, errlen) < 0)
            return -1;
    }

    /* The config file comes from the flag, else the environment. */
    const char *cfg = NULL;
    char envname[256];
    s_env_name(envname, sizeof envname, env_prefix, "config");
    cfg = getenv(envname);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0 || argv[i][0] != '-' || argv[i][1] != '-')
            break;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            cfg = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            cfg = argv[i] + 9;
    }
    if (cfg && *cfg && s_file(opts, n, cfg, err, errlen) < 0)
        return -1;

    for (size_t i = 0; i < n; i++) {
        s_env_name(envname, sizeof envname, env_prefix, opts[i].name);
        const char *v = getenv(envname);
        if (v && s_set(&opts[i], v, envname, err, errlen) < 0)
            return -1;
    }

    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] != '-')
            break;
        a += 2;
        if (strcmp(a, "help") == 0) {
            *help = true;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (nlen == 6 && strncmp(a, "config", 6) == 0) {
            if (!eq)
                i++;
            continue;
        }
        const qr_opt_t *o = s_find(opts, n, a, nlen);
        if (!o) {
            snprintf(err, errlen, "unknown flag '--%.*s' (see --help)", (int)nlen, a);
            return -1;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val && o->type != QR_OPT_BOOL) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "flag '--%s' needs a value", o->name);
                return -1;
            }
            val = argv[++i];
        }
        if (s_set(o, val, "flag", err, errlen) < 0)
            return -1;
    }
    *argi = i;
    return 0;
}

void qr_config_usage(FILE *out, const qr_opt_t *opts, size_t n, const char *env_prefix)
{
    fprintf(out, "Settings (flag, environment variable, default):\n");
    fprintf(out, "  --config FILE  %s_CONFIG  read 'name = value' lines from FILE\n", env_prefix);
    for (size_t i = 0; i < n; i++) {
        char env[256];
        s_env_name(env, sizeof env, env_prefix, opts[i].name);
        fprintf(out, "  --%s%s  %s  [%s]\n      %s\n", opts[i].name,
                opts[i].type == QR_OPT_BOOL ? "" : opts[i].type == QR_OPT_INT ? " N" : " TEXT",
                env, opts[i].def ? opts[i].def : "", opts[i].help);
    }
}

void qr_config_free(const qr_opt_t *opts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (opts[i].type == QR_OPT_STR) {
            char **t = opts[i].target;
            free(*t);
            *t = NULL;
        }
}
