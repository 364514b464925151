-- Completion reports and alerts by e-mail: an outbox delivered (and retried)
-- by the daemon, and the rejected lines kept per run for the rejects file.

-- The file's header, to write the rejects file with the customer's own columns.
ALTER TABLE runs ADD COLUMN header text[];

-- Lines rejected by a rule, as they were in the file (cells in file order),
-- with the reason, so the customer can fix them and drop them again.
CREATE TABLE run_rejects (
    run_id  uuid NOT NULL,  -- no FK: written in bulk with its run, like run_messages
    line    bigint NOT NULL,
    cells   text[] NOT NULL,
    reason  text NOT NULL
);
CREATE INDEX run_rejects_run_line ON run_rejects (run_id, line);

CREATE TABLE notifications (
    id               bigserial PRIMARY KEY,
    tenant_id        bigint NOT NULL REFERENCES tenants (id),
    run_id           uuid,
    feed_id          bigint REFERENCES feeds (id) ON DELETE CASCADE,
    -- report: the completion report of a run; alert: a feed problem.
    kind             text NOT NULL CHECK (kind IN ('report', 'alert')),
    code             text NOT NULL,
    recipients       text[] NOT NULL,
    subject          text NOT NULL,
    body_text        text NOT NULL,
    body_html        text NOT NULL,
    attachment_name  text,
    attachment       bytea,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    sent_at          timestamptz,
    -- Alerts sent once (a missing file per day, a repeated failure per file).
    dedupe_key       text UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_pending ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_run ON notifications (run_id);
