/* Descriptions for qr_err_t.  Indexed by code; unknown codes get a generic text. */
#include "err.h"

static const char *const s_text[QR_ERR_COUNT_] = {
    [QR_OK] = "success",
    [QR_EINVAL] = "invalid request or argument",
    [QR_EPROTO] = "protocol error (malformed frame, wrong protocol or version)",
    [QR_EKIND] = "unknown job kind",
    [QR_ETOOBIG] = "input larger than the broker accepts",
    [QR_EFUNDS] = "insufficient balance for the job's maximum price",
    [QR_ENOTFOUND] = "not found",
    [QR_EDB] = "database unavailable",
    [QR_ESTATE] = "not allowed in the job's current state",
    [QR_ETIMEOUT] = "timed out",
    [QR_ENOMEM] = "out of memory",
    [QR_EIO] = "I/O error",
    [QR_EVERIFY] = "result failed verification",
    [QR_ECANCELLED] = "job was cancelled",
    [QR_EEXPIRED] = "job passed its deadline",
    [QR_EFAILED] = "job failed after its maximum attempts",
    [QR_EPRICE] = "price cap below every worker's ask",
    [QR_ENOTREADY] = "result not ready",
    [QR_EPERM] = "permission denied",
    [QR_ECOMPUTE] = "compute failed on the worker",
    [QR_EUNAVAIL] = "broker unavailable",
    [QR_ELIMIT] = "rate limit or quota exceeded",
};

const char *qr_strerror(int code)
{
    if (code < 0)
        code = -code;
    if (code >= QR_ERR_COUNT_ || !s_text[code])
        return "unknown error";
    return s_text[code];
}

static const char *const s_names[QR_ERR_COUNT_] = {
    [QR_OK] = "OK",           [QR_EINVAL] = "EINVAL",       [QR_EPROTO] = "EPROTO",
    [QR_EKIND] = "EKIND",     [QR_ETOOBIG] = "ETOOBIG",     [QR_EFUNDS] = "EFUNDS",
    [QR_ENOTFOUND] = "ENOTFOUND", [QR_EDB] = "EDB",         [QR_ESTATE] = "ESTATE",
    [QR_ETIMEOUT] = "ETIMEOUT", [QR_ENOMEM] = "ENOMEM",     [QR_EIO] = "EIO",
    [QR_EVERIFY] = "EVERIFY", [QR_ECANCELLED] = "ECANCELLED", [QR_EEXPIRED] = "EEXPIRED",
    [QR_EFAILED] = "EFAILED", [QR_EPRICE] = "EPRICE",       [QR_ENOTREADY] = "ENOTREADY",
    [QR_EPERM] = "EPERM",     [QR_ECOMPUTE] = "ECOMPUTE",   [QR_EUNAVAIL] = "EUNAVAIL",
    [QR_ELIMIT] = "ELIMIT",
};

const char *qr_errname(int code)
{
    if (code < 0)
        code = -code;
    if (code >= QR_ERR_COUNT_ || !s_names[code])
        return "EUNKNOWN";
    return s_names[code];
}
