/* An Ethereum JSON-RPC 2.0 client over HTTP (libcurl, jansson).
 *
 * One client talks to one node URL and is used by one thread at a time; it
 * keeps a libcurl easy handle so consecutive calls reuse the connection.
 * Every call is synchronous and bounded by the client's timeout (connect and
 * whole request).
 *
 * Each call returns a qr_err_t code and keeps the details of the last
 * failure in qr_rpc_last_error():
 *   QR_EUNAVAIL  no connection (refused, unresolvable host)
 *   QR_ETIMEOUT  no complete reply within the timeout
 *   QR_EIO       another transport failure
 *   QR_ELIMIT    HTTP 429 from a rate-limiting provider
 *   QR_EPROTO    a reply that is not JSON-RPC 2.0 (HTTP error page, bad
 *                JSON, wrong id, a result of the wrong shape)
 *   QR_EINVAL    the node answered with a JSON-RPC error object: its code
 *                and message are in rpc_code and message (-32000 family for
 *                rejected transactions, 3 for a revert, whose data is
 *                decoded into the message)
 *   QR_ENOTREADY no receipt yet (qr_rpc_receipt only)
 *   QR_ENOMEM    out of memory
 * The node URL is never put in messages: hosted providers carry the API key
 * in its path. */
#ifndef QR_CHAIN_RPC_H
#define QR_CHAIN_RPC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "ethutil.h"

typedef struct qr_rpc qr_rpc_t;

typedef struct {
    int code;           /* qr_err_t of the last call, QR_OK after a success */
    long http_status;   /* of the last reply, 0 when none came */
    int has_rpc_code;   /* the node sent a JSON-RPC error object */
    long long rpc_code; /* its code */
    char message[512];  /* "eth_call: execution reverted: NotBroker()"... */
    char data[1024];    /* the error object's data when it is a string, else "" */
} qr_rpc_error_t;

/* A client for url ("http://127.0.0.1:8545") with a per-call timeout in
 * milliseconds.  Returns the client or NULL with a message in err. */
qr_rpc_t *qr_rpc_new(const char *url, int timeout_ms, char *err, size_t errlen);
/* NULL-safe, nulls *self_p. */
void qr_rpc_destroy(qr_rpc_t **self_p);
/* The last call's outcome; valid until the next call. */
const qr_rpc_error_t *qr_rpc_last_error(const qr_rpc_t *self);

/* Any method: params (a JSON array, reference stolen; NULL sends []) and, on
 * QR_OK, a new reference to the result in *result (may be JSON null). */
int qr_rpc_request(qr_rpc_t *self, const char *method, json_t *params, json_t **result);

int qr_rpc_chain_id(qr_rpc_t *self, uint64_t *out);
int qr_rpc_block_number(qr_rpc_t *self, uint64_t *out);
/* eth_getTransactionCount at "pending": the nonce for the next transaction,
 * counting those already in the node's pool. */
int qr_rpc_nonce(qr_rpc_t *self, const uint8_t addr[QR_ADDR_LEN], uint64_t *out);
int qr_rpc_gas_price(qr_rpc_t *self, qr_u256_t *out);
int qr_rpc_max_priority_fee(qr_rpc_t *self, qr_u256_t *out);
/* The base fee of the next block, from eth_feeHistory. */
int qr_rpc_base_fee(qr_rpc_t *self, qr_u256_t *out);

/* Fees for a type-2 transaction: the tip is eth_maxPriorityFeePerGas (or
 * gas price minus base fee where a node lacks that method) and the cap is
 * twice the next base fee plus the tip, which stays valid through six full
 * blocks of base-fee rises (12.5% each). */
int qr_rpc_fees(qr_rpc_t *self, qr_u256_t *max_priority_fee, qr_u256_t *max_fee);

/* A message call, for eth_call and eth_estimateGas. */
typedef struct {
    int has_from;
    uint8_t from[QR_ADDR_LEN];
    int has_to; /* 0: contract creation (estimate only) */
    uint8_t to[QR_ADDR_LEN];
    const uint8_t *data; /* borrowed */
    size_t data_len;
    qr_u256_t value;
    uint64_t gas; /* 0: left to the node */
} qr_call_t;

int qr_rpc_estimate_gas(qr_rpc_t *self, const qr_call_t *call, uint64_t *gas);
/* eth_call at block ("latest" when NULL): the return data in a fresh
 * malloc'd buffer (NULL when empty).  A revert is QR_EINVAL with the
 * decoded reason in the message. */
int qr_rpc_call(qr_rpc_t *self, const qr_call_t *call, const char *block, uint8_t **out,
                size_t *len);
/* eth_sendRawTransaction; the node's transaction hash into hash. */
int qr_rpc_send_raw(qr_rpc_t *self, const uint8_t *raw, size_t len, uint8_t hash[32]);

typedef struct {
    uint8_t address[QR_ADDR_LEN];
    uint8_t topics[4][32];
    size_t ntopics;
    uint8_t *data; /* malloc'd, NULL when empty */
    size_t data_len;
} qr_log_t;

typedef struct {
    uint8_t tx_hash[32];
    uint64_t block_number;
    uint64_t status; /* 1 success, 0 reverted */
    uint64_t gas_used;
    qr_u256_t effective_gas_price;
    int has_contract; /* a creation: the new contract's address */
    uint8_t contract_address[QR_ADDR_LEN];
    qr_log_t *logs;
    size_t nlogs;
} qr_receipt_t;

/* eth_getTransactionReceipt: QR_OK with the receipt (free it with
 * qr_receipt_free), or QR_ENOTREADY while the transaction is not mined. */
int qr_rpc_receipt(qr_rpc_t *self, const uint8_t hash[32], qr_receipt_t *out);
/* Polls qr_rpc_receipt every poll_ms until it is mined or timeout_ms pass
 * (QR_ETIMEOUT). */
int qr_rpc_wait_receipt(qr_rpc_t *self, const uint8_t hash[32], int timeout_ms, int poll_ms,
                        qr_receipt_t *out);
void qr_receipt_free(qr_receipt_t *r);

#endif
