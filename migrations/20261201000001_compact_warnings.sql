-- Warnings (an empty cell replaced by its default) are a third of the lines
-- of a typical export, and their message depends only on the rule and the
-- column: they are kept as one row per rule and column with the array of
-- their lines, instead of one message row per line (a 1M-row file: 3 rows
-- instead of 360,000). run_message_view shows errors and warnings alike.
CREATE TABLE run_warnings (
    run_id       uuid NOT NULL,  -- no FK: written in bulk with its run, like run_messages
    code         text NOT NULL,
    column_name  text,
    value        text,
    message      text NOT NULL,
    -- 1-based lines, ascending
    lines        bigint[] NOT NULL
);
CREATE INDEX run_warnings_run ON run_warnings (run_id);

CREATE VIEW run_message_view AS
    SELECT run_id, line, column_name, code, severity, value, message FROM run_messages
    UNION ALL
    SELECT w.run_id, l.line, w.column_name, w.code, 'warning', w.value, w.message
    FROM run_warnings w CROSS JOIN LATERAL unnest(w.lines) AS l(line);
