-- The one definition of an alert's dedupe key: queued once per feed, code
-- and scope (a file, or a day). store::notifications::enqueue writes it,
-- store::feeds::late looks for it.
CREATE FUNCTION alert_dedupe_key(feed_id bigint, code text, scope text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 'alert:' || feed_id || ':' || code || ':' || scope;
