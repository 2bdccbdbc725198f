/* quarry-broker: the marketplace's central daemon.
 *
 *   quarry-broker [settings]          run the broker
 *   quarry-broker [settings] migrate  apply database migrations and exit
 *
 * Settings come from defaults, a config file, QUARRY_BROKER_* variables and
 * flags (common/config.h); --help lists them all. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "config.h"
#include "db.h"
#include "err.h"
#include "util.h"

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

int main(int argc, char **argv)
{
    char *client_ep = NULL, *worker_ep = NULL, *db = NULL, *level = NULL, *metrics = NULL,
         *curve_key = NULL, *admin_keys = NULL, *store = NULL;
    bool insecure = false, open_reg = false, no_aff = false;
    int64_t hb, liveness, attempts, maxin, fee, prefetch, pfunits, batch, rounds, cache, unitcap, minrep, keepfinal,
        crate, cquota, maxart, modelcache, affwait;
    const qr_opt_t opts[] = {
        {"client-endpoint", QR_OPT_STR, &client_ep, "tcp://*:5555", "ZeroMQ endpoint(s) clients connect to, comma-separated"},
        {"worker-endpoint", QR_OPT_STR, &worker_ep, "tcp://*:5556", "ZeroMQ endpoint(s) workers connect to, comma-separated"},
        {"db", QR_OPT_STR, &db, "dbname=quarry", "PostgreSQL conninfo string or URI"},
        {"curve-key", QR_OPT_STR, &curve_key, "",
         "PREFIX of the broker's CURVE key pair (PREFIX.key, PREFIX.pub; created on first start)"},
        {"admin-keys", QR_OPT_STR, &admin_keys, "",
         "comma-separated admin public keys (Z85 text or .pub files) that may bind other keys"},
        {"open-registration", QR_OPT_BOOL, &open_reg, "false",
         "admit any CURVE key and bind it to the account it first names (test networks)"},
        {"insecure", QR_OPT_BOOL, &insecure, "false",
         "plain text, no authentication, anyone may deposit (local development only)"},
        {"metrics-addr", QR_OPT_STR, &metrics, "",
         "HOST:PORT serving Prometheus /metrics and /healthz (empty = off), e.g. :9100"},
        {"heartbeat-ms", QR_OPT_INT, &hb, "2500", "heartbeat interval told to workers"},
        {"liveness", QR_OPT_INT, &liveness, "3", "missed heartbeats before a worker is lost"},
        {"max-attempts", QR_OPT_INT, &attempts, "3", "default attempts per job before it fails"},
        {"max-input-bytes", QR_OPT_INT, &maxin, "268435456", "largest job input accepted"},
        {"fee-bps", QR_OPT_INT, &fee, "500", "protocol fee in basis points of each payment"},
        {"prefetch", QR_OPT_INT, &prefetch, "256", "most jobs sent to a worker beyond its slots"},
        {"prefetch-units", QR_OPT_INT, &pfunits, "512",
         "work units (2^20 multiply-adds) a worker may hold beyond its slots"},
        {"batch-max", QR_OPT_INT, &batch, "4096", "messages applied per database commit"},
        {"verify-rounds", QR_OPT_INT, &rounds, "2", "Freivalds random vectors per result"},
        {"blob-cache-mb", QR_OPT_INT, &cache, "256", "finished jobs' inputs and results kept in memory (dedupe, RESULT)"},
        {"default-unit-cap", QR_OPT_INT, &unitcap, "1000", "max price per work unit for jobs that set none"},
        {"min-reputation", QR_OPT_INT, &minrep, "50", "workers below this reputation (0-100) get no work"},
        {"client-rate", QR_OPT_INT, &crate, "0",
         "submits a second each account may make, in bursts of as many (0 = no limit)"},
        {"client-quota", QR_OPT_INT, &cquota, "1000000",
         "jobs each account may have queued or running at once (0 = no limit)"},
        {"keep-final-jobs", QR_OPT_INT, &keepfinal, "100000",
         "finished jobs kept in memory; requests about older ones read PostgreSQL"},
        {"store-dir", QR_OPT_STR, &store, "quarry-store",
         "folder of the content-addressed artifact store (uploaded models)"},
        {"max-artifact-mb", QR_OPT_INT, &maxart, "4096", "largest artifact (model file) accepted by upload"},
        {"model-cache-mb", QR_OPT_INT, &modelcache, "2048",
         "ai.infer models kept loaded in memory to validate submits and check results"},
        {"affinity-wait-ms", QR_OPT_INT, &affwait, "250",
         "how long an ai.infer job waits for a busy worker that holds its model before "
         "another worker fetches it"},
        {"no-affinity", QR_OPT_BOOL, &no_aff, "false",
         "match ai.infer jobs without preferring workers that hold the model (benchmarks)"},
        {"log-level", QR_OPT_STR, &level, "info", "debug, info, warn or error"},
    };
    const size_t nopts = sizeof opts / sizeof opts[0];
    char err[512];
    int argi;
    bool help;
    if (qr_config_parse(opts, nopts, "QUARRY_BROKER", argc, argv, &argi, &help, err, sizeof err) <
        0) {
        fprintf(stderr, "quarry-broker: %s\n", err);
        return 2;
    }
    if (help) {
        printf("usage: quarry-broker [settings] [migrate]\n\n"
               "Runs the Quarry broker: accepts jobs from clients, keeps them in PostgreSQL,\n"
               "matches them to workers, verifies results and settles payment.\n"
               "'migrate' applies the database migrations and exits.\n\n");
        qr_config_usage(stdout, opts, nopts, "QUARRY_BROKER");
        qr_config_free(opts, nopts);
        return 0;
    }
    int lv = qr_log_level_parse(level);
    if (lv < 0) {
        fprintf(stderr, "quarry-broker: --log-level must be debug, info, warn or error\n");
        qr_config_free(opts, nopts);
        return 2;
    }
    qr_log_init("broker", (qr_log_level_t)lv);
    int rc = 0;
    if (argi < argc && strcmp(argv[argi], "migrate") == 0) {
        qr_db_t *d = qr_db_new(db, err, sizeof err);
        int applied = 0;
        if (!d || qr_db_migrate(d, &applied, err, sizeof err) != QR_OK) {
            fprintf(stderr, "quarry-broker: migrate: %s\n", err);
            rc = 1;
        } else
            printf("applied %d migration(s)\n", applied);
        qr_db_destroy(&d);
        qr_config_free(opts, nopts);
        return rc;
    }
    if (argi < argc) {
        fprintf(stderr, "quarry-broker: unknown command '%s' (see --help)\n", argv[argi]);
        qr_config_free(opts, nopts);
        return 2;
    }
    qr_broker_cfg_t cfg = {
        .client_endpoint = client_ep, .worker_endpoint = worker_ep, .db = db,
        .metrics_addr = metrics, .insecure = insecure, .curve_key = curve_key,
        .admin_keys = admin_keys, .open_registration = open_reg, .stop = &s_stop,
        .heartbeat_ms = hb, .liveness = liveness, .max_attempts = attempts,
        .max_input_bytes = maxin, .fee_bps = fee, .prefetch = prefetch,
        .prefetch_units = pfunits, .batch_max = batch, .verify_rounds = rounds,
        .blob_cache_mb = cache, .default_unit_cap = unitcap, .min_reputation = minrep,
        .keep_final = keepfinal, .client_rate = crate, .client_quota = cquota,
        .store_dir = store, .max_artifact_mb = maxart, .model_cache_mb = modelcache,
        .no_affinity = no_aff, .affinity_wait_ms = affwait,
    };
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    qr_broker_t *b = qr_broker_new(&cfg, err, sizeof err);
    if (!b) {
        qr_log(QR_LOG_ERROR, "cannot start", "reason=\"%s\"", err);
        fprintf(stderr, "quarry-broker: %s\n", err);
        qr_config_free(opts, nopts);
        return 1;
    }
    rc = qr_broker_run(b, &s_stop);
    qr_log(QR_LOG_INFO, "broker stopping", NULL);
    qr_broker_destroy(&b);
    qr_config_free(opts, nopts);
    return rc;
}
