-- mode: insert_only, empty_cells: keep
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, c.civility), coalesce(s.first_name, c.first_name), coalesce(s.last_name, c.last_name), coalesce(s.structure, c.structure), coalesce(s.town, c.town), c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'e' ELSE 'e' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
UPDATE contacts c SET civility = coalesce(x.civility, c.civility), first_name = coalesce(x.first_name, c.first_name), last_name = coalesce(x.last_name, c.last_name), structure = coalesce(x.structure, c.structure), town = coalesce(x.town, c.town), criteria = c.criteria || coalesce(x.criteria, '{}'), consents = jsonb_strip_nulls(c.consents || coalesce(x.consents, '{}')), attributes = jsonb_strip_nulls(c.attributes || coalesce(x.attributes, '{}')), organisation_id = coalesce(x.org_id, c.organisation_id), updated_by_run = $3, updated_at = now()
         FROM (SELECT k.contact_id, s.*, o.id AS org_id FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key
               WHERE k.outcome = 'u' ORDER BY k.contact_id) x
         WHERE c.id = x.contact_id AND c.tenant_id = $1;
-- organisations
INSERT INTO organisations (tenant_id, key, name, address, postal_code, town, country, created_by_run)
         SELECT DISTINCT ON (s.org_key) $1, s.org_key, s.structure, s.address, s.postal_code, s.town, s.country, $2
         FROM staging s LEFT JOIN classified k ON k.line = s.line
         WHERE s.org_key IS NOT NULL AND (k.line IS NULL OR k.outcome = 'u')
           AND NOT EXISTS (SELECT 1 FROM organisations o WHERE o.tenant_id = $1 AND o.key = s.org_key)
         ORDER BY s.org_key, s.line;
-- insert (with lists)
WITH inserted AS (INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), jsonb_strip_nulls(coalesce(s.consents, '{}')),
                jsonb_strip_nulls(coalesce(s.attributes, '{}')), $3, $3, o.id
         FROM staging s LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) ORDER BY s.email RETURNING id)
         INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, i.id, $3 FROM inserted i CROSS JOIN unnest($4::bigint[]) AS l(id);
-- memberships of stored contacts
INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, k.contact_id, $1 FROM classified k CROSS JOIN unnest($2::bigint[]) AS l(id)
         WHERE k.outcome IN ('u', 'n')
           AND NOT EXISTS (SELECT 1 FROM list_members m WHERE m.list_id = l.id AND m.contact_id = k.contact_id)
         ON CONFLICT DO NOTHING;
-- messages: the cut
SELECT line, code FROM (SELECT line, code FROM staging_messages UNION ALL SELECT line, 'civility.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k WHERE warns & 2 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k WHERE warns & 4 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k WHERE warns & 8 <> 0) x ORDER BY line, code OFFSET $1 LIMIT 1;
-- messages: warnings, with $4..$12
WITH agg AS (SELECT array_agg(line ORDER BY line) FILTER (WHERE warns & 2 <> 0 AND (line, 'civility.empty') <= ($2, $3::text)) AS w0, array_agg(line ORDER BY line) FILTER (WHERE warns & 4 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w1, array_agg(line ORDER BY line) FILTER (WHERE warns & 8 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w2 FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k)
         INSERT INTO run_warnings (run_id, code, column_name, value, message, lines)
         SELECT $1, x.* FROM (SELECT 'civility.empty', $4, $5, $6, w0 FROM agg WHERE w0 IS NOT NULL UNION ALL SELECT 'name.empty', $7, $8, $9, w1 FROM agg WHERE w1 IS NOT NULL UNION ALL SELECT 'name.empty', $10, $11, $12, w2 FROM agg WHERE w2 IS NOT NULL) x;

-- mode: insert_only, empty_cells: clear
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.structure, s.town, c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'e' ELSE 'e' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
UPDATE contacts c SET civility = coalesce(x.civility, 'UNDEFINED'), first_name = coalesce(x.first_name, '-'), last_name = coalesce(x.last_name, '-'), structure = x.structure, town = x.town, criteria = c.criteria || coalesce(x.criteria, '{}'), consents = jsonb_strip_nulls(c.consents || coalesce(x.consents, '{}')), attributes = jsonb_strip_nulls(c.attributes || coalesce(x.attributes, '{}')), organisation_id = x.org_id, updated_by_run = $3, updated_at = now()
         FROM (SELECT k.contact_id, s.*, o.id AS org_id FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key
               WHERE k.outcome = 'u' ORDER BY k.contact_id) x
         WHERE c.id = x.contact_id AND c.tenant_id = $1;
-- organisations
INSERT INTO organisations (tenant_id, key, name, address, postal_code, town, country, created_by_run)
         SELECT DISTINCT ON (s.org_key) $1, s.org_key, s.structure, s.address, s.postal_code, s.town, s.country, $2
         FROM staging s LEFT JOIN classified k ON k.line = s.line
         WHERE s.org_key IS NOT NULL AND (k.line IS NULL OR k.outcome = 'u')
           AND NOT EXISTS (SELECT 1 FROM organisations o WHERE o.tenant_id = $1 AND o.key = s.org_key)
         ORDER BY s.org_key, s.line;
-- insert (with lists)
WITH inserted AS (INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), jsonb_strip_nulls(coalesce(s.consents, '{}')),
                jsonb_strip_nulls(coalesce(s.attributes, '{}')), $3, $3, o.id
         FROM staging s LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) ORDER BY s.email RETURNING id)
         INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, i.id, $3 FROM inserted i CROSS JOIN unnest($4::bigint[]) AS l(id);
-- memberships of stored contacts
INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, k.contact_id, $1 FROM classified k CROSS JOIN unnest($2::bigint[]) AS l(id)
         WHERE k.outcome IN ('u', 'n')
           AND NOT EXISTS (SELECT 1 FROM list_members m WHERE m.list_id = l.id AND m.contact_id = k.contact_id)
         ON CONFLICT DO NOTHING;
-- messages: the cut
SELECT line, code FROM (SELECT line, code FROM staging_messages UNION ALL SELECT line, 'civility.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k WHERE warns & 2 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k WHERE warns & 4 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k WHERE warns & 8 <> 0) x ORDER BY line, code OFFSET $1 LIMIT 1;
-- messages: warnings, with $4..$12
WITH agg AS (SELECT array_agg(line ORDER BY line) FILTER (WHERE warns & 2 <> 0 AND (line, 'civility.empty') <= ($2, $3::text)) AS w0, array_agg(line ORDER BY line) FILTER (WHERE warns & 4 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w1, array_agg(line ORDER BY line) FILTER (WHERE warns & 8 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w2 FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k)
         INSERT INTO run_warnings (run_id, code, column_name, value, message, lines)
         SELECT $1, x.* FROM (SELECT 'civility.empty', $4, $5, $6, w0 FROM agg WHERE w0 IS NOT NULL UNION ALL SELECT 'name.empty', $7, $8, $9, w1 FROM agg WHERE w1 IS NOT NULL UNION ALL SELECT 'name.empty', $10, $11, $12, w2 FROM agg WHERE w2 IS NOT NULL) x;

-- mode: upsert, empty_cells: keep
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, c.civility), coalesce(s.first_name, c.first_name), coalesce(s.last_name, c.last_name), coalesce(s.structure, c.structure), coalesce(s.town, c.town), c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'u' ELSE 'n' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
UPDATE contacts c SET civility = coalesce(x.civility, c.civility), first_name = coalesce(x.first_name, c.first_name), last_name = coalesce(x.last_name, c.last_name), structure = coalesce(x.structure, c.structure), town = coalesce(x.town, c.town), criteria = c.criteria || coalesce(x.criteria, '{}'), consents = jsonb_strip_nulls(c.consents || coalesce(x.consents, '{}')), attributes = jsonb_strip_nulls(c.attributes || coalesce(x.attributes, '{}')), organisation_id = coalesce(x.org_id, c.organisation_id), updated_by_run = $3, updated_at = now()
         FROM (SELECT k.contact_id, s.*, o.id AS org_id FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key
               WHERE k.outcome = 'u' ORDER BY k.contact_id) x
         WHERE c.id = x.contact_id AND c.tenant_id = $1;
-- organisations
INSERT INTO organisations (tenant_id, key, name, address, postal_code, town, country, created_by_run)
         SELECT DISTINCT ON (s.org_key) $1, s.org_key, s.structure, s.address, s.postal_code, s.town, s.country, $2
         FROM staging s LEFT JOIN classified k ON k.line = s.line
         WHERE s.org_key IS NOT NULL AND (k.line IS NULL OR k.outcome = 'u')
           AND NOT EXISTS (SELECT 1 FROM organisations o WHERE o.tenant_id = $1 AND o.key = s.org_key)
         ORDER BY s.org_key, s.line;
-- insert (with lists)
WITH inserted AS (INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), jsonb_strip_nulls(coalesce(s.consents, '{}')),
                jsonb_strip_nulls(coalesce(s.attributes, '{}')), $3, $3, o.id
         FROM staging s LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) ORDER BY s.email RETURNING id)
         INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, i.id, $3 FROM inserted i CROSS JOIN unnest($4::bigint[]) AS l(id);
-- memberships of stored contacts
INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, k.contact_id, $1 FROM classified k CROSS JOIN unnest($2::bigint[]) AS l(id)
         WHERE k.outcome IN ('u', 'n')
           AND NOT EXISTS (SELECT 1 FROM list_members m WHERE m.list_id = l.id AND m.contact_id = k.contact_id)
         ON CONFLICT DO NOTHING;
-- messages: the cut
SELECT line, code FROM (SELECT line, code FROM staging_messages UNION ALL SELECT line, 'civility.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k WHERE warns & 2 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k WHERE warns & 4 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k WHERE warns & 8 <> 0) x ORDER BY line, code OFFSET $1 LIMIT 1;
-- messages: warnings, with $4..$12
WITH agg AS (SELECT array_agg(line ORDER BY line) FILTER (WHERE warns & 2 <> 0 AND (line, 'civility.empty') <= ($2, $3::text)) AS w0, array_agg(line ORDER BY line) FILTER (WHERE warns & 4 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w1, array_agg(line ORDER BY line) FILTER (WHERE warns & 8 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w2 FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k)
         INSERT INTO run_warnings (run_id, code, column_name, value, message, lines)
         SELECT $1, x.* FROM (SELECT 'civility.empty', $4, $5, $6, w0 FROM agg WHERE w0 IS NOT NULL UNION ALL SELECT 'name.empty', $7, $8, $9, w1 FROM agg WHERE w1 IS NOT NULL UNION ALL SELECT 'name.empty', $10, $11, $12, w2 FROM agg WHERE w2 IS NOT NULL) x;

-- mode: upsert, empty_cells: clear
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.structure, s.town, c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'u' ELSE 'n' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
UPDATE contacts c SET civility = coalesce(x.civility, 'UNDEFINED'), first_name = coalesce(x.first_name, '-'), last_name = coalesce(x.last_name, '-'), structure = x.structure, town = x.town, criteria = c.criteria || coalesce(x.criteria, '{}'), consents = jsonb_strip_nulls(c.consents || coalesce(x.consents, '{}')), attributes = jsonb_strip_nulls(c.attributes || coalesce(x.attributes, '{}')), organisation_id = x.org_id, updated_by_run = $3, updated_at = now()
         FROM (SELECT k.contact_id, s.*, o.id AS org_id FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key
               WHERE k.outcome = 'u' ORDER BY k.contact_id) x
         WHERE c.id = x.contact_id AND c.tenant_id = $1;
-- organisations
INSERT INTO organisations (tenant_id, key, name, address, postal_code, town, country, created_by_run)
         SELECT DISTINCT ON (s.org_key) $1, s.org_key, s.structure, s.address, s.postal_code, s.town, s.country, $2
         FROM staging s LEFT JOIN classified k ON k.line = s.line
         WHERE s.org_key IS NOT NULL AND (k.line IS NULL OR k.outcome = 'u')
           AND NOT EXISTS (SELECT 1 FROM organisations o WHERE o.tenant_id = $1 AND o.key = s.org_key)
         ORDER BY s.org_key, s.line;
-- insert (with lists)
WITH inserted AS (INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), jsonb_strip_nulls(coalesce(s.consents, '{}')),
                jsonb_strip_nulls(coalesce(s.attributes, '{}')), $3, $3, o.id
         FROM staging s LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) ORDER BY s.email RETURNING id)
         INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, i.id, $3 FROM inserted i CROSS JOIN unnest($4::bigint[]) AS l(id);
-- memberships of stored contacts
INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, k.contact_id, $1 FROM classified k CROSS JOIN unnest($2::bigint[]) AS l(id)
         WHERE k.outcome IN ('u', 'n')
           AND NOT EXISTS (SELECT 1 FROM list_members m WHERE m.list_id = l.id AND m.contact_id = k.contact_id)
         ON CONFLICT DO NOTHING;
-- messages: the cut
SELECT line, code FROM (SELECT line, code FROM staging_messages UNION ALL SELECT line, 'civility.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) UNION ALL SELECT line, warns FROM classified WHERE warns <> 0 AND outcome = 'u') k WHERE warns & 2 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) UNION ALL SELECT line, warns FROM classified WHERE warns <> 0 AND outcome = 'u') k WHERE warns & 4 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) UNION ALL SELECT line, warns FROM classified WHERE warns <> 0 AND outcome = 'u') k WHERE warns & 8 <> 0) x ORDER BY line, code OFFSET $1 LIMIT 1;
-- messages: warnings, with $4..$12
WITH agg AS (SELECT array_agg(line ORDER BY line) FILTER (WHERE warns & 2 <> 0 AND (line, 'civility.empty') <= ($2, $3::text)) AS w0, array_agg(line ORDER BY line) FILTER (WHERE warns & 4 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w1, array_agg(line ORDER BY line) FILTER (WHERE warns & 8 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w2 FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) UNION ALL SELECT line, warns FROM classified WHERE warns <> 0 AND outcome = 'u') k)
         INSERT INTO run_warnings (run_id, code, column_name, value, message, lines)
         SELECT $1, x.* FROM (SELECT 'civility.empty', $4, $5, $6, w0 FROM agg WHERE w0 IS NOT NULL UNION ALL SELECT 'name.empty', $7, $8, $9, w1 FROM agg WHERE w1 IS NOT NULL UNION ALL SELECT 'name.empty', $10, $11, $12, w2 FROM agg WHERE w2 IS NOT NULL) x;

-- mode: update_only, empty_cells: keep
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, c.civility), coalesce(s.first_name, c.first_name), coalesce(s.last_name, c.last_name), coalesce(s.structure, c.structure), coalesce(s.town, c.town), c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'u' ELSE 'n' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
UPDATE contacts c SET civility = coalesce(x.civility, c.civility), first_name = coalesce(x.first_name, c.first_name), last_name = coalesce(x.last_name, c.last_name), structure = coalesce(x.structure, c.structure), town = coalesce(x.town, c.town), criteria = c.criteria || coalesce(x.criteria, '{}'), consents = jsonb_strip_nulls(c.consents || coalesce(x.consents, '{}')), attributes = jsonb_strip_nulls(c.attributes || coalesce(x.attributes, '{}')), organisation_id = coalesce(x.org_id, c.organisation_id), updated_by_run = $3, updated_at = now()
         FROM (SELECT k.contact_id, s.*, o.id AS org_id FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key
               WHERE k.outcome = 'u' ORDER BY k.contact_id) x
         WHERE c.id = x.contact_id AND c.tenant_id = $1;
-- organisations
INSERT INTO organisations (tenant_id, key, name, address, postal_code, town, country, created_by_run)
         SELECT DISTINCT ON (s.org_key) $1, s.org_key, s.structure, s.address, s.postal_code, s.town, s.country, $2
         FROM staging s JOIN classified k ON k.line = s.line
         WHERE s.org_key IS NOT NULL AND k.outcome = 'u'
           AND NOT EXISTS (SELECT 1 FROM organisations o WHERE o.tenant_id = $1 AND o.key = s.org_key)
         ORDER BY s.org_key, s.line;
-- insert (with lists)
WITH inserted AS (INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), jsonb_strip_nulls(coalesce(s.consents, '{}')),
                jsonb_strip_nulls(coalesce(s.attributes, '{}')), $3, $3, o.id
         FROM staging s LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) ORDER BY s.email RETURNING id)
         INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, i.id, $3 FROM inserted i CROSS JOIN unnest($4::bigint[]) AS l(id);
-- memberships of stored contacts
INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, k.contact_id, $1 FROM classified k CROSS JOIN unnest($2::bigint[]) AS l(id)
         WHERE k.outcome IN ('u', 'n')
           AND NOT EXISTS (SELECT 1 FROM list_members m WHERE m.list_id = l.id AND m.contact_id = k.contact_id)
         ON CONFLICT DO NOTHING;
-- messages: the cut
SELECT line, code FROM (SELECT line, code FROM staging_messages UNION ALL SELECT line, 'civility.empty' FROM (SELECT 0::bigint AS line, 0::smallint AS warns WHERE false) k WHERE warns & 2 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT 0::bigint AS line, 0::smallint AS warns WHERE false) k WHERE warns & 4 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT 0::bigint AS line, 0::smallint AS warns WHERE false) k WHERE warns & 8 <> 0) x ORDER BY line, code OFFSET $1 LIMIT 1;
-- messages: warnings, with $4..$12
WITH agg AS (SELECT array_agg(line ORDER BY line) FILTER (WHERE warns & 2 <> 0 AND (line, 'civility.empty') <= ($2, $3::text)) AS w0, array_agg(line ORDER BY line) FILTER (WHERE warns & 4 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w1, array_agg(line ORDER BY line) FILTER (WHERE warns & 8 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w2 FROM (SELECT 0::bigint AS line, 0::smallint AS warns WHERE false) k)
         INSERT INTO run_warnings (run_id, code, column_name, value, message, lines)
         SELECT $1, x.* FROM (SELECT 'civility.empty', $4, $5, $6, w0 FROM agg WHERE w0 IS NOT NULL UNION ALL SELECT 'name.empty', $7, $8, $9, w1 FROM agg WHERE w1 IS NOT NULL UNION ALL SELECT 'name.empty', $10, $11, $12, w2 FROM agg WHERE w2 IS NOT NULL) x;

-- mode: update_only, empty_cells: clear
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.structure, s.town, c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'u' ELSE 'n' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
UPDATE contacts c SET civility = coalesce(x.civility, 'UNDEFINED'), first_name = coalesce(x.first_name, '-'), last_name = coalesce(x.last_name, '-'), structure = x.structure, town = x.town, criteria = c.criteria || coalesce(x.criteria, '{}'), consents = jsonb_strip_nulls(c.consents || coalesce(x.consents, '{}')), attributes = jsonb_strip_nulls(c.attributes || coalesce(x.attributes, '{}')), organisation_id = x.org_id, updated_by_run = $3, updated_at = now()
         FROM (SELECT k.contact_id, s.*, o.id AS org_id FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key
               WHERE k.outcome = 'u' ORDER BY k.contact_id) x
         WHERE c.id = x.contact_id AND c.tenant_id = $1;
-- organisations
INSERT INTO organisations (tenant_id, key, name, address, postal_code, town, country, created_by_run)
         SELECT DISTINCT ON (s.org_key) $1, s.org_key, s.structure, s.address, s.postal_code, s.town, s.country, $2
         FROM staging s JOIN classified k ON k.line = s.line
         WHERE s.org_key IS NOT NULL AND k.outcome = 'u'
           AND NOT EXISTS (SELECT 1 FROM organisations o WHERE o.tenant_id = $1 AND o.key = s.org_key)
         ORDER BY s.org_key, s.line;
-- insert (with lists)
WITH inserted AS (INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), jsonb_strip_nulls(coalesce(s.consents, '{}')),
                jsonb_strip_nulls(coalesce(s.attributes, '{}')), $3, $3, o.id
         FROM staging s LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) ORDER BY s.email RETURNING id)
         INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, i.id, $3 FROM inserted i CROSS JOIN unnest($4::bigint[]) AS l(id);
-- memberships of stored contacts
INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, k.contact_id, $1 FROM classified k CROSS JOIN unnest($2::bigint[]) AS l(id)
         WHERE k.outcome IN ('u', 'n')
           AND NOT EXISTS (SELECT 1 FROM list_members m WHERE m.list_id = l.id AND m.contact_id = k.contact_id)
         ON CONFLICT DO NOTHING;
-- messages: the cut
SELECT line, code FROM (SELECT line, code FROM staging_messages UNION ALL SELECT line, 'civility.empty' FROM (SELECT line, warns FROM classified WHERE warns <> 0 AND outcome = 'u') k WHERE warns & 2 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM classified WHERE warns <> 0 AND outcome = 'u') k WHERE warns & 4 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM classified WHERE warns <> 0 AND outcome = 'u') k WHERE warns & 8 <> 0) x ORDER BY line, code OFFSET $1 LIMIT 1;
-- messages: warnings, with $4..$12
WITH agg AS (SELECT array_agg(line ORDER BY line) FILTER (WHERE warns & 2 <> 0 AND (line, 'civility.empty') <= ($2, $3::text)) AS w0, array_agg(line ORDER BY line) FILTER (WHERE warns & 4 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w1, array_agg(line ORDER BY line) FILTER (WHERE warns & 8 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w2 FROM (SELECT line, warns FROM classified WHERE warns <> 0 AND outcome = 'u') k)
         INSERT INTO run_warnings (run_id, code, column_name, value, message, lines)
         SELECT $1, x.* FROM (SELECT 'civility.empty', $4, $5, $6, w0 FROM agg WHERE w0 IS NOT NULL UNION ALL SELECT 'name.empty', $7, $8, $9, w1 FROM agg WHERE w1 IS NOT NULL UNION ALL SELECT 'name.empty', $10, $11, $12, w2 FROM agg WHERE w2 IS NOT NULL) x;

-- mode: replace_list, empty_cells: keep
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, c.civility), coalesce(s.first_name, c.first_name), coalesce(s.last_name, c.last_name), coalesce(s.structure, c.structure), coalesce(s.town, c.town), c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'u' ELSE 'n' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
UPDATE contacts c SET civility = coalesce(x.civility, c.civility), first_name = coalesce(x.first_name, c.first_name), last_name = coalesce(x.last_name, c.last_name), structure = coalesce(x.structure, c.structure), town = coalesce(x.town, c.town), criteria = c.criteria || coalesce(x.criteria, '{}'), consents = jsonb_strip_nulls(c.consents || coalesce(x.consents, '{}')), attributes = jsonb_strip_nulls(c.attributes || coalesce(x.attributes, '{}')), organisation_id = coalesce(x.org_id, c.organisation_id), updated_by_run = $3, updated_at = now()
         FROM (SELECT k.contact_id, s.*, o.id AS org_id FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key
               WHERE k.outcome = 'u' ORDER BY k.contact_id) x
         WHERE c.id = x.contact_id AND c.tenant_id = $1;
-- organisations
INSERT INTO organisations (tenant_id, key, name, address, postal_code, town, country, created_by_run)
         SELECT DISTINCT ON (s.org_key) $1, s.org_key, s.structure, s.address, s.postal_code, s.town, s.country, $2
         FROM staging s LEFT JOIN classified k ON k.line = s.line
         WHERE s.org_key IS NOT NULL AND (k.line IS NULL OR k.outcome = 'u')
           AND NOT EXISTS (SELECT 1 FROM organisations o WHERE o.tenant_id = $1 AND o.key = s.org_key)
         ORDER BY s.org_key, s.line;
-- insert (with lists)
WITH inserted AS (INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), jsonb_strip_nulls(coalesce(s.consents, '{}')),
                jsonb_strip_nulls(coalesce(s.attributes, '{}')), $3, $3, o.id
         FROM staging s LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) ORDER BY s.email RETURNING id)
         INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, i.id, $3 FROM inserted i CROSS JOIN unnest($4::bigint[]) AS l(id);
-- memberships of stored contacts
INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, k.contact_id, $1 FROM classified k CROSS JOIN unnest($2::bigint[]) AS l(id)
         WHERE k.outcome IN ('u', 'n')
           AND NOT EXISTS (SELECT 1 FROM list_members m WHERE m.list_id = l.id AND m.contact_id = k.contact_id)
         ON CONFLICT DO NOTHING;
-- messages: the cut
SELECT line, code FROM (SELECT line, code FROM staging_messages UNION ALL SELECT line, 'civility.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k WHERE warns & 2 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k WHERE warns & 4 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k WHERE warns & 8 <> 0) x ORDER BY line, code OFFSET $1 LIMIT 1;
-- messages: warnings, with $4..$12
WITH agg AS (SELECT array_agg(line ORDER BY line) FILTER (WHERE warns & 2 <> 0 AND (line, 'civility.empty') <= ($2, $3::text)) AS w0, array_agg(line ORDER BY line) FILTER (WHERE warns & 4 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w1, array_agg(line ORDER BY line) FILTER (WHERE warns & 8 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w2 FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)) k)
         INSERT INTO run_warnings (run_id, code, column_name, value, message, lines)
         SELECT $1, x.* FROM (SELECT 'civility.empty', $4, $5, $6, w0 FROM agg WHERE w0 IS NOT NULL UNION ALL SELECT 'name.empty', $7, $8, $9, w1 FROM agg WHERE w1 IS NOT NULL UNION ALL SELECT 'name.empty', $10, $11, $12, w2 FROM agg WHERE w2 IS NOT NULL) x;

-- mode: replace_list, empty_cells: clear
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.structure, s.town, c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'u' ELSE 'n' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
UPDATE contacts c SET civility = coalesce(x.civility, 'UNDEFINED'), first_name = coalesce(x.first_name, '-'), last_name = coalesce(x.last_name, '-'), structure = x.structure, town = x.town, criteria = c.criteria || coalesce(x.criteria, '{}'), consents = jsonb_strip_nulls(c.consents || coalesce(x.consents, '{}')), attributes = jsonb_strip_nulls(c.attributes || coalesce(x.attributes, '{}')), organisation_id = x.org_id, updated_by_run = $3, updated_at = now()
         FROM (SELECT k.contact_id, s.*, o.id AS org_id FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key
               WHERE k.outcome = 'u' ORDER BY k.contact_id) x
         WHERE c.id = x.contact_id AND c.tenant_id = $1;
-- organisations
INSERT INTO organisations (tenant_id, key, name, address, postal_code, town, country, created_by_run)
         SELECT DISTINCT ON (s.org_key) $1, s.org_key, s.structure, s.address, s.postal_code, s.town, s.country, $2
         FROM staging s LEFT JOIN classified k ON k.line = s.line
         WHERE s.org_key IS NOT NULL AND (k.line IS NULL OR k.outcome = 'u')
           AND NOT EXISTS (SELECT 1 FROM organisations o WHERE o.tenant_id = $1 AND o.key = s.org_key)
         ORDER BY s.org_key, s.line;
-- insert (with lists)
WITH inserted AS (INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), jsonb_strip_nulls(coalesce(s.consents, '{}')),
                jsonb_strip_nulls(coalesce(s.attributes, '{}')), $3, $3, o.id
         FROM staging s LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) ORDER BY s.email RETURNING id)
         INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, i.id, $3 FROM inserted i CROSS JOIN unnest($4::bigint[]) AS l(id);
-- memberships of stored contacts
INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, k.contact_id, $1 FROM classified k CROSS JOIN unnest($2::bigint[]) AS l(id)
         WHERE k.outcome IN ('u', 'n')
           AND NOT EXISTS (SELECT 1 FROM list_members m WHERE m.list_id = l.id AND m.contact_id = k.contact_id)
         ON CONFLICT DO NOTHING;
-- messages: the cut
SELECT line, code FROM (SELECT line, code FROM staging_messages UNION ALL SELECT line, 'civility.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) UNION ALL SELECT line, warns FROM classified WHERE warns <> 0 AND outcome = 'u') k WHERE warns & 2 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) UNION ALL SELECT line, warns FROM classified WHERE warns <> 0 AND outcome = 'u') k WHERE warns & 4 <> 0 UNION ALL SELECT line, 'name.empty' FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) UNION ALL SELECT line, warns FROM classified WHERE warns <> 0 AND outcome = 'u') k WHERE warns & 8 <> 0) x ORDER BY line, code OFFSET $1 LIMIT 1;
-- messages: warnings, with $4..$12
WITH agg AS (SELECT array_agg(line ORDER BY line) FILTER (WHERE warns & 2 <> 0 AND (line, 'civility.empty') <= ($2, $3::text)) AS w0, array_agg(line ORDER BY line) FILTER (WHERE warns & 4 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w1, array_agg(line ORDER BY line) FILTER (WHERE warns & 8 <> 0 AND (line, 'name.empty') <= ($2, $3::text)) AS w2 FROM (SELECT line, warns FROM staging s WHERE warns <> 0 AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line) UNION ALL SELECT line, warns FROM classified WHERE warns <> 0 AND outcome = 'u') k)
         INSERT INTO run_warnings (run_id, code, column_name, value, message, lines)
         SELECT $1, x.* FROM (SELECT 'civility.empty', $4, $5, $6, w0 FROM agg WHERE w0 IS NOT NULL UNION ALL SELECT 'name.empty', $7, $8, $9, w1 FROM agg WHERE w1 IS NOT NULL UNION ALL SELECT 'name.empty', $10, $11, $12, w2 FROM agg WHERE w2 IS NOT NULL) x;

