/* Job state names; see jobstate.h. */
#include "jobstate.h"

#include <string.h>

static const char *const s_names[QR_JOB_STATE_COUNT_] = {
    "submitted", "queued",  "assigned", "running", "done",    "verified",
    "settled",   "mirrored", "rejected", "failed",  "expired", "cancelled",
};

const char *qr_job_state_name(int s)
{
    return s >= 0 && s < QR_JOB_STATE_COUNT_ ? s_names[s] : "unknown";
}

int qr_job_state_parse(const char *name)
{
    for (int i = 0; name && i < QR_JOB_STATE_COUNT_; i++)
        if (strcmp(name, s_names[i]) == 0)
            return i;
    return -1;
}

bool qr_job_state_final(int s)
{
    return s >= QR_JOB_SETTLED;
}
