/* The SQL migrations compiled into the broker.
 *
 * broker/embed_sql.cmake turns schemas/sql/NNN_name.sql into a generated
 * migrations.c defining qr_migrations[], sorted by NNN, so a broker can
 * bring any database it is pointed at up to date (qr_db_migrate) without the
 * .sql files on disk.  Read-only data; thread-safe. */
#ifndef QR_MIGRATIONS_H
#define QR_MIGRATIONS_H

#include <stddef.h>

typedef struct {
    int version;      /* NNN of the file name; unique, ascending */
    const char *name; /* file name without the NNN_ prefix and .sql */
    const char *sql;  /* the file's text, run as one simple-query batch */
} qr_migration_t;

extern const qr_migration_t qr_migrations[];
extern const size_t qr_migrations_count;

#endif
