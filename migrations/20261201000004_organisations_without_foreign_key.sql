-- organisations is written only by import::write, set-based, inside the
-- import transaction that holds the tenant's lock, like contacts and
-- list_members, which have no foreign keys either: the per-row check of
-- organisations.tenant_id cost 0.2 s of a 1M-row file's 78k organisations.
ALTER TABLE organisations DROP CONSTRAINT organisations_tenant_id_fkey;
