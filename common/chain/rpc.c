/* JSON-RPC over libcurl; see rpc.h. */
#include "rpc.h"
#include "abi.h"
#include "err.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A reply bigger than this is refused rather than buffered: no call Quarry
 * makes returns more than a few kilobytes, so a huge body is a wrong URL or a
 * hostile node. */
#define QR_RPC_MAX_REPLY (16u << 20)

struct qr_rpc {
    CURL *curl;
    struct curl_slist *headers;
    char *url;
    int timeout_ms;
    unsigned long long next_id;
    qr_rpc_error_t last;
    char curl_err[CURL_ERROR_SIZE];
};

typedef struct {
    char *p;
    size_t len, cap;
    int too_big;
} s_body_t;

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_init_rc = CURLE_OK;

/* libcurl wants one global init before any handle exists; once per process,
 * whichever thread makes the first client. */
static void s_curl_global(void)
{
    s_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int s_fail(qr_rpc_t *self, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(qr_rpc_t *self, int code, const char *fmt, ...)
{
    self->last.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->last.message, sizeof self->last.message, fmt, ap);
    va_end(ap);
    return code;
}

static size_t s_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_body_t *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > QR_RPC_MAX_REPLY) {
        b->too_big = 1;
        return 0; /* makes curl fail the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np)
            return 0;
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, ptr, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

/* curl_slist_append that keeps the list when it fails */
static struct curl_slist *s_append(struct curl_slist *list, const char *h)
{
    struct curl_slist *n = curl_slist_append(list, h);
    if (!n)
        curl_slist_free_all(list);
    return n;
}

qr_rpc_t *qr_rpc_new(const char *url, int timeout_ms, char *err, size_t errlen)
{
    pthread_once(&s_curl_once, s_curl_global);
    if (s_curl_init_rc != CURLE_OK) {
        snprintf(err, errlen, "libcurl init failed: %s", curl_easy_strerror(s_curl_init_rc));
        return NULL;
    }
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        snprintf(err, errlen, "node URL must start with http:// or https://");
        return NULL;
    }
    qr_rpc_t *self = calloc(1, sizeof *self);
    if (!self || !(self->url = strdup(url)) || !(self->curl = curl_easy_init()) ||
        !(self->headers = curl_slist_append(NULL, "Content-Type: application/json")) ||
        /* no "Expect: 100-continue" round trip before large bodies (a
         * contract deployment): JSON-RPC servers answer the POST directly */
        !(self->headers = s_append(self->headers, "Expect:"))) {
        snprintf(err, errlen, "out of memory");
        qr_rpc_destroy(&self);
        return NULL;
    }
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    self->next_id = 1;
    CURL *c = self->curl;
    curl_easy_setopt(c, CURLOPT_URL, self->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, self->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, self->curl_err);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)self->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)self->timeout_ms);
    /* no SIGALRM-based resolver timeouts: the caller may be threaded */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* a redirect would resend the signed payload somewhere unasked */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    return self;
}

void qr_rpc_destroy(qr_rpc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qr_rpc_t *self = *self_p;
    if (self->curl)
        curl_easy_cleanup(self->curl);
    curl_slist_free_all(self->headers);
    free(self->url);
    free(self);
    *self_p = NULL;
}

const qr_rpc_error_t *qr_rpc_last_error(const qr_rpc_t *self)
{
    return &self->last;
}

/* Fills last from a JSON-RPC error object. */
static int s_remote_error(qr_rpc_t *self, const char *method, json_t *error)
{
    json_t *code = json_object_get(error, "code");
    json_t *msg = json_object_get(error, "message");
    json_t *data = json_object_get(error, "data");
    self->last.has_rpc_code = json_is_integer(code);
    self->last.rpc_code = json_is_integer(code) ? (long long)json_integer_value(code) : 0;
    if (json_is_string(data))
        snprintf(self->last.data, sizeof self->last.data, "%s", json_string_value(data));
    char reason[256] = "";
    /* revert data is hex of the ABI-encoded error; say what it means */
    uint8_t *bytes = NULL;
    size_t n = 0;
    if (json_is_string(data) && !qr_hex_decode_alloc(json_string_value(data), &bytes, &n)) {
        qr_abi_revert_reason(bytes, n, reason, sizeof reason);
        free(bytes);
    }
    return s_fail(self, QR_EINVAL, "%s: node error %lld: %s%s%s", method, self->last.rpc_code,
                  json_is_string(msg) ? json_string_value(msg) : "(no message)",
                  reason[0] ? ": " : "", reason);
}

int qr_rpc_request(qr_rpc_t *self, const char *method, json_t *params, json_t **result)
{
    memset(&self->last, 0, sizeof self->last);
    *result = NULL;
    unsigned long long id = self->next_id++;
    json_t *req = json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id", (json_int_t)id,
                            "method", method, "params", params ? params : json_array());
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!text)
        return s_fail(self, QR_ENOMEM, "%s: out of memory", method);

    s_body_t body = {0};
    self->curl_err[0] = '\0';
    curl_easy_setopt(self->curl, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(self->curl, CURLOPT_WRITEDATA, &body);
    CURLcode cc = curl_easy_perform(self->curl);
    free(text);
    long status = 0;
    curl_easy_getinfo(self->curl, CURLINFO_RESPONSE_CODE, &status);
    self->last.http_status = status;
    int rc = QR_OK;
    json_t *reply = NULL;
    if (cc != CURLE_OK) {
        const char *why = self->curl_err[0] ? self->curl_err : curl_easy_strerror(cc);
        if (body.too_big)
            rc = s_fail(self, QR_EPROTO, "%s: reply over %u bytes", method, QR_RPC_MAX_REPLY);
        else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
            rc = s_fail(self, QR_EUNAVAIL, "%s: cannot reach the node: %s", method, why);
        else if (cc == CURLE_OPERATION_TIMEDOUT)
            rc = s_fail(self, QR_ETIMEOUT, "%s: no reply within %d ms: %s", method,
                        self->timeout_ms, why);
        else
            rc = s_fail(self, QR_EIO, "%s: transport error: %s", method, why);
        goto done;
    }
    json_error_t jerr;
    /* anvil puts raw revert bytes into error messages, \u0000 included,
     * which jansson refuses unless told; string values are then cut at the
     * first NUL, which only shortens a message */
    reply = body.p ? json_loadb(body.p, body.len, JSON_ALLOW_NUL, &jerr) : NULL;
    json_t *error = json_object_get(reply, "error");
    if (json_is_object(error)) {
        /* some providers pair an HTTP error status with a proper JSON-RPC
         * error; the object says more than the status */
        rc = s_remote_error(self, method, error);
        goto done;
    }
    if (status == 429) {
        rc = s_fail(self, QR_ELIMIT, "%s: rate limited by the node (HTTP 429)", method);
        goto done;
    }
    if (status < 200 || status > 299) {
        rc = s_fail(self, QR_EPROTO, "%s: HTTP %ld from the node: %.120s", method, status,
                    body.p ? body.p : "");
        goto done;
    }
    if (!json_is_object(reply)) {
        rc = s_fail(self, QR_EPROTO, "%s: reply is not a JSON object: %.120s", method,
                    body.p ? body.p : "(empty)");
        goto done;
    }
    json_t *rid = json_object_get(reply, "id");
    if (!json_is_integer(rid) || (unsigned long long)json_integer_value(rid) != id) {
        rc = s_fail(self, QR_EPROTO, "%s: reply id does not match request %llu", method, id);
        goto done;
    }
    json_t *res = json_object_get(reply, "result");
    if (!res) {
        rc = s_fail(self, QR_EPROTO, "%s: reply has neither result nor error", method);
        goto done;
    }
    *result = json_incref(res);
done:
    json_decref(reply);
    free(body.p);
    return rc;
}

/* A call whose result must be a string. */
static int s_string_call(qr_rpc_t *self, const char *method, json_t *params, json_t **res,
                         const char **s)
{
    int rc = qr_rpc_request(self, method, params, res);
    if (rc)
        return rc;
    if (!json_is_string(*res)) {
        json_decref(*res);
        *res = NULL;
        return s_fail(self, QR_EPROTO, "%s: result is not a string", method);
    }
    *s = json_string_value(*res);
    return QR_OK;
}

static int s_u64_call(qr_rpc_t *self, const char *method, json_t *params, uint64_t *out)
{
    json_t *res;
    const char *s = NULL;
    int rc = s_string_call(self, method, params, &res, &s);
    if (rc)
        return rc;
    if (qr_quantity_to_u64(s, out) < 0)
        rc = s_fail(self, QR_EPROTO, "%s: result %.80s is not a 64-bit quantity", method, s);
    json_decref(res);
    return rc;
}

static int s_u256_call(qr_rpc_t *self, const char *method, json_t *params, qr_u256_t *out)
{
    json_t *res;
    const char *s = NULL;
    int rc = s_string_call(self, method, params, &res, &s);
    if (rc)
        return rc;
    if (qr_quantity_to_u256(s, out) < 0)
        rc = s_fail(self, QR_EPROTO, "%s: result %.80s is not a quantity", method, s);
    json_decref(res);
    return rc;
}

static json_t *s_hex_json(const void *p, size_t n)
{
    char *text = malloc(2 * n + 3);
    if (!text)
        return NULL;
    qr_hex_encode(p, n, text);
    json_t *j = json_string(text);
    free(text);
    return j;
}

int qr_rpc_chain_id(qr_rpc_t *self, uint64_t *out)
{
    return s_u64_call(self, "eth_chainId", NULL, out);
}

int qr_rpc_block_number(qr_rpc_t *self, uint64_t *out)
{
    return s_u64_call(self, "eth_blockNumber", NULL, out);
}

int qr_rpc_nonce(qr_rpc_t *self, const uint8_t addr[QR_ADDR_LEN], uint64_t *out)
{
    json_t *params = json_pack("[o, s]", s_hex_json(addr, QR_ADDR_LEN), "pending");
    if (!params)
        return s_fail(self, QR_ENOMEM, "eth_getTransactionCount: out of memory");
    return s_u64_call(self, "eth_getTransactionCount", params, out);
}

int qr_rpc_gas_price(qr_rpc_t *self, qr_u256_t *out)
{
    return s_u256_call(self, "eth_gasPrice", NULL, out);
}

int qr_rpc_max_priority_fee(qr_rpc_t *self, qr_u256_t *out)
{
    return s_u256_call(self, "eth_maxPriorityFeePerGas", NULL, out);
}

int qr_rpc_base_fee(qr_rpc_t *self, qr_u256_t *out)
{
    const char *method = "eth_feeHistory";
    json_t *res;
    /* one block back from latest: baseFeePerGas holds that block's fee and,
     * last, the fee of the block after it, the one a new transaction joins */
    json_t *params = json_pack("[s, s, []]", "0x1", "latest");
    if (!params)
        return s_fail(self, QR_ENOMEM, "%s: out of memory", method);
    int rc = qr_rpc_request(self, method, params, &res);
    if (rc)
        return rc;
    json_t *fees = json_object_get(res, "baseFeePerGas");
    size_t n = json_array_size(fees);
    json_t *last = n ? json_array_get(fees, n - 1) : NULL;
    if (!json_is_string(last) || qr_quantity_to_u256(json_string_value(last), out) < 0)
        rc = s_fail(self, QR_EPROTO, "%s: no base fee in the reply", method);
    json_decref(res);
    return rc;
}

int qr_rpc_fees(qr_rpc_t *self, qr_u256_t *max_priority_fee, qr_u256_t *max_fee)
{
    qr_u256_t base, tip;
    int rc = qr_rpc_base_fee(self, &base);
    if (rc)
        return rc;
    rc = qr_rpc_max_priority_fee(self, &tip);
    if (rc == QR_EINVAL) {
        /* no eth_maxPriorityFeePerGas here: whatever the legacy price
         * offers above the base fee is the tip */
        qr_u256_t price;
        if ((rc = qr_rpc_gas_price(self, &price)))
            return rc;
        if (qr_u256_sub(&price, &base, &tip) < 0)
            tip = qr_u256_from_u64(0);
    } else if (rc) {
        return rc;
    }
    qr_u256_t cap;
    if (qr_u256_mul_small(&base, 2, &cap) < 0 || qr_u256_add(&cap, &tip, &cap) < 0)
        return s_fail(self, QR_EPROTO, "eth_feeHistory: base fee overflows");
    *max_priority_fee = tip;
    *max_fee = cap;
    return QR_OK;
}

static json_t *s_call_json(const qr_call_t *call)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    if (call->has_from)
        bad |= json_object_set_new(o, "from", s_hex_json(call->from, QR_ADDR_LEN));
    if (call->has_to)
        bad |= json_object_set_new(o, "to", s_hex_json(call->to, QR_ADDR_LEN));
    if (call->data_len)
        bad |= json_object_set_new(o, "input", s_hex_json(call->data, call->data_len));
    if (!qr_u256_is_zero(&call->value)) {
        char q[67];
        qr_quantity_from_u256(&call->value, q);
        bad |= json_object_set_new(o, "value", json_string(q));
    }
    if (call->gas) {
        char q[19];
        qr_quantity_from_u64(call->gas, q);
        bad |= json_object_set_new(o, "gas", json_string(q));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int qr_rpc_estimate_gas(qr_rpc_t *self, const qr_call_t *call, uint64_t *gas)
{
    json_t *params = json_pack("[o]", s_call_json(call));
    if (!params)
        return s_fail(self, QR_ENOMEM, "eth_estimateGas: out of memory");
    return s_u64_call(self, "eth_estimateGas", params, gas);
}

int qr_rpc_call(qr_rpc_t *self, const qr_call_t *call, const char *block, uint8_t **out,
                size_t *len)
{
    const char *method = "eth_call";
    *out = NULL;
    *len = 0;
    json_t *params = json_pack("[o, s]", s_call_json(call), block ? block : "latest");
    if (!params)
        return s_fail(self, QR_ENOMEM, "%s: out of memory", method);
    json_t *res;
    const char *s = NULL;
    int rc = s_string_call(self, method, params, &res, &s);
    if (rc)
        return rc;
    if (qr_hex_decode_alloc(s, out, len) < 0)
        rc = s_fail(self, QR_EPROTO, "%s: result is not hex data", method);
    json_decref(res);
    return rc;
}

int qr_rpc_send_raw(qr_rpc_t *self, const uint8_t *raw, size_t len, uint8_t hash[32])
{
    const char *method = "eth_sendRawTransaction";
    json_t *params = json_pack("[o]", s_hex_json(raw, len));
    if (!params)
        return s_fail(self, QR_ENOMEM, "%s: out of memory", method);
    json_t *res;
    const char *s = NULL;
    int rc = s_string_call(self, method, params, &res, &s);
    if (rc)
        return rc;
    if (qr_hex_decode_exact(s, hash, 32) < 0)
        rc = s_fail(self, QR_EPROTO, "%s: result is not a 32-byte hash", method);
    json_decref(res);
    return rc;
}

void qr_receipt_free(qr_receipt_t *r)
{
    for (size_t i = 0; i < r->nlogs; i++)
        free(r->logs[i].data);
    free(r->logs);
    memset(r, 0, sizeof *r);
}

static int s_get_u64(json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? qr_quantity_to_u64(json_string_value(v), out) : -1;
}

static int s_parse_log(json_t *jl, qr_log_t *log)
{
    json_t *addr = json_object_get(jl, "address");
    json_t *topics = json_object_get(jl, "topics");
    json_t *data = json_object_get(jl, "data");
    if (!json_is_string(addr) ||
        qr_hex_decode_exact(json_string_value(addr), log->address, QR_ADDR_LEN) < 0 ||
        !json_is_array(topics) || json_array_size(topics) > 4 || !json_is_string(data))
        return -1;
    log->ntopics = json_array_size(topics);
    for (size_t i = 0; i < log->ntopics; i++) {
        json_t *t = json_array_get(topics, i);
        if (!json_is_string(t) || qr_hex_decode_exact(json_string_value(t), log->topics[i], 32) < 0)
            return -1;
    }
    return qr_hex_decode_alloc(json_string_value(data), &log->data, &log->data_len);
}

int qr_rpc_receipt(qr_rpc_t *self, const uint8_t hash[32], qr_receipt_t *out)
{
    const char *method = "eth_getTransactionReceipt";
    memset(out, 0, sizeof *out);
    json_t *params = json_pack("[o]", s_hex_json(hash, 32));
    if (!params)
        return s_fail(self, QR_ENOMEM, "%s: out of memory", method);
    json_t *res;
    int rc = qr_rpc_request(self, method, params, &res);
    if (rc)
        return rc;
    if (json_is_null(res)) {
        json_decref(res);
        return s_fail(self, QR_ENOTREADY, "%s: not mined yet", method);
    }
    json_t *th = json_object_get(res, "transactionHash");
    json_t *ca = json_object_get(res, "contractAddress");
    json_t *egp = json_object_get(res, "effectiveGasPrice");
    json_t *logs = json_object_get(res, "logs");
    if (!json_is_object(res) || !json_is_string(th) ||
        qr_hex_decode_exact(json_string_value(th), out->tx_hash, 32) < 0 ||
        s_get_u64(res, "blockNumber", &out->block_number) < 0 ||
        s_get_u64(res, "status", &out->status) < 0 ||
        s_get_u64(res, "gasUsed", &out->gas_used) < 0 || !json_is_array(logs)) {
        rc = s_fail(self, QR_EPROTO, "%s: malformed receipt", method);
        goto done;
    }
    if (json_is_string(egp))
        (void)qr_quantity_to_u256(json_string_value(egp), &out->effective_gas_price);
    if (json_is_string(ca)) {
        if (qr_hex_decode_exact(json_string_value(ca), out->contract_address, QR_ADDR_LEN) < 0) {
            rc = s_fail(self, QR_EPROTO, "%s: malformed contractAddress", method);
            goto done;
        }
        out->has_contract = 1;
    }
    size_t n = json_array_size(logs);
    if (n && !(out->logs = calloc(n, sizeof *out->logs))) {
        rc = s_fail(self, QR_ENOMEM, "%s: out of memory", method);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        out->nlogs = i + 1; /* so a failure frees what was parsed */
        if (s_parse_log(json_array_get(logs, i), &out->logs[i]) < 0) {
            rc = s_fail(self, QR_EPROTO, "%s: malformed log %zu", method, i);
            goto done;
        }
    }
done:
    json_decref(res);
    if (rc)
        qr_receipt_free(out);
    return rc;
}

int qr_rpc_wait_receipt(qr_rpc_t *self, const uint8_t hash[32], int timeout_ms, int poll_ms,
                        qr_receipt_t *out)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (poll_ms <= 0)
        poll_ms = 250;
    for (;;) {
        int rc = qr_rpc_receipt(self, hash, out);
        if (rc != QR_ENOTREADY)
            return rc;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long spent = (now.tv_sec - t0.tv_sec) * 1000LL + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent >= timeout_ms)
            return s_fail(self, QR_ETIMEOUT, "eth_getTransactionReceipt: not mined within %d ms",
                          timeout_ms);
        struct timespec ts = {poll_ms / 1000, (long)(poll_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}
