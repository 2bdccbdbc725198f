/* quarry-worker: sells this box's compute to a Quarry broker.
 *
 * Reads settings (flags, QUARRY_WORKER_* environment, config file), turns
 * SIGTERM and SIGINT into bytes on a pipe that the worker loop polls, and runs
 * the loop until it has drained. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <zmq.h>

#include "config.h"
#include "err.h"
#include "util.h"
#include "worker.h"

#define S_ENV_PREFIX "QUARRY_WORKER"

/* Write end of the signal pipe.  The one mutable global here, because a
 * signal handler has no other way to reach state; written once before the
 * handlers are installed.  (A signalfd would avoid it, but OpenBLAS starts
 * its threads before main() runs, with signals unblocked, so a process
 * signal would kill us through one of them instead of reaching the fd.) */
static int s_sig_pipe = -1;

static void s_on_signal(int sig)
{
    (void)sig;
    int e = errno;
    char c = 's';
    ssize_t w = write(s_sig_pipe, &c, 1); /* async-signal-safe; full pipe: already stopping */
    (void)w;
    errno = e;
}

static void s_usage(const qr_opt_t *opts, size_t n)
{
    printf("Usage: quarry-worker [flags]\n\n"
           "Connects to a Quarry broker, registers this machine's devices and runs the\n"
           "jobs the broker assigns (ai.gemm on the CPU).  SIGTERM or SIGINT drains it:\n"
           "running jobs may finish for --drain-ms, then it disconnects and exits 0;\n"
           "a second signal cuts the drain short.\n\n");
    qr_config_usage(stdout, opts, n, S_ENV_PREFIX);
}

int main(int argc, char **argv)
{
    char *broker = NULL, *name = NULL, *operator_name = NULL, *log_level = NULL, *gpu = NULL,
         *metrics_addr = NULL, *server_key = NULL, *key_file = NULL, *cache_dir = NULL;
    int64_t ask_price = 0, slots = 0, drain_ms = 0, input_cache_mb = 0, cache_mb = 0,
            batch_rows = 0, batch_delay = 0;
#ifdef QR_TEST_FAULTS
    int64_t corrupt_every = 0, delay_ms = 0, tamper_layer = -1;
    bool forget_inputs = false;
#endif
    const qr_opt_t opts[] = {
        {"broker", QR_OPT_STR, &broker, "tcp://127.0.0.1:5556", "broker's worker endpoint"},
        {"name", QR_OPT_STR, &name, NULL, "worker name, unique per operator (default hostname-pid)"},
        {"operator", QR_OPT_STR, &operator_name, "operator", "operator account that is paid"},
        {"ask-price", QR_OPT_INT, &ask_price, "10", "asking price, base units per work unit"},
        {"slots", QR_OPT_INT, &slots, "0", "jobs run at once (0 = one per CPU core)"},
        {"drain-ms", QR_OPT_INT, &drain_ms, "30000",
         "on SIGTERM, how long running jobs may finish before they are handed back"},
        {"metrics-addr", QR_OPT_STR, &metrics_addr, "",
         "HOST:PORT serving Prometheus /metrics and /healthz (empty = off)"},
        {"input-cache-mb", QR_OPT_INT, &input_cache_mb, "256",
         "inputs kept so the broker need not send them again (0 = none)"},
        {"cache-dir", QR_OPT_STR, &cache_dir, "quarry-cache",
         "folder where fetched models are kept between jobs and restarts"},
        {"cache-mb", QR_OPT_INT, &cache_mb, "8192",
         "size cap of the model cache; least recently used models are evicted"},
        {"batch-rows", QR_OPT_INT, &batch_rows, "256",
         "ai.infer rows merged into one forward pass, at most (1 = no batching)"},
        {"batch-delay-ms", QR_OPT_INT, &batch_delay, "0",
         "how long a lone ai.infer job waits for others on its model before it runs"},
        {"server-key", QR_OPT_STR, &server_key, "",
         "broker public key, Z85 text or its .pub file (empty = plain text, --insecure broker)"},
        {"key", QR_OPT_STR, &key_file, "",
         "this worker's secret key file PREFIX.key, mode 0600 (empty with --server-key = "
         "throwaway key)"},
        {"log-level", QR_OPT_STR, &log_level, "info", "debug, info, warn or error"},
        {"gpu", QR_OPT_STR, &gpu, "auto", "auto: report CUDA GPUs if a driver is present; off"},
#ifdef QR_TEST_FAULTS
        {"fault-corrupt-every", QR_OPT_INT, &corrupt_every, "0",
         "TEST BUILD: corrupt one element of every Nth result (0 = never)"},
        {"fault-delay-ms", QR_OPT_INT, &delay_ms, "0",
         "TEST BUILD: sleep this long inside every job, honouring cancel"},
        {"fault-tamper-layer", QR_OPT_INT, &tamper_layer, "-1",
         "TEST BUILD: alter one value of this ai.infer layer in every result (-1 = never)"},
        {"fault-forget-inputs", QR_OPT_BOOL, &forget_inputs, "false",
         "TEST BUILD: report an input cache but keep nothing in it"},
#endif
    };
    const size_t nopts = sizeof opts / sizeof opts[0];
    int rc = 1, argi = 0, sig[2] = {-1, -1};
    bool help = false;
    void *ctx = NULL;
    qr_worker_t *worker = NULL;
    char err[512];

    if (qr_config_parse(opts, nopts, S_ENV_PREFIX, argc, argv, &argi, &help, err, sizeof err) <
        0) {
        fprintf(stderr, "quarry-worker: %s\n", err);
        rc = 2;
        goto done;
    }
    if (help) {
        s_usage(opts, nopts);
        rc = 0;
        goto done;
    }
    if (argi < argc) {
        fprintf(stderr, "quarry-worker: unexpected argument '%s' (see --help)\n", argv[argi]);
        rc = 2;
        goto done;
    }
    int level = qr_log_level_parse(log_level);
    bool gpu_on = strcmp(gpu, "auto") == 0;
    if (level < 0 || (!gpu_on && strcmp(gpu, "off") != 0) || ask_price < 0 || slots < 0 ||
        slots > 4096 || drain_ms < 0 || input_cache_mb < 0 ||
        input_cache_mb > (1 << 20) || cache_mb < 1 || batch_rows < 1 || batch_rows > 65536 ||
        batch_delay < 0 || batch_delay > 10000) {
        fprintf(stderr, "quarry-worker: bad value for --log-level, --gpu, --ask-price, --slots, "
                        "--drain-ms, --input-cache-mb, --cache-mb (>= 1), --batch-rows "
                        "(1..65536) or --batch-delay-ms (0..10000) (see --help)\n");
        rc = 2;
        goto done;
    }
    qr_log_init("worker", (qr_log_level_t)level);

    if (pipe2(sig, O_CLOEXEC | O_NONBLOCK) < 0) {
        perror("quarry-worker: pipe");
        goto done;
    }
    s_sig_pipe = sig[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0) {
        perror("quarry-worker: sigaction");
        goto done;
    }

    qr_worker_cfg_t cfg;
    qr_worker_cfg_defaults(&cfg);
    cfg.broker = broker;
    cfg.name = name;
    cfg.operator_name = operator_name;
    cfg.ask_price = (uint64_t)ask_price;
    cfg.slots = (int)slots;
    cfg.drain_ms = drain_ms;
    cfg.input_cache_mb = input_cache_mb;
    cfg.cache_dir = cache_dir;
    cfg.cache_mb = cache_mb;
    cfg.batch_rows = batch_rows;
    cfg.batch_delay_ms = batch_delay;
    cfg.metrics_addr = metrics_addr;
    cfg.gpu = gpu_on;
    cfg.server_key = server_key;
    cfg.key_file = key_file;
    if (qr_worker_check_keys(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "quarry-worker: %s\n", err);
        rc = 2;
        goto done;
    }
#ifdef QR_TEST_FAULTS
    cfg.fault_corrupt_every = corrupt_every;
    cfg.fault_delay_ms = delay_ms;
    cfg.fault_forget_inputs = forget_inputs;
    cfg.fault_tamper_layer = tamper_layer;
    if (corrupt_every || delay_ms || forget_inputs || tamper_layer >= 0)
        qr_log(QR_LOG_WARN, "fault injection on",
               "corrupt_every=%lld delay_ms=%lld forget_inputs=%d tamper_layer=%lld",
               (long long)corrupt_every, (long long)delay_ms, forget_inputs,
               (long long)tamper_layer);
#endif
    ctx = zmq_ctx_new();
    if (!ctx)
        goto done;
    worker = qr_worker_new(ctx, &cfg);
    if (!worker)
        goto done;
    rc = qr_worker_run(worker, sig[0]) == QR_OK ? 0 : 1;

done:
    qr_worker_destroy(&worker);
    if (ctx)
        zmq_ctx_term(ctx);
    /* the pipe stays open: a late signal must find a valid descriptor */
    qr_config_free(opts, nopts);
    return rc;
}
