-- `GET /api/v1/runs` pages every tenant's runs, newest first, by the keyset
-- (started_at, id).
CREATE INDEX runs_started ON runs (started_at DESC, id DESC);
