//! Organisations (seed 002): a structure with its address identifies one; a
//! line naming a known structure at the same address links to it.

use crate::helpers::{profile, spawn_app};

const PROFILE: &str = "columns:\n  email: email\n  structure: structure\n  address: address\n  \
                       postal_code: postal_code\n  town: town\n  country: country\n";

#[tokio::test]
async fn a_structure_at_the_same_address_links_to_the_existing_organisation_instead_of_creating_another() {
    let app = spawn_app().await;
    let first = app.write(
        "first.csv",
        "email;structure;address;postal_code;town;country\n\
         a@x.ch;ACME SA;1 rue du Lac;1201;Genève;CH\n\
         b@x.ch;Acme  SA;1 Rue du Lac;1201;Genève;CH\n\
         c@x.ch;ACME SA;9 avenue de France;1202;Genève;CH\n\
         d@x.ch;;;;;\n",
    );
    let report = app.import(&first, &profile(PROFILE)).await;
    assert_eq!(report.counts.inserted, 4, "{:?}", report.error);
    assert_eq!(report.counts.organisations_created, 2, "same name and address once, another address twice");

    let second = app.write(
        "second.csv",
        "email;structure;address;postal_code;town;country\ne@x.ch;acme sa;1 rue du lac;1201;genève;CH\n",
    );
    let report = app.import(&second, &profile(PROFILE)).await;
    assert_eq!(report.counts.organisations_created, 0, "a known organisation is linked, not created");
    assert_eq!(app.scalar("SELECT count(*) FROM organisations").await, 2);
    let mut orgs = Vec::new();
    for email in ["a@x.ch", "b@x.ch", "c@x.ch", "d@x.ch", "e@x.ch"] {
        orgs.push(app_org(&app.pool, email).await);
    }
    let [a, b, c, d, e] = orgs[..] else { unreachable!() };
    assert!(a.is_some() && a == b && a == e, "{a:?} {b:?} {e:?}");
    assert!(c.is_some() && c != a);
    assert_eq!(d, None, "no structure, no organisation");
    let name: String =
        sqlx::query_scalar("SELECT name FROM organisations WHERE id = $1").bind(a).fetch_one(&app.pool).await.unwrap();
    assert_eq!(name, "ACME SA", "the first line's spelling names it");
}

#[tokio::test]
async fn a_contact_moving_to_another_structure_is_linked_to_it_on_update() {
    let app = spawn_app().await;
    let file =
        |s: &str| format!("email;structure;address;postal_code;town;country\na@x.ch;{s};1 rue X;1201;Genève;CH\n");
    app.import(&app.write("1.csv", file("ACME SA")), &profile(PROFILE)).await;
    let before = app_org(&app.pool, "a@x.ch").await;
    let report = app.import(&app.write("2.csv", file("Globex")), &profile(PROFILE)).await;
    assert_eq!((report.counts.updated, report.counts.organisations_created), (1, 1));
    let after = app_org(&app.pool, "a@x.ch").await;
    assert!(before.is_some() && after.is_some() && before != after);
}

async fn app_org(pool: &sqlx::PgPool, email: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT organisation_id FROM contacts WHERE email = $1")
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn update_only_links_updated_contacts_and_creates_no_organisation_for_skipped_new_lines() {
    let app = spawn_app().await;
    let head = "email;structure;address;postal_code;town;country\n";
    app.import(&app.write("1.csv", format!("{head}a@x.ch;;;;;\n")), &profile(PROFILE)).await;
    let update_only = profile(&format!("{PROFILE}mode: update_only\n"));
    let file = format!("{head}a@x.ch;ACME SA;1 rue X;1201;Genève;CH\nnew@x.ch;Globex;2 rue Y;1202;Genève;CH\n");
    let report = app.import(&app.write("2.csv", file), &update_only).await;
    assert_eq!((report.counts.updated, report.counts.inserted), (1, 0), "{:?}", report.error);
    assert_eq!(report.counts.organisations_created, 1, "only the updated contact's organisation");
    assert!(app_org(&app.pool, "a@x.ch").await.is_some());
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM organisations").fetch_all(&app.pool).await.unwrap();
    assert_eq!(names, ["ACME SA"]);
}
