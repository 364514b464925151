-- Issue 14: reading a run or a tenant's contacts back must cost a little when
-- the planner's estimates are wrong (tables never analysed, dead rows left by
-- a killed import), not a square.

-- `contacts export` gathers each contact's lists through this index (one
-- lookup per contact) instead of joining an aggregate of every membership,
-- which a planner that took contacts for 6 rows ran as a nested loop.
CREATE INDEX list_members_contact ON list_members (contact_id);

-- The text report and the e-mail show the first lines of each rule: with
-- this index, each rule's examples are a short index range, not a scan of
-- every message of the run.
CREATE INDEX run_messages_run_code_line ON run_messages (run_id, code, line);
