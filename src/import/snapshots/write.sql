-- mode: insert_only, empty_cells: keep
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, c.civility), coalesce(s.first_name, c.first_name), coalesce(s.last_name, c.last_name), coalesce(s.structure, c.structure), coalesce(s.town, c.town), c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'e' ELSE 'e' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, ''), coalesce(s.first_name, ''), coalesce(s.last_name, ''), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), coalesce(s.consents, '{}'),
                coalesce(s.attributes, '{}'), $3, $3, o.id
         FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE k.outcome = 'u' ORDER BY k.contact_id
         ON CONFLICT (tenant_id, email) DO UPDATE SET civility = coalesce(nullif(excluded.civility, ''), contacts.civility), first_name = coalesce(nullif(excluded.first_name, ''), contacts.first_name), last_name = coalesce(nullif(excluded.last_name, ''), contacts.last_name), structure = coalesce(excluded.structure, contacts.structure), town = coalesce(excluded.town, contacts.town), criteria = contacts.criteria || coalesce(excluded.criteria, '{}'), consents = jsonb_strip_nulls(contacts.consents || coalesce(excluded.consents, '{}')), attributes = jsonb_strip_nulls(contacts.attributes || coalesce(excluded.attributes, '{}')), organisation_id = coalesce(excluded.organisation_id, contacts.organisation_id), updated_by_run = excluded.updated_by_run, updated_at = now();

-- mode: insert_only, empty_cells: clear
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.structure, s.town, c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'e' ELSE 'e' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, ''), coalesce(s.first_name, ''), coalesce(s.last_name, ''), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), coalesce(s.consents, '{}'),
                coalesce(s.attributes, '{}'), $3, $3, o.id
         FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE k.outcome = 'u' ORDER BY k.contact_id
         ON CONFLICT (tenant_id, email) DO UPDATE SET civility = coalesce(nullif(excluded.civility, ''), 'UNDEFINED'), first_name = coalesce(nullif(excluded.first_name, ''), '-'), last_name = coalesce(nullif(excluded.last_name, ''), '-'), structure = excluded.structure, town = excluded.town, criteria = contacts.criteria || coalesce(excluded.criteria, '{}'), consents = jsonb_strip_nulls(contacts.consents || coalesce(excluded.consents, '{}')), attributes = jsonb_strip_nulls(contacts.attributes || coalesce(excluded.attributes, '{}')), organisation_id = excluded.organisation_id, updated_by_run = excluded.updated_by_run, updated_at = now();

-- mode: upsert, empty_cells: keep
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, c.civility), coalesce(s.first_name, c.first_name), coalesce(s.last_name, c.last_name), coalesce(s.structure, c.structure), coalesce(s.town, c.town), c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'u' ELSE 'n' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, ''), coalesce(s.first_name, ''), coalesce(s.last_name, ''), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), coalesce(s.consents, '{}'),
                coalesce(s.attributes, '{}'), $3, $3, o.id
         FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE k.outcome = 'u' ORDER BY k.contact_id
         ON CONFLICT (tenant_id, email) DO UPDATE SET civility = coalesce(nullif(excluded.civility, ''), contacts.civility), first_name = coalesce(nullif(excluded.first_name, ''), contacts.first_name), last_name = coalesce(nullif(excluded.last_name, ''), contacts.last_name), structure = coalesce(excluded.structure, contacts.structure), town = coalesce(excluded.town, contacts.town), criteria = contacts.criteria || coalesce(excluded.criteria, '{}'), consents = jsonb_strip_nulls(contacts.consents || coalesce(excluded.consents, '{}')), attributes = jsonb_strip_nulls(contacts.attributes || coalesce(excluded.attributes, '{}')), organisation_id = coalesce(excluded.organisation_id, contacts.organisation_id), updated_by_run = excluded.updated_by_run, updated_at = now();

-- mode: upsert, empty_cells: clear
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.structure, s.town, c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'u' ELSE 'n' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, ''), coalesce(s.first_name, ''), coalesce(s.last_name, ''), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), coalesce(s.consents, '{}'),
                coalesce(s.attributes, '{}'), $3, $3, o.id
         FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE k.outcome = 'u' ORDER BY k.contact_id
         ON CONFLICT (tenant_id, email) DO UPDATE SET civility = coalesce(nullif(excluded.civility, ''), 'UNDEFINED'), first_name = coalesce(nullif(excluded.first_name, ''), '-'), last_name = coalesce(nullif(excluded.last_name, ''), '-'), structure = excluded.structure, town = excluded.town, criteria = contacts.criteria || coalesce(excluded.criteria, '{}'), consents = jsonb_strip_nulls(contacts.consents || coalesce(excluded.consents, '{}')), attributes = jsonb_strip_nulls(contacts.attributes || coalesce(excluded.attributes, '{}')), organisation_id = excluded.organisation_id, updated_by_run = excluded.updated_by_run, updated_at = now();

-- mode: update_only, empty_cells: keep
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, c.civility), coalesce(s.first_name, c.first_name), coalesce(s.last_name, c.last_name), coalesce(s.structure, c.structure), coalesce(s.town, c.town), c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'u' ELSE 'n' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, ''), coalesce(s.first_name, ''), coalesce(s.last_name, ''), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), coalesce(s.consents, '{}'),
                coalesce(s.attributes, '{}'), $3, $3, o.id
         FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE k.outcome = 'u' ORDER BY k.contact_id
         ON CONFLICT (tenant_id, email) DO UPDATE SET civility = coalesce(nullif(excluded.civility, ''), contacts.civility), first_name = coalesce(nullif(excluded.first_name, ''), contacts.first_name), last_name = coalesce(nullif(excluded.last_name, ''), contacts.last_name), structure = coalesce(excluded.structure, contacts.structure), town = coalesce(excluded.town, contacts.town), criteria = contacts.criteria || coalesce(excluded.criteria, '{}'), consents = jsonb_strip_nulls(contacts.consents || coalesce(excluded.consents, '{}')), attributes = jsonb_strip_nulls(contacts.attributes || coalesce(excluded.attributes, '{}')), organisation_id = coalesce(excluded.organisation_id, contacts.organisation_id), updated_by_run = excluded.updated_by_run, updated_at = now();

-- mode: update_only, empty_cells: clear
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.structure, s.town, c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'u' ELSE 'n' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, ''), coalesce(s.first_name, ''), coalesce(s.last_name, ''), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), coalesce(s.consents, '{}'),
                coalesce(s.attributes, '{}'), $3, $3, o.id
         FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE k.outcome = 'u' ORDER BY k.contact_id
         ON CONFLICT (tenant_id, email) DO UPDATE SET civility = coalesce(nullif(excluded.civility, ''), 'UNDEFINED'), first_name = coalesce(nullif(excluded.first_name, ''), '-'), last_name = coalesce(nullif(excluded.last_name, ''), '-'), structure = excluded.structure, town = excluded.town, criteria = contacts.criteria || coalesce(excluded.criteria, '{}'), consents = jsonb_strip_nulls(contacts.consents || coalesce(excluded.consents, '{}')), attributes = jsonb_strip_nulls(contacts.attributes || coalesce(excluded.attributes, '{}')), organisation_id = excluded.organisation_id, updated_by_run = excluded.updated_by_run, updated_at = now();

-- mode: replace_list, empty_cells: keep
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, c.civility), coalesce(s.first_name, c.first_name), coalesce(s.last_name, c.last_name), coalesce(s.structure, c.structure), coalesce(s.town, c.town), c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'u' ELSE 'n' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, ''), coalesce(s.first_name, ''), coalesce(s.last_name, ''), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), coalesce(s.consents, '{}'),
                coalesce(s.attributes, '{}'), $3, $3, o.id
         FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE k.outcome = 'u' ORDER BY k.contact_id
         ON CONFLICT (tenant_id, email) DO UPDATE SET civility = coalesce(nullif(excluded.civility, ''), contacts.civility), first_name = coalesce(nullif(excluded.first_name, ''), contacts.first_name), last_name = coalesce(nullif(excluded.last_name, ''), contacts.last_name), structure = coalesce(excluded.structure, contacts.structure), town = coalesce(excluded.town, contacts.town), criteria = contacts.criteria || coalesce(excluded.criteria, '{}'), consents = jsonb_strip_nulls(contacts.consents || coalesce(excluded.consents, '{}')), attributes = jsonb_strip_nulls(contacts.attributes || coalesce(excluded.attributes, '{}')), organisation_id = coalesce(excluded.organisation_id, contacts.organisation_id), updated_by_run = excluded.updated_by_run, updated_at = now();

-- mode: replace_list, empty_cells: clear
-- classify
CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN ROW(coalesce(s.civility, 'UNDEFINED'), coalesce(s.first_name, '-'), coalesce(s.last_name, '-'), s.structure, s.town, c.criteria || coalesce(s.criteria, '{}'), jsonb_strip_nulls(c.consents || coalesce(s.consents, '{}')), jsonb_strip_nulls(c.attributes || coalesce(s.attributes, '{}'))) IS DISTINCT FROM ROW(c.civility, c.first_name, c.last_name, c.structure, c.town, c.criteria, c.consents, c.attributes) THEN 'u' ELSE 'n' END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email;
-- update
INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure, address, postal_code, town, state, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run, organisation_id)
         SELECT $1, s.email, coalesce(s.language, $2), s.display, coalesce(s.civility, ''), coalesce(s.first_name, ''), coalesce(s.last_name, ''), s.birthdate, s.structure, s.address, s.postal_code, s.town, s.state, s.country, s.phone, s.mobile, coalesce(s.criteria, '{}'), coalesce(s.consents, '{}'),
                coalesce(s.attributes, '{}'), $3, $3, o.id
         FROM staging s JOIN classified k USING (line) LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key WHERE k.outcome = 'u' ORDER BY k.contact_id
         ON CONFLICT (tenant_id, email) DO UPDATE SET civility = coalesce(nullif(excluded.civility, ''), 'UNDEFINED'), first_name = coalesce(nullif(excluded.first_name, ''), '-'), last_name = coalesce(nullif(excluded.last_name, ''), '-'), structure = excluded.structure, town = excluded.town, criteria = contacts.criteria || coalesce(excluded.criteria, '{}'), consents = jsonb_strip_nulls(contacts.consents || coalesce(excluded.consents, '{}')), attributes = jsonb_strip_nulls(contacts.attributes || coalesce(excluded.attributes, '{}')), organisation_id = excluded.organisation_id, updated_by_run = excluded.updated_by_run, updated_at = now();

