/* Job states, shared by the broker, the database layer and the SDK.
 *
 *   submitted -> queued -> assigned -> running -> done -> verified -> settled -> mirrored
 * side exits: rejected (bad input at submit), failed (max attempts), expired
 * (deadline), cancelled.  A lost or failing worker sends its job back to
 * queued with attempts + 1; a result that fails verification does the same.
 * The names are what PostgreSQL stores (jobs.state, job_events.state) and what
 * clients see; never rename one. */
#ifndef QR_JOBSTATE_H
#define QR_JOBSTATE_H

#include <stdbool.h>

typedef enum {
    QR_JOB_SUBMITTED = 0,
    QR_JOB_QUEUED,
    QR_JOB_ASSIGNED,
    QR_JOB_RUNNING,
    QR_JOB_DONE,
    QR_JOB_VERIFIED,
    QR_JOB_SETTLED,
    QR_JOB_MIRRORED,
    QR_JOB_REJECTED,
    QR_JOB_FAILED,
    QR_JOB_EXPIRED,
    QR_JOB_CANCELLED,
    QR_JOB_STATE_COUNT_
} qr_job_state_t;

/* Name of state s ("queued"), or "unknown". */
const char *qr_job_state_name(int s);
/* State for name, or -1. */
int qr_job_state_parse(const char *name);
/* True for states a job never leaves (settled, mirrored and the side exits). */
bool qr_job_state_final(int s);

#endif
