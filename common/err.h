/* Quarry error codes.
 *
 * One enum for every process and the wire: a code travels in Error.code and is
 * shown through qr_strerror().  The list is append-only: never renumber or
 * reuse a value, old clients depend on them.  The public SDK header repeats
 * these values as QUARRY_E* (sdk/quarry.h); a unit test keeps them in step. */
#ifndef QR_ERR_H
#define QR_ERR_H

typedef enum {
    QR_OK = 0,
    QR_EINVAL = 1,        /* malformed request or argument */
    QR_EPROTO = 2,        /* bad frame, wrong protocol or version */
    QR_EKIND = 3,         /* unknown job kind */
    QR_ETOOBIG = 4,       /* input over the size limit */
    QR_EFUNDS = 5,        /* balance short of the job's maximum price */
    QR_ENOTFOUND = 6,     /* no such job, account or worker */
    QR_EDB = 7,           /* database unavailable or failed */
    QR_ESTATE = 8,        /* operation not allowed in the job's state */
    QR_ETIMEOUT = 9,      /* timed out waiting */
    QR_ENOMEM = 10,       /* out of memory */
    QR_EIO = 11,          /* socket or file I/O error */
    QR_EVERIFY = 12,      /* result failed verification */
    QR_ECANCELLED = 13,   /* job was cancelled */
    QR_EEXPIRED = 14,     /* job passed its deadline */
    QR_EFAILED = 15,      /* job failed after its maximum attempts */
    QR_EPRICE = 16,       /* no worker can run the job under its price cap */
    QR_ENOTREADY = 17,    /* result not available yet */
    QR_EPERM = 18,        /* not allowed for this caller */
    QR_ECOMPUTE = 19,     /* compute failed on the worker */
    QR_EUNAVAIL = 20,     /* broker not reachable */
    QR_ELIMIT = 21,       /* rate limit or quota exceeded */
    QR_ERR_COUNT_         /* keep last; not a code */
} qr_err_t;

/* Returns a static, human-readable description of code; never NULL. */
const char *qr_strerror(int code);
/* Returns the code's symbolic name ("EFUNDS"), for logs and metric labels;
 * "EUNKNOWN" for a code outside the enum. */
const char *qr_errname(int code);

#endif
