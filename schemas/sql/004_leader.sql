-- One active broker at a time.  A broker becomes active by taking a
-- PostgreSQL advisory lock and then bumping epoch here; every commit it makes
-- checks that epoch is still its own, so a broker that lost its lock (its
-- lock connection died and a standby took over) cannot write another row: the
-- fence.  holder names the active broker for admins.
CREATE TABLE broker_leader (
    id         int PRIMARY KEY CHECK (id = 1),
    epoch      bigint NOT NULL,
    holder     text NOT NULL DEFAULT '',
    since      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO broker_leader (id, epoch) VALUES (1, 0);
