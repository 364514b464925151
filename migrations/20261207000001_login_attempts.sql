-- Login attempts, counted before the password is checked, so that
-- concurrent guesses see each other (a count read from the audit log after
-- the check let 33 of 60 simultaneous guesses through). An attempt is a
-- failure until its password matched; refused attempts are not kept.
CREATE TABLE login_attempts (
    id      bigserial PRIMARY KEY,
    email   text NOT NULL,
    client  text NOT NULL,
    at      timestamptz NOT NULL,
    failed  boolean NOT NULL DEFAULT true
);
CREATE INDEX login_attempts_email_at ON login_attempts (email, at);
CREATE INDEX login_attempts_client_at ON login_attempts (client, at);
-- Attempts past the throttle's window are removed at each attempt.
CREATE INDEX login_attempts_at ON login_attempts (at);
