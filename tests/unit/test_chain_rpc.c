/* common/chain/rpc without a chain: a canned HTTP server in a thread gives
 * the client good replies, JSON-RPC errors, HTTP errors, garbage and
 * silence; a port with nothing listening gives connection refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "ethutil.h"
#include "rpc.h"

/* What the server answers for a request: an HTTP status and a body in which
 * "$ID" stands for the request's id; NULL body: say nothing, hold the
 * connection until the client gives up. */
typedef const char *(*s_reply_fn)(const char *method, int *status);

typedef struct {
    int lfd;
    int port;
    volatile int stop;
    s_reply_fn reply;
    char last_request[4096];
    pthread_t thread;
} s_server_t;

static s_server_t s_srv;

static void s_serve_one(int fd)
{
    char buf[8192];
    size_t len = 0;
    char *body = NULL;
    size_t want = 0;
    /* headers, then Content-Length bytes of body */
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0)
            return;
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            return;
        len += (size_t)n;
        buf[len] = '\0';
        char *eoh = strstr(buf, "\r\n\r\n");
        if (!eoh)
            continue;
        char *cl = strstr(buf, "Content-Length:");
        want = cl ? strtoul(cl + 15, NULL, 10) : 0;
        body = eoh + 4;
        if ((size_t)(buf + len - body) >= want)
            break;
    }
    body[want] = '\0';
    snprintf(s_srv.last_request, sizeof s_srv.last_request, "%s", body);
    json_t *req = json_loads(body, 0, NULL);
    const char *method = json_string_value(json_object_get(req, "method"));
    long long id = json_integer_value(json_object_get(req, "id"));
    int status = 200;
    const char *tmpl = s_srv.reply(method ? method : "", &status);
    json_decref(req);
    if (!tmpl) {
        /* hang until the client closes or the test ends */
        while (!s_srv.stop) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 50) > 0 && read(fd, buf, sizeof buf) <= 0)
                break;
        }
        return;
    }
    char out[4096], idtext[32];
    snprintf(idtext, sizeof idtext, "%lld", id);
    size_t o = 0;
    for (const char *t = tmpl; *t && o < sizeof out - 32;) {
        if (!strncmp(t, "$ID", 3)) {
            o += (size_t)snprintf(out + o, sizeof out - o, "%s", idtext);
            t += 3;
        } else {
            out[o++] = *t++;
        }
    }
    out[o] = '\0';
    char head[256];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 %d Canned\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, o);
    if (write(fd, head, (size_t)h) < 0 || write(fd, out, o) < 0)
        return;
}

static void *s_server_main(void *arg)
{
    (void)arg;
    while (!s_srv.stop) {
        struct pollfd p = {s_srv.lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(s_srv.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        s_serve_one(fd);
        close(fd);
    }
    return NULL;
}

/* A TCP socket bound to an ephemeral port on 127.0.0.1; listening or not. */
static int s_bind_any(int *port, int do_listen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    if (do_listen)
        assert_int_equal(listen(fd, 8), 0);
    return fd;
}

static int s_setup(void **state)
{
    (void)state;
    memset(&s_srv, 0, sizeof s_srv);
    s_srv.lfd = s_bind_any(&s_srv.port, 1);
    return pthread_create(&s_srv.thread, NULL, s_server_main, NULL);
}

static int s_teardown(void **state)
{
    (void)state;
    s_srv.stop = 1;
    pthread_join(s_srv.thread, NULL);
    close(s_srv.lfd);
    return 0;
}

static qr_rpc_t *s_client(int timeout_ms)
{
    char url[64], err[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v3/secret-api-key", s_srv.port);
    qr_rpc_t *c = qr_rpc_new(url, timeout_ms, err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    return c;
}

/* The message must mention want and never the URL's secret path. */
static void s_msg_has(qr_rpc_t *c, const char *want)
{
    const char *m = qr_rpc_last_error(c)->message;
    if (!strstr(m, want))
        fail_msg("message '%s' lacks '%s'", m, want);
    assert_null(strstr(m, "secret-api-key"));
}

static const char *s_reply_ok(const char *method, int *status)
{
    (void)status;
    if (!strcmp(method, "eth_chainId"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":\"0x7a69\"}";
    if (!strcmp(method, "eth_blockNumber"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":\"0x0\"}";
    if (!strcmp(method, "eth_getTransactionCount"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":\"0x2a\"}";
    if (!strcmp(method, "eth_feeHistory"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"oldestBlock\":\"0x5\","
               "\"baseFeePerGas\":[\"0x3b9aca00\",\"0x342770c0\"],\"gasUsedRatio\":[0.1]}}";
    if (!strcmp(method, "eth_maxPriorityFeePerGas"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":\"0x59682f00\"}";
    if (!strcmp(method, "eth_call"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":"
               "\"0x0000000000000000000000000000000000000000000000000000000000000001\"}";
    if (!strcmp(method, "eth_estimateGas"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":\"0x5208\"}";
    if (!strcmp(method, "eth_sendRawTransaction"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":"
               "\"0x1111111111111111111111111111111111111111111111111111111111111111\"}";
    if (!strcmp(method, "eth_getTransactionReceipt"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{"
               "\"transactionHash\":"
               "\"0x1111111111111111111111111111111111111111111111111111111111111111\","
               "\"blockNumber\":\"0x3\",\"status\":\"0x1\",\"gasUsed\":\"0xb411\","
               "\"effectiveGasPrice\":\"0x77359400\",\"contractAddress\":null,\"logs\":[{"
               "\"address\":\"0x5fbdb2315678afecb367f032d93f642f64180aa3\",\"topics\":["
               "\"0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef\","
               "\"0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266\"],"
               "\"data\":\"0x00000000000000000000000000000000000000000000000000000000000003e8\"}]}"
               "}";
    *status = 404;
    return "not found";
}

static void test_happy_paths(void **state)
{
    (void)state;
    s_srv.reply = s_reply_ok;
    qr_rpc_t *c = s_client(2000);
    uint64_t v;
    assert_int_equal(qr_rpc_chain_id(c, &v), QR_OK);
    assert_int_equal(v, 31337);
    assert_int_equal(qr_rpc_last_error(c)->code, QR_OK);
    assert_int_equal(qr_rpc_last_error(c)->http_status, 200);
    assert_non_null(strstr(s_srv.last_request, "\"method\":\"eth_chainId\""));
    assert_non_null(strstr(s_srv.last_request, "\"jsonrpc\":\"2.0\""));
    assert_int_equal(qr_rpc_block_number(c, &v), QR_OK);
    assert_int_equal(v, 0);

    uint8_t addr[20];
    assert_int_equal(qr_address_from_text("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", addr), 0);
    assert_int_equal(qr_rpc_nonce(c, addr, &v), QR_OK);
    assert_int_equal(v, 42);
    assert_non_null(
        strstr(s_srv.last_request, "[\"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266\",\"pending\"]"));

    /* next base fee 0.875 gwei, tip 1.5 gwei: cap = 2 * 0.875 + 1.5 */
    qr_u256_t tip, cap;
    assert_int_equal(qr_rpc_fees(c, &tip, &cap), QR_OK);
    assert_int_equal(qr_u256_to_u64(&tip, &v), 0);
    assert_int_equal(v, 1500000000);
    assert_int_equal(qr_u256_to_u64(&cap, &v), 0);
    assert_int_equal(v, 3250000000);

    qr_call_t call = {.has_to = 1, .data = (const uint8_t *)"\x12\x34", .data_len = 2};
    call.to[19] = 0x01;
    call.value = qr_u256_from_u64(255);
    uint8_t *out;
    size_t len;
    assert_int_equal(qr_rpc_call(c, &call, NULL, &out, &len), QR_OK);
    assert_int_equal(len, 32);
    assert_int_equal(out[31], 1);
    free(out);
    assert_non_null(strstr(s_srv.last_request, "\"input\":\"0x1234\""));
    assert_non_null(strstr(s_srv.last_request, "\"value\":\"0xff\""));
    assert_non_null(strstr(s_srv.last_request, "\"latest\""));
    assert_int_equal(qr_rpc_estimate_gas(c, &call, &v), QR_OK);
    assert_int_equal(v, 21000);

    uint8_t raw[3] = {0x02, 0xc0, 0x80}, hash[32];
    assert_int_equal(qr_rpc_send_raw(c, raw, 3, hash), QR_OK);
    assert_int_equal(hash[0], 0x11);
    assert_non_null(strstr(s_srv.last_request, "[\"0x02c080\"]"));

    qr_receipt_t r;
    assert_int_equal(qr_rpc_receipt(c, hash, &r), QR_OK);
    assert_int_equal(r.status, 1);
    assert_int_equal(r.block_number, 3);
    assert_int_equal(r.gas_used, 0xb411);
    assert_false(r.has_contract);
    assert_int_equal(r.nlogs, 1);
    assert_int_equal(r.logs[0].ntopics, 2);
    assert_int_equal(r.logs[0].topics[0][0], 0xdd);
    assert_int_equal(r.logs[0].data_len, 32);
    assert_int_equal(r.logs[0].data[31], 0xe8);
    qr_receipt_free(&r);
    assert_null(r.logs);

    /* the generic entry point */
    json_t *res;
    assert_int_equal(qr_rpc_request(c, "eth_chainId", NULL, &res), QR_OK);
    assert_string_equal(json_string_value(res), "0x7a69");
    json_decref(res);
    qr_rpc_destroy(&c);
    assert_null(c);
    qr_rpc_destroy(&c);
}

static const char *s_reply_errors(const char *method, int *status)
{
    if (!strcmp(method, "eth_sendRawTransaction"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"error\":{\"code\":-32000,"
               "\"message\":\"nonce too low\"}}";
    if (!strcmp(method, "eth_call")) /* revert("Not enough Ether provided.") */
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"error\":{\"code\":3,\"message\":"
               "\"execution reverted\",\"data\":\"0x08c379a0"
               "0000000000000000000000000000000000000000000000000000000000000020"
               "000000000000000000000000000000000000000000000000000000000000001a"
               "4e6f7420656e6f7567682045746865722070726f76696465642e000000000000\"}}";
    if (!strcmp(method, "eth_maxPriorityFeePerGas"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"error\":{\"code\":-32601,"
               "\"message\":\"the method eth_maxPriorityFeePerGas does not exist\"}}";
    if (!strcmp(method, "eth_gasPrice"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":\"0x4a817c800\"}"; /* 20 gwei */
    if (!strcmp(method, "eth_feeHistory"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"baseFeePerGas\":[\"0x1\","
               "\"0x3b9aca00\"]}}";
    if (!strcmp(method, "eth_getTransactionReceipt"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":null}";
    if (!strcmp(method, "eth_chainId")) {
        *status = 500;
        return "<html><body>Internal Server Error</body></html>";
    }
    if (!strcmp(method, "eth_blockNumber")) {
        *status = 429;
        return "{\"message\":\"slow down\"}";
    }
    if (!strcmp(method, "eth_getTransactionCount"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":\"0x1\""; /* cut short */
    if (!strcmp(method, "eth_estimateGas"))
        return "{\"jsonrpc\":\"2.0\",\"id\":999999,\"result\":\"0x5208\"}"; /* wrong id */
    if (!strcmp(method, "net_version"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":5}"; /* not a quantity string */
    if (!strcmp(method, "eth_syncing"))
        return "{\"jsonrpc\":\"2.0\",\"id\":$ID}"; /* neither result nor error */
    return NULL;                                   /* eth_hang: no answer */
}

static void test_error_paths(void **state)
{
    (void)state;
    s_srv.reply = s_reply_errors;
    qr_rpc_t *c = s_client(400);
    const qr_rpc_error_t *e = qr_rpc_last_error(c);
    uint8_t raw[3] = {0x02, 0xc0, 0x80}, hash[32];

    /* a JSON-RPC error object: its code and message */
    assert_int_equal(qr_rpc_send_raw(c, raw, 3, hash), QR_EINVAL);
    assert_int_equal(e->code, QR_EINVAL);
    assert_true(e->has_rpc_code);
    assert_int_equal(e->rpc_code, -32000);
    s_msg_has(c, "eth_sendRawTransaction: node error -32000: nonce too low");

    /* a revert: the reason decoded from the error's data */
    qr_call_t call = {.has_to = 1};
    uint8_t *out = (uint8_t *)1;
    size_t len = 9;
    assert_int_equal(qr_rpc_call(c, &call, "pending", &out, &len), QR_EINVAL);
    assert_null(out);
    assert_int_equal(len, 0);
    assert_int_equal(e->rpc_code, 3);
    s_msg_has(c, "execution reverted: Not enough Ether provided.");
    assert_true(!strncmp(e->data, "0x08c379a0", 10));

    /* no eth_maxPriorityFeePerGas: tip = 20 gwei - 1 gwei base */
    qr_u256_t tip, cap;
    uint64_t v;
    assert_int_equal(qr_rpc_fees(c, &tip, &cap), QR_OK);
    assert_int_equal(qr_u256_to_u64(&tip, &v), 0);
    assert_int_equal(v, 19000000000ULL);
    assert_int_equal(qr_u256_to_u64(&cap, &v), 0);
    assert_int_equal(v, 21000000000ULL);

    qr_receipt_t r;
    assert_int_equal(qr_rpc_receipt(c, hash, &r), QR_ENOTREADY);
    assert_int_equal(qr_rpc_wait_receipt(c, hash, 150, 50, &r), QR_ETIMEOUT);
    s_msg_has(c, "not mined within 150 ms");

    /* HTTP errors */
    assert_int_equal(qr_rpc_chain_id(c, &v), QR_EPROTO);
    assert_int_equal(e->http_status, 500);
    assert_false(e->has_rpc_code);
    s_msg_has(c, "HTTP 500");
    assert_int_equal(qr_rpc_block_number(c, &v), QR_ELIMIT);
    assert_int_equal(e->http_status, 429);

    /* replies that are not JSON-RPC */
    assert_int_equal(qr_rpc_nonce(c, call.to, &v), QR_EPROTO);
    s_msg_has(c, "not a JSON object");
    assert_int_equal(qr_rpc_estimate_gas(c, &call, &v), QR_EPROTO);
    s_msg_has(c, "id does not match");
    json_t *res;
    assert_int_equal(qr_rpc_request(c, "eth_syncing", NULL, &res), QR_EPROTO);
    assert_null(res);
    s_msg_has(c, "neither result nor error");
    assert_int_equal(qr_rpc_request(c, "net_version", json_array(), &res), QR_OK);
    json_decref(res);

    /* silence: the client's timeout */
    assert_int_equal(qr_rpc_request(c, "eth_hang", NULL, &res), QR_ETIMEOUT);
    s_msg_has(c, "no reply within 400 ms");
    qr_rpc_destroy(&c);
}

static void test_node_down(void **state)
{
    (void)state;
    /* a bound socket that does not listen: connect gets RST, refused */
    int port;
    int fd = s_bind_any(&port, 0);
    char url[64], err[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    qr_rpc_t *c = qr_rpc_new(url, 1000, err, sizeof err);
    assert_non_null(c);
    uint64_t v;
    assert_int_equal(qr_rpc_chain_id(c, &v), QR_EUNAVAIL);
    assert_int_equal(qr_rpc_last_error(c)->http_status, 0);
    s_msg_has(c, "eth_chainId: cannot reach the node");
    qr_rpc_destroy(&c);
    close(fd);

    assert_null(qr_rpc_new("ftp://127.0.0.1:1", 1000, err, sizeof err));
    assert_non_null(strstr(err, "http://"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_paths),
        cmocka_unit_test(test_error_paths),
        cmocka_unit_test(test_node_down),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
