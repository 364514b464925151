-- Issue 15: every filter of a page of runs (`GET /api/v1/runs`, the
-- console's lists) walks an index in keyset order (started_at, id), so a
-- page needs no sort whatever the table's size or statistics.
CREATE INDEX runs_status_started ON runs (status, started_at DESC, id DESC);
CREATE INDEX runs_tenant_status_started ON runs (tenant_id, status, started_at DESC, id DESC);
CREATE INDEX runs_tenant_feed_started ON runs (tenant_id, feed, started_at DESC, id DESC);
DROP INDEX runs_tenant_started;
CREATE INDEX runs_tenant_started ON runs (tenant_id, started_at DESC, id DESC);
