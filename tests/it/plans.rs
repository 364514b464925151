//! Plans that cannot go quadratic (issue 14): the export's plan on tables
//! without statistics and with the dead rows a killed import leaves, and the
//! statistics an import leaves behind.

use dropfeed::store::contacts::{self, Filter};
use serde_json::Value;

use crate::helpers::{Opts, numbered_contacts, profile, spawn_app};

/// Every place where the plan would repeat a scan or an aggregate per row:
/// the inner side of a nested loop holding a sequential scan or an
/// aggregate, or a per-row subplan holding a sequential scan.
fn quadratic_spots(node: &Value, path: &str, out: &mut Vec<String>) {
    let kind = node["Node Type"].as_str().unwrap_or("?");
    let here = format!("{path} > {kind}");
    let children = node["Plans"].as_array().cloned().unwrap_or_default();
    if kind == "Nested Loop"
        && let Some(inner) = children.get(1)
    {
        for bad in ["Seq Scan", "Aggregate"] {
            if holds(inner, bad) {
                out.push(format!("{here}: its inner side has a {bad}"));
            }
        }
    }
    if node["Parent Relationship"] == "SubPlan" && holds(node, "Seq Scan") {
        out.push(format!("{here}: a subplan run per row has a Seq Scan"));
    }
    for child in &children {
        quadratic_spots(child, &here, out);
    }
}

fn holds(node: &Value, kind: &str) -> bool {
    node["Node Type"] == kind || node["Plans"].as_array().is_some_and(|c| c.iter().any(|n| holds(n, kind)))
}

#[tokio::test]
async fn the_export_stays_linear_on_tables_without_statistics_and_with_a_crashed_imports_dead_rows() {
    let app = spawn_app().await;
    let run = uuid::Uuid::now_v7();
    // What a SIGKILLed import leaves: 200,000 dead memberships. Then 200,000
    // contacts in a list, written without the import (which would analyse).
    sqlx::raw_sql(
        "ALTER TABLE contacts SET (autovacuum_enabled = false);
         ALTER TABLE list_members SET (autovacuum_enabled = false);
         BEGIN;
         INSERT INTO list_members (list_id, contact_id, added_by_run)
             SELECT 1, g, gen_random_uuid() FROM generate_series(1, 200000) g;
         ROLLBACK;",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "WITH l AS (INSERT INTO lists (tenant_id, name) VALUES ($1, 'nightly') RETURNING id),
              c AS (INSERT INTO contacts (tenant_id, email, language, created_by_run, updated_by_run)
                    SELECT $1, 'p' || g || '@x.ch', 'FR', $2, $2 FROM generate_series(1, 200000) g RETURNING id)
         INSERT INTO list_members (list_id, contact_id, added_by_run) SELECT l.id, c.id, $2 FROM l, c",
    )
    .bind(app.tenant.id)
    .bind(run)
    .execute(&app.pool)
    .await
    .unwrap();
    let analysed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class WHERE relname IN ('contacts', 'list_members') AND reltuples >= 0",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(analysed, 0, "the tables have no statistics, as after a crash and recovery");

    let tenant_id = app.tenant.id;
    let filters = [
        Filter { tenant_id, list: None, created_by_run: None },
        Filter { tenant_id, list: Some("nightly".into()), created_by_run: None },
        Filter { tenant_id, list: None, created_by_run: Some(run) },
        Filter { tenant_id, list: Some("nightly".into()), created_by_run: Some(run) },
    ];
    for filter in &filters {
        let plan = contacts::plan(&app.pool, filter).await.unwrap();
        let mut spots = Vec::new();
        quadratic_spots(&plan[0]["Plan"], "", &mut spots);
        assert!(
            spots.is_empty(),
            "list {:?}, run {:?}: {spots:?}\n{}",
            filter.list,
            filter.created_by_run,
            serde_json::to_string_pretty(&plan).unwrap()
        );
    }

    // And the export itself, every contact with its list.
    let mut out = Vec::new();
    let n = dropfeed::export::write_contacts(&app.pool, &filters[2], None, &mut out).await.unwrap();
    assert_eq!(n, 200_000);
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().nth(1).unwrap().ends_with(";nightly"), "{}", text.lines().nth(1).unwrap());
}

async fn reltuples(app: &crate::helpers::TestApp, table: &str) -> f32 {
    sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = $1")
        .bind(table)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_import_that_wrote_thousands_of_rows_leaves_the_tables_it_wrote_analysed() {
    let app = spawn_app().await;
    let path = app.write("big.csv", numbered_contacts(6_000));
    let into_list = profile("lists: [nightly]");
    let report = app.import_with(&path, &into_list, Opts::default()).await;
    assert_eq!(report.counts.inserted, 6_000);
    assert_eq!(reltuples(&app, "contacts").await, 6_000.0);
    assert_eq!(reltuples(&app, "list_members").await, 6_000.0);

    // A few more rows are below the threshold: the statistics stay.
    let small = app.write("small.csv", "email\nnew1@x.ch\nnew2@x.ch\n");
    let report = app.import_with(&small, &into_list, Opts::default()).await;
    assert_eq!(report.counts.inserted, 2);
    assert_eq!(reltuples(&app, "contacts").await, 6_000.0);

    // A dry run writes nothing, so analyses nothing.
    let other = app.write("other.csv", numbered_contacts(7_000).replace("@x.ch", "@y.ch"));
    let report = app.import_with(&other, &into_list, Opts { dry_run: true, ..Opts::default() }).await;
    assert_eq!(report.counts.inserted, 7_000);
    assert_eq!(reltuples(&app, "contacts").await, 6_000.0);
}

/// Every node of a plan: (type, relation).
fn nodes(node: &Value, out: &mut Vec<(String, String)>) {
    out.push((
        node["Node Type"].as_str().unwrap_or("?").to_owned(),
        node["Relation Name"].as_str().unwrap_or("").to_owned(),
    ));
    for child in node["Plans"].as_array().cloned().unwrap_or_default() {
        nodes(&child, out);
    }
}

#[tokio::test]
async fn every_filter_of_the_runs_page_walks_an_index_with_100000_runs_and_no_statistics() {
    use dropfeed::store::runs::{self, RunFilter};
    let app = spawn_app().await;
    sqlx::raw_sql("ALTER TABLE runs SET (autovacuum_enabled = false)").execute(&app.pool).await.unwrap();
    sqlx::query(
        "INSERT INTO runs (id, tenant_id, feed, status, file_name, file_size, file_sha256, started_at)
         SELECT gen_random_uuid(), $1, CASE WHEN g % 2 = 0 THEN 'nightly' END,
                CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'succeeded' END, 'f.csv', 1, 'x',
                now() - g * interval '1 minute'
         FROM generate_series(1, 100000) g",
    )
    .bind(app.tenant.id)
    .execute(&app.pool)
    .await
    .expect("runs inserted");
    let stats: i64 = app.scalar("SELECT count(*) FROM pg_stats WHERE tablename = 'runs'").await;
    assert_eq!(stats, 0, "the planner has no statistics");
    let middle: (chrono::DateTime<chrono::Utc>, uuid::Uuid) =
        sqlx::query_as("SELECT started_at, id FROM runs ORDER BY started_at DESC, id DESC OFFSET 50000 LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let base = RunFilter { limit: 50, ..Default::default() };
    let filters = [
        base.clone(),
        RunFilter { tenant_id: Some(app.tenant.id), ..base.clone() },
        RunFilter { status: Some("failed".into()), ..base.clone() },
        RunFilter { tenant_id: Some(app.tenant.id), status: Some("failed".into()), ..base.clone() },
        RunFilter { tenant_id: Some(app.tenant.id), feed: Some("nightly".into()), ..base.clone() },
        RunFilter {
            tenant_id: Some(app.tenant.id),
            feed: Some("nightly".into()),
            status: Some("failed".into()),
            ..base.clone()
        },
        RunFilter {
            tenant_id: Some(app.tenant.id),
            status: Some("failed".into()),
            after: Some(middle),
            ..base.clone()
        },
        RunFilter { after: Some(middle), ..base.clone() },
        RunFilter { tenant_id: Some(app.tenant.id), after: Some(middle), ..base.clone() },
        RunFilter { since: Some(chrono::Utc::now() - chrono::Duration::days(7)), ..base.clone() },
    ];
    for f in &filters {
        let plan = runs::page_plan(&app.pool, f).await.unwrap();
        let mut seen = Vec::new();
        nodes(&plan[0]["Plan"], &mut seen);
        let bad: Vec<_> =
            seen.iter().filter(|(kind, rel)| kind == "Sort" || (kind == "Seq Scan" && rel == "runs")).collect();
        assert!(bad.is_empty(), "{f:?}: {bad:?}\n{}", serde_json::to_string_pretty(&plan).unwrap());
        assert_eq!(runs::page(&app.pool, f).await.unwrap().len(), 50, "{f:?}");
    }
}

#[tokio::test]
async fn a_runs_messages_paged_by_keyset_are_every_message_once_in_order_errors_and_warnings_alike() {
    use dropfeed::store::runs::{self, MessageFilter, MessageKey};
    let app = spawn_app().await;
    // Errors, and warnings of two consents on the same lines (same rule, two columns).
    let mut csv = String::from("email;civility;news;sms\n");
    for i in 0..700 {
        match i % 3 {
            0 => csv.push_str(&format!("bad-{i};MR;TRUE;FALSE\n")),
            1 => csv.push_str(&format!("p{i}@x.ch;;TRUE;TRUE\n")),
            _ => csv.push_str(&format!("p{i}@x.ch;MR;TRUE;TRUE\n")),
        }
    }
    let file = app.write("mixed.csv", &csv);
    let p = profile(
        "columns:\n  email: email\n  civility: civility\n  news: consent.newsletter\n  sms: consent.sms\nmax_invalid_ratio: 1.0\n",
    );
    let report = app.import(&file, &p).await;
    let mut whole = Vec::new();
    let mut batches = runs::messages(&app.pool, report.run_id, &MessageFilter::default());
    while let Some(b) = batches.recv().await {
        whole.extend(b.unwrap());
    }
    let key = |m: &dropfeed::report::Message| (m.line, m.code.clone(), m.column.clone().unwrap_or_default());
    whole.sort_by_key(key);
    let warnings = whole.iter().filter(|m| m.severity == "warning").count();
    assert!(
        warnings > 200 && whole.len() - warnings > 200,
        "{warnings} of {} messages: {:?}",
        whole.len(),
        report.by_code
    );
    for code in [None, Some("civility.empty"), Some("email.format")] {
        let expected: Vec<_> = whole.iter().filter(|m| code.is_none_or(|c| m.code == c)).map(key).collect();
        let mut paged = Vec::new();
        let mut after: Option<MessageKey> = None;
        loop {
            let page = runs::message_page(&app.pool, report.run_id, code, after.as_ref(), 37).await.unwrap();
            if page.is_empty() {
                break;
            }
            let last = page.last().unwrap();
            after = Some(MessageKey {
                line: last.line,
                code: last.code.clone(),
                column: last.column.clone().unwrap_or_default(),
            });
            paged.extend(page.iter().map(key));
        }
        assert_eq!(paged, expected, "{code:?}");
    }
}
